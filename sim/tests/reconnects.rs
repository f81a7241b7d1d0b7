//! Many reconnects against one frps: frpc is restarted (a new process, a new run id) or cut off
//! for a few seconds, again and again, while the user keeps transferring. Afterwards frps holds
//! exactly one client with its proxy, and its task and connection counts are back at the
//! baseline: no session, listener, pooled connection or relay leaked.

use std::time::Duration;

use proptest::prelude::*;
use sim::scenario::{Cast, Run, WARMUP};
use sim::setup::Transport;
use sim::{bounds, cases};

#[derive(Debug, Clone, Copy)]
enum Cut {
    /// frpc's process restarts.
    Restart,
    /// frpc and frps cannot reach each other for this long.
    Partition(Duration),
}

#[derive(Debug, Clone)]
struct Schedule {
    transport: Transport,
    /// Each cut, after a pause since the previous one.
    cuts: Vec<(Duration, Cut)>,
}

fn cut() -> impl Strategy<Value = Cut> {
    prop_oneof![
        Just(Cut::Restart),
        (1u64..=10).prop_map(|s| Cut::Partition(Duration::from_secs(s))),
    ]
}

fn schedule() -> impl Strategy<Value = Schedule> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec((2u64..=30, cut()), 4..=10),
    )
        .prop_map(|(tcp_mux, tls, cuts)| Schedule {
            transport: Transport { tcp_mux, tls },
            cuts: cuts
                .into_iter()
                .map(|(pause, c)| (Duration::from_secs(pause), c))
                .collect(),
        })
}

fn scenario(seed: u64, s: &Schedule) -> anyhow::Result<()> {
    let cast = Cast::single(s.transport);
    let mut t = WARMUP;
    for (pause, c) in &s.cuts {
        t += *pause;
        if let Cut::Partition(d) = c {
            t += *d;
        }
    }
    let last = t;
    let bound = bounds::recovery(s.transport.tcp_mux, bounds::settle(cast.latency.max, 4));
    let user_stop = Run::user_stop_after(&cast, last + bound);
    let mut run = Run::start(seed, cast, user_stop)?;
    let mut t = WARMUP;
    for (pause, c) in &s.cuts {
        t += *pause;
        run.world.run_until(t)?;
        match c {
            Cut::Restart => run.world.bounce("frpc"),
            Cut::Partition(d) => {
                run.world.partition("frpc", "frps");
                t += *d;
                run.world.run_until(t)?;
                run.world.repair("frpc", "frps");
            }
        }
    }
    if !s.transport.tcp_mux {
        // See `Run::allow_stuck_relays`: partitions black-hole work connections.
        run.allow_stuck_relays(WARMUP, last);
    }
    run.finish(last, bound)?;
    Ok(())
}

#[test]
fn counts_return_to_baseline_after_many_reconnects() {
    cases::run("reconnects", schedule(), scenario);
}

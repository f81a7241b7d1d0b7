//! A tcp load-balancing group of two frpc; long transfers are spread over both when one frpc
//! dies mid-transfer (its process killed: sockets close). Transfers through the survivor
//! finish intact, new connections all go to the survivor, and the member rejoins when its
//! frpc restarts.

use std::time::Duration;

use proptest::prelude::*;
use sim::scenario::{Cast, Run, WARMUP};
use sim::setup::{Proxy, Transport};
use sim::{bounds, cases, checks};

#[derive(Debug, Clone)]
struct Schedule {
    transport: Transport,
    /// When frpc1 dies, after the warm-up.
    start: Duration,
    down: Duration,
}

fn schedule() -> impl Strategy<Value = Schedule> {
    (any::<bool>(), any::<bool>(), 4000u64..=12000, 1u64..=30).prop_map(
        |(tcp_mux, tls, start_ms, down)| Schedule {
            transport: Transport { tcp_mux, tls },
            start: WARMUP + Duration::from_millis(start_ms),
            down: Duration::from_secs(down),
        },
    )
}

fn member(name: &str, backend: &str) -> Proxy {
    Proxy {
        group: Some("g".into()),
        wrapped: true,
        ..Proxy::tcp(name, backend, 6000)
    }
}

fn scenario(seed: u64, s: &Schedule) -> anyhow::Result<()> {
    let mut cast = Cast::single(s.transport);
    cast.clients = vec![
        ("frpc1".into(), vec![member("m1", "backend1")]),
        ("frpc2".into(), vec![member("m2", "backend2")]),
    ];
    // Four long transfers at a time (16 chunks, 300 ms apart), spread over both members.
    cast.user.workers = 4;
    cast.user.chunks = 16;
    cast.user.gap = Duration::from_millis(300);
    let settle = bounds::settle(cast.latency.max, 4);
    let back = s.start + s.down;
    // The restarted frpc logs in at once (a login loop's first attempt is immediate) and
    // registers m1 again: a few round trips, no detection or backoff involved.
    let bound = bounds::settle(cast.latency.max, 8);
    let user_stop = Run::user_stop_after(&cast, back + bound);
    let mut run = Run::start(seed, cast, user_stop)?;
    run.world.run_until(s.start)?;
    run.world.crash("frpc1");
    run.world.run_until(back)?;
    let trace = run.world.trace().clone();
    checks::integrity(&trace)?;
    // Transfers open when frpc1 died: those on m1 are cut, those on m2 go on to the end.
    let in_flight: Vec<_> = checks::transfers(&trace)
        .into_iter()
        .filter(|(at, t)| t.started < s.start && *at > s.start)
        .collect();
    anyhow::ensure!(
        in_flight.iter().any(|(_, t)| t.complete),
        "no transfer in flight at the crash survived it: {in_flight:?}"
    );
    // frps sees the closed control connection at once: new connections avoid m1.
    checks::all_complete_between(&trace, s.start + settle, back)?;
    run.world.bounce("frpc1");
    run.finish(back, bound)?;
    Ok(())
}

#[test]
fn group_member_dies_mid_transfer() {
    cases::run("group_crash", schedule(), scenario);
}

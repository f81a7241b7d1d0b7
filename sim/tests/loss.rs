//! Packet loss and latency: for a while the links from frpc and from the user to frps fail at
//! random (turmoil drops every segment in flight on a failed link and TCP there has no
//! retransmission, so a hit connection stalls for good) and come back at `repair_rate`, with
//! up to `max_latency` per message. Data that comes back must be intact; once the loss ends
//! the tunnel recovers within the bound.

use std::time::Duration;

use proptest::prelude::*;
use sim::scenario::{Cast, Run, WARMUP};
use sim::setup::Transport;
use sim::world::{Latency, FRPS};
use sim::{bounds, cases, checks};

#[derive(Debug, Clone)]
struct Schedule {
    transport: Transport,
    latency: Latency,
    fail_rate: f64,
    start: Duration,
    length: Duration,
}

fn schedule() -> impl Strategy<Value = Schedule> {
    (
        (any::<bool>(), any::<bool>()),
        (1u64..=20, 20u64..=150, 0.05f64..=0.9),
        0.0005f64..=0.02,
        2u64..=10,
        10u64..=90,
    )
        .prop_map(
            |((tcp_mux, tls), (min, max, repair_rate), fail_rate, start, len)| Schedule {
                transport: Transport { tcp_mux, tls },
                latency: Latency {
                    min: Duration::from_millis(min),
                    max: Duration::from_millis(max),
                    repair_rate,
                },
                fail_rate,
                start: WARMUP + Duration::from_secs(start),
                length: Duration::from_secs(len),
            },
        )
}

fn scenario(seed: u64, s: &Schedule) -> anyhow::Result<()> {
    let mut cast = Cast::single(s.transport);
    cast.latency = s.latency;
    cast.clients[0].1[0].wrapped = true;
    let end = s.start + s.length;
    let bound = bounds::recovery(s.transport.tcp_mux, bounds::settle(cast.latency.max, 4));
    let user_stop = Run::user_stop_after(&cast, end + bound);
    let mut run = Run::start(seed, cast, user_stop)?;
    run.world.run_until(s.start)?;
    checks::fault_free_until(run.world.trace(), WARMUP, s.start)?;
    for host in ["frpc", "user"] {
        run.world.set_fail_rate(host, FRPS, s.fail_rate);
    }
    run.world.run_until(end)?;
    for host in ["frpc", "user"] {
        run.world.set_fail_rate(host, FRPS, 0.0);
        run.world.repair(host, FRPS);
    }
    if !s.transport.tcp_mux {
        run.allow_stuck_relays(s.start, end);
    }
    run.finish(end, bound)?;
    Ok(())
}

#[test]
fn lossy_links_keep_data_intact_and_recover() {
    cases::run("loss", schedule(), scenario);
}

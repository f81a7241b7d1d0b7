//! A partition between frpc and frps for N seconds: the control connection (and every stream
//! on it) is black-holed, frpc notices through yamux keepalive or heartbeats, re-logs in with
//! the backoff, and frps ends up with exactly the configured proxies again.

use std::time::Duration;

use proptest::prelude::*;
use sim::scenario::{Cast, Run, WARMUP};
use sim::setup::Transport;
use sim::{bounds, cases, checks};

#[derive(Debug, Clone)]
struct Schedule {
    transport: Transport,
    /// Partition start, after the warm-up.
    start: Duration,
    /// Partition length.
    length: Duration,
}

fn schedule() -> impl Strategy<Value = Schedule> {
    (any::<bool>(), any::<bool>(), 2u64..=20, 1u64..=120).prop_map(|(tcp_mux, tls, start, len)| {
        Schedule {
            transport: Transport { tcp_mux, tls },
            start: WARMUP + Duration::from_secs(start),
            length: Duration::from_secs(len),
        }
    })
}

fn scenario(seed: u64, s: &Schedule) -> anyhow::Result<()> {
    let cast = Cast::single(s.transport);
    let heal = s.start + s.length;
    let bound = bounds::recovery(s.transport.tcp_mux, bounds::settle(cast.latency.max, 4));
    let user_stop = Run::user_stop_after(&cast, heal + bound);
    let mut run = Run::start(seed, cast, user_stop)?;
    run.world.run_until(s.start)?;
    checks::fault_free_until(run.world.trace(), WARMUP, s.start)?;
    run.world.partition("frpc", "frps");
    run.world.run_until(heal)?;
    run.world.repair("frpc", "frps");
    run.finish(heal, bound)?;
    Ok(())
}

#[test]
fn partition_heals_and_tunnel_recovers() {
    cases::run("partition", schedule(), scenario);
}

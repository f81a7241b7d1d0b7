//! frps crashes and comes back after a while: softly (its sockets close, as when the process is
//! killed) or hard (the machine vanishes: nothing reaches the clients, so their sessions die
//! silently). frps::run starts again on the same host; frpc logs in again with the backoff.

use std::time::Duration;

use proptest::prelude::*;
use sim::scenario::{Cast, Run, WARMUP};
use sim::setup::Transport;
use sim::world::FRPS;
use sim::{bounds, cases, checks};

#[derive(Debug, Clone)]
struct Schedule {
    transport: Transport,
    start: Duration,
    down: Duration,
    hard: bool,
}

fn schedule() -> impl Strategy<Value = Schedule> {
    (
        any::<bool>(),
        any::<bool>(),
        2u64..=15,
        0u64..=60,
        any::<bool>(),
    )
        .prop_map(|(tcp_mux, tls, start, down, hard)| Schedule {
            transport: Transport { tcp_mux, tls },
            start: WARMUP + Duration::from_secs(start),
            down: Duration::from_secs(down),
            hard,
        })
}

fn scenario(seed: u64, s: &Schedule) -> anyhow::Result<()> {
    let cast = Cast::single(s.transport);
    let back = s.start + s.down;
    let bound = bounds::recovery(s.transport.tcp_mux, bounds::settle(cast.latency.max, 4));
    let user_stop = Run::user_stop_after(&cast, back + bound);
    let mut run = Run::start(seed, cast, user_stop)?;
    run.world.run_until(s.start)?;
    checks::fault_free_until(run.world.trace(), WARMUP, s.start)?;
    if s.hard {
        run.world.partition(FRPS, "frpc");
        run.world.partition(FRPS, "user");
    }
    run.world.crash(FRPS);
    run.world.run_until(back)?;
    run.world.bounce(FRPS);
    if s.hard {
        run.world.repair(FRPS, "frpc");
        run.world.repair(FRPS, "user");
    }
    // The restarted frps must settle to the same counts the first one had at the baseline.
    run.finish(back, bound)?;
    Ok(())
}

#[test]
fn frps_restart_and_clients_return() {
    cases::run("frps_restart", schedule(), scenario);
}

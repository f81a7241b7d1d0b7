//! Same seed, same trace: a scenario with loss, a partition and an frps restart runs twice with
//! one seed and must record the identical event log (every dial, transfer, fault and change of
//! frps's counts, at the same simulated times). A different seed must change the log (one of
//! three others: a single neighbour may happen to draw the same choices where they matter).

use std::time::Duration;

use sim::scenario::{Cast, Run, WARMUP};
use sim::setup::Transport;
use sim::world::FRPS;
use sim::{bounds, cases, Entry};

fn run_once(seed: u64, transport: Transport) -> anyhow::Result<Vec<Entry>> {
    let cast = Cast::single(transport);
    let loss_end = WARMUP + Duration::from_secs(15);
    let heal = loss_end + Duration::from_secs(20);
    let back = heal + Duration::from_secs(12);
    let bound = bounds::recovery(transport.tcp_mux, bounds::settle(cast.latency.max, 4));
    let user_stop = Run::user_stop_after(&cast, back + bound);
    let mut run = Run::start(seed, cast, user_stop)?;
    run.world.set_fail_rate("frpc", FRPS, 0.005);
    run.world.run_until(loss_end)?;
    run.world.set_fail_rate("frpc", FRPS, 0.0);
    run.world.repair("frpc", FRPS);
    run.world.partition("frpc", FRPS);
    run.world.run_until(heal)?;
    run.world.repair("frpc", FRPS);
    run.world.crash(FRPS);
    run.world.run_until(back)?;
    run.world.bounce(FRPS);
    if !transport.tcp_mux {
        run.allow_stuck_relays(WARMUP, loss_end);
    }
    let world = run.finish(back, bound)?;
    Ok(world.trace().entries())
}

fn compare(a: &[Entry], b: &[Entry]) -> anyhow::Result<()> {
    if let Some(i) = (0..a.len().min(b.len())).find(|&i| a[i] != b[i]) {
        anyhow::bail!(
            "traces differ at entry {i}:\n  first:  {}\n  second: {}",
            a[i],
            b[i]
        );
    }
    anyhow::ensure!(
        a.len() == b.len(),
        "traces differ in length: {} and {}",
        a.len(),
        b.len()
    );
    Ok(())
}

#[test]
fn same_seed_same_trace() {
    let seeds = cases::seeds("determinism");
    for (i, seed) in seeds.iter().take(2).enumerate() {
        let transport = Transport {
            tcp_mux: i % 2 == 0,
            tls: true,
        };
        let first = run_once(*seed, transport).expect("first run");
        let second = run_once(*seed, transport).expect("second run");
        if let Err(e) = compare(&first, &second) {
            panic!("seed {seed} ({transport:?}) does not replay: {e:#}\n  replay: SIM_SEED={seed} cargo test -p sim --test determinism");
        }
        // Another seed must change the trace. One neighbour can draw the same few choices that
        // matter in this scenario (SIM_BASE=4 found such a pair: no connection lost to the 0.5 %
        // failure rate in either run, and the same latencies where they reach the log), so up to
        // three other seeds are tried; a seed that does not reach the simulation makes all of
        // them replay the first trace exactly.
        let others =
            [1, 0x9e37_79b9_7f4a_7c15, 0x5851_f42d_4c95_7f2d].map(|d| seed.wrapping_add(d));
        let differs = others.iter().any(|&other| {
            let trace = run_once(other, transport).expect("run with another seed");
            compare(&first, &trace).is_err()
        });
        assert!(
            differs,
            "seeds {seed} and {others:?} gave identical traces: the seed does not reach the simulation"
        );
    }
}

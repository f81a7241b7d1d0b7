//! A load-balancing group of two frpc, each proxying to its own backend with a tcp health
//! check. One backend dies: its member leaves the group within `intervalSeconds × maxFailed`
//! (plus one check cycle and slack) while the other keeps serving every new connection; the
//! backend comes back and so does the member.

use std::time::Duration;

use proptest::prelude::*;
use sim::scenario::{Cast, Run, WARMUP};
use sim::setup::{Health, Proxy, Transport};
use sim::{bounds, cases, checks};

#[derive(Debug, Clone)]
struct Schedule {
    transport: Transport,
    health: Health,
    start: Duration,
    down: Duration,
}

fn schedule() -> impl Strategy<Value = Schedule> {
    (
        any::<bool>(),
        any::<bool>(),
        1u32..=5,
        1u32..=3,
        1u32..=3,
        2u64..=10,
        5u64..=60,
    )
        .prop_map(
            |(tcp_mux, tls, interval_secs, timeout_secs, max_failed, start, down)| Schedule {
                transport: Transport { tcp_mux, tls },
                health: Health {
                    interval_secs,
                    timeout_secs,
                    max_failed,
                },
                start: WARMUP + Duration::from_secs(start),
                down: Duration::from_secs(down),
            },
        )
}

fn member(name: &str, backend: &str, health: Health) -> Proxy {
    Proxy {
        group: Some("g".into()),
        health: Some(health),
        ..Proxy::tcp(name, backend, 6000)
    }
}

fn scenario(seed: u64, s: &Schedule) -> anyhow::Result<()> {
    let mut cast = Cast::single(s.transport);
    cast.clients = vec![
        ("frpc1".into(), vec![member("m1", "backend1", s.health)]),
        ("frpc2".into(), vec![member("m2", "backend2", s.health)]),
    ];
    let settle = bounds::settle(cast.latency.max, 4);
    let down_bound = bounds::health_down(
        s.health.interval(),
        s.health.timeout(),
        s.health.max_failed,
        settle,
    );
    let up_bound = bounds::health_up(s.health.interval(), s.health.timeout(), settle);
    let back = s.start + s.down.max(down_bound);
    let user_stop = Run::user_stop_after(&cast, back + up_bound);
    let mut run = Run::start(seed, cast, user_stop)?;
    run.world.run_until(s.start)?;
    checks::fault_free_until(run.world.trace(), WARMUP, s.start)?;

    run.world.crash("backend1");
    run.world.run_until(back)?;
    let trace = run.world.trace().clone();
    let left = checks::first_stats_after(&trace, s.start, |st| st.proxies == ["m2"])
        .ok_or_else(|| anyhow::anyhow!("m1 never left the group after backend1 died"))?;
    anyhow::ensure!(
        left <= s.start + down_bound,
        "m1 left the group at {left:?}, {:?} after backend1 died (bound {down_bound:?})",
        left - s.start
    );
    let groups = checks::first_stats_after(&trace, left, |_| true).map(|_| ());
    anyhow::ensure!(groups.is_some(), "no stats after m1 left");
    // The surviving member takes every connection that starts once m1 is out.
    checks::all_complete_between(&trace, left + settle, back)?;

    run.world.bounce("backend1");
    run.world.run_until(back + up_bound)?;
    let trace = run.world.trace().clone();
    let rejoined =
        checks::first_stats_after(&trace, back, |st| st.groups == [("g".to_string(), 2)])
            .ok_or_else(|| {
                anyhow::anyhow!("m1 did not rejoin within {up_bound:?} of backend1's return")
            })?;
    tracing::info!("m1 left at {left:?}, rejoined at {rejoined:?}");
    run.finish(back, up_bound)?;
    Ok(())
}

#[test]
fn failed_backend_leaves_group_and_returns() {
    cases::run("health_group", schedule(), scenario);
}

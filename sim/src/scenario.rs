//! The shape every scenario shares: build the cast, let frpc log in, record the baseline,
//! let the test apply its faults, then run past the recovery bound and check the common
//! properties (integrity, recovery, backoff, no lost or duplicated proxy, no leak).

use std::time::Duration;

use anyhow::{ensure, Context as _};

use crate::checks::{self, Expected};
use crate::setup::{self, Proxy, Transport, BACKEND_PORT, BIND_PORT};
use crate::user::UserPlan;
use crate::world::{Latency, World};

/// How long frpc gets to log in and register before the baseline is taken.
pub const WARMUP: Duration = Duration::from_secs(5);
/// Quiet time after the user's last transfer before the final counts are read.
pub const QUIET: Duration = Duration::from_secs(5);

/// The cast of one scenario.
#[derive(Debug, Clone)]
pub struct Cast {
    /// Transport settings of frps and every frpc.
    pub transport: Transport,
    /// frpc hosts and their proxies.
    pub clients: Vec<(String, Vec<Proxy>)>,
    /// Link latency.
    pub latency: Latency,
    /// The user's traffic (`start`/`stop` are set by [`Run::start`] and [`Run::finish`]).
    pub user: UserPlan,
}

impl Cast {
    /// One frpc (`frpc`) with one plain tcp proxy `echo` on remote port 6000 to `backend`.
    pub fn single(transport: Transport) -> Self {
        Self {
            transport,
            clients: vec![("frpc".into(), vec![Proxy::tcp("echo", "backend", 6000)])],
            latency: Latency::default(),
            user: UserPlan::default(),
        }
    }

    /// What frps holds when every client is logged in with every proxy.
    pub fn expected(&self) -> Expected {
        let mut proxies: Vec<String> = self
            .clients
            .iter()
            .flat_map(|(_, ps)| ps.iter().map(|p| p.name.clone()))
            .collect();
        proxies.sort();
        let mut groups: Vec<(String, usize)> = Vec::new();
        for p in self.clients.iter().flat_map(|(_, ps)| ps) {
            if let Some(g) = &p.group {
                match groups.iter_mut().find(|(n, _)| n == g) {
                    Some((_, c)) => *c += 1,
                    None => groups.push((g.clone(), 1)),
                }
            }
        }
        groups.sort();
        Expected {
            clients: self.clients.len(),
            proxies,
            groups,
            pooled_work_conns: self.clients.len() * conf::defaults::POOL_COUNT as usize,
        }
    }

    fn backends(&self) -> Vec<String> {
        let mut b: Vec<String> = self
            .clients
            .iter()
            .flat_map(|(_, ps)| ps.iter().map(|p| p.backend.clone()))
            .collect();
        b.sort();
        b.dedup();
        b
    }
}

/// A scenario in progress.
pub struct Run {
    /// The simulation.
    pub world: World,
    /// The cast.
    pub cast: Cast,
    /// frps's counts at the baseline.
    pub baseline: frps::Stats,
    /// Established TCP connections on frps's host at the baseline.
    pub baseline_sockets: Option<usize>,
    /// When the user stops starting transfers.
    pub user_stop: Duration,
    /// A window whose stalled transfers may each leave one relay behind (see
    /// [`Run::allow_stuck_relays`]).
    pub stuck_relay_window: Option<(Duration, Duration)>,
}

impl Run {
    /// Builds the world for `cast`, runs the warm-up and checks frps holds exactly the cast.
    /// The user's transfers run from the end of the warm-up until `user_stop`.
    pub fn start(seed: u64, mut cast: Cast, user_stop: Duration) -> anyhow::Result<Self> {
        let mut world = World::new(seed, cast.latency);
        world.add_frps(&setup::frps_toml(cast.transport))?;
        world.add_observer();
        for b in cast.backends() {
            world.add_echo(&b, BACKEND_PORT);
        }
        for (name, proxies) in &cast.clients {
            world.add_frpc(name, &setup::frpc_toml(cast.transport, proxies))?;
        }
        cast.user.start = WARMUP;
        cast.user.stop = user_stop;
        world.add_user(cast.user.clone());
        world.run_until(WARMUP)?;
        let baseline = world
            .stats()
            .context("frps is not running after the warm-up")?;
        let want = cast.expected();
        checks::settled(Some(&baseline), &want, baseline.tasks).context("baseline")?;
        let baseline_sockets = checks::sockets_at(world.trace(), WARMUP);
        Ok(Self {
            world,
            cast,
            baseline,
            baseline_sockets,
            user_stop,
            stuck_relay_window: None,
        })
    }

    /// Known divergence from frp (see the crate report): frps's relay ends only when *both*
    /// directions reached EOF (`proxies::relay::pump`), where frp's `io.Join` closes both
    /// connections at the first EOF. Without tcpMux a work connection whose segments were
    /// black-holed never delivers that second EOF (the simulator's TCP does not retransmit; a
    /// real one would give up after its retransmission timeout), so each transfer that was
    /// open during `[from, to)` (even a completed one: the FIN that would end its work
    /// connection can be the lost segment) may leave one relay task and its two sockets on frps.
    /// Everything else (sessions, proxies, pool) must still match exactly.
    pub fn allow_stuck_relays(&mut self, from: Duration, to: Duration) {
        self.stuck_relay_window = Some((from, to));
    }

    fn stuck_relay_allowance(&self) -> usize {
        let Some((from, to)) = self.stuck_relay_window else {
            return 0;
        };
        checks::transfers(self.world.trace())
            .iter()
            .filter(|(at, t)| *at >= from && t.started < to)
            .count()
    }

    /// When the user should stop, given that the tunnel must work from `recovered` on: a few
    /// transfers' time later, so the recovery is seen by transfers that start after it.
    pub fn user_stop_after(cast: &Cast, recovered: Duration) -> Duration {
        recovered + (cast.user.transfer_time(cast.latency.max) + cast.user.interval) * 3
    }

    /// Runs to the end and checks the common properties, given that the last fault ended at
    /// `fault_end` and the tunnel must work again `bound` later.
    pub fn finish(mut self, fault_end: Duration, bound: Duration) -> anyhow::Result<World> {
        let recovered = fault_end + bound;
        ensure!(
            recovered < self.user_stop,
            "scenario too short: recovery bound {recovered:?} leaves no transfer before {:?}",
            self.user_stop
        );
        let limit = self.user_stop + self.cast.user.max_transfer_time();
        self.world.run_until_user_done(limit)?;
        let end = self.world.now() + QUIET;
        self.world.run_until(end)?;
        let trace = self.world.trace().clone();
        checks::integrity(&trace)?;
        checks::recovered_by(&trace, recovered, 1)?;
        if self.cast.transport.tcp_mux {
            for (name, _) in &self.cast.clients {
                checks::backoff(&trace, name, BIND_PORT)?;
            }
        }
        let stats = self.world.stats();
        let stuck = self.stuck_relay_allowance();
        let tasks = match &stats {
            Some(s) if s.tasks > self.baseline.tasks && s.tasks <= self.baseline.tasks + stuck => {
                tracing::warn!(
                    "{} relays stuck on black-holed work connections",
                    s.tasks - self.baseline.tasks
                );
                s.tasks
            }
            _ => self.baseline.tasks,
        };
        checks::settled(stats.as_ref(), &self.cast.expected(), tasks).context("after recovery")?;
        // Without tcpMux every pooled work connection is a TCP connection of its own.
        let extra_pooled = match (&stats, self.cast.transport.tcp_mux) {
            (Some(s), false) => s
                .pooled_work_conns
                .saturating_sub(self.baseline.pooled_work_conns),
            _ => 0,
        };
        let extra_sockets = 2 * (tasks - self.baseline.tasks) + extra_pooled;
        let sockets = checks::sockets_at(&trace, end);
        ensure!(
            sockets == self.baseline_sockets.map(|n| n + extra_sockets),
            "frps host has {sockets:?} TCP connections at the end, {:?} at the baseline \
             (+{extra_sockets} of stuck relays and extra pooled work connections)",
            self.baseline_sockets
        );
        Ok(self.world)
    }
}

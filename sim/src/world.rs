//! [`World`]: one simulated network with the real frps and frpc on it, echo backends, and a
//! user client pushing verified transfers through the tunnel. The test drives simulated time
//! with [`World::run_until`] and applies faults between steps; every fault, every dial and
//! every change of frps's live counts lands in the [`Trace`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::net::TurmoilNet;
use crate::trace::{Event, Trace};
use crate::user::{self, UserPlan};

/// The simulation step: network delivery happens at step boundaries; timers inside a step
/// fire at their exact time (each host's clock is paused and auto-advances).
pub const TICK: Duration = Duration::from_millis(20);
/// How often the driver samples frps's live counts.
pub const STATS_PERIOD: Duration = Duration::from_millis(100);
/// The simulated host names.
pub const FRPS: &str = "frps";

/// Link behaviour applied to every link unless a scenario changes it.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// Least one-way latency.
    pub min: Duration,
    /// Most one-way latency.
    pub max: Duration,
    /// turmoil's `repair_rate`: the chance per message that a randomly failed link (see
    /// [`World::set_fail_rate`]) comes back.
    pub repair_rate: f64,
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            min: Duration::from_millis(1),
            max: Duration::from_millis(20),
            repair_rate: 1.0,
        }
    }
}

type StatsSlot = Arc<Mutex<Option<frps::StatsHandle<TurmoilNet>>>>;

/// One simulation run.
pub struct World {
    sim: turmoil::Sim<'static>,
    seed: u64,
    trace: Trace,
    frps_stats: StatsSlot,
    last_stats: Option<frps::Stats>,
    next_sample: Duration,
    user_done: Arc<std::sync::atomic::AtomicBool>,
}

impl World {
    /// A world whose every random choice (turmoil's and frp-rs's) follows `seed`.
    pub fn new(seed: u64, latency: Latency) -> Self {
        let sim = turmoil::Builder::new()
            .rng_seed(seed)
            .tick_duration(TICK)
            .simulation_duration(Duration::from_secs(3600))
            .min_message_latency(latency.min)
            .max_message_latency(latency.max)
            .repair_rate(latency.repair_rate)
            .build();
        Self {
            sim,
            seed,
            trace: Trace::new(),
            frps_stats: Arc::default(),
            last_stats: None,
            next_sample: Duration::ZERO,
            user_done: Arc::default(),
        }
    }

    /// The event log.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Simulated time so far.
    pub fn now(&self) -> Duration {
        self.sim.elapsed()
    }

    /// The turmoil simulation, for faults this type has no method for.
    pub fn sim(&mut self) -> &mut turmoil::Sim<'static> {
        &mut self.sim
    }

    /// Adds frps on host [`FRPS`]. It can be crashed and bounced: every start runs the real
    /// `Server::bind` + `serve` again, with a fresh seeded generator.
    pub fn add_frps(&mut self, toml: &str) -> anyhow::Result<()> {
        let cfg = conf::parse_server_str(toml, "frps.toml", &conf::Env::new(), true)?;
        let settings = frps::settings(&cfg)?;
        let slot = self.frps_stats.clone();
        let seed = self.seed;
        let starts = Arc::new(AtomicU64::new(0));
        self.sim.host(FRPS, move || {
            let net =
                TurmoilNet::seeded(sub_seed(seed, FRPS, starts.fetch_add(1, Ordering::Relaxed)));
            let settings = settings.clone();
            let slot = slot.clone();
            async move {
                let server = frps::Server::bind(settings, net, CancellationToken::new()).await?;
                *lock(&slot) = Some(server.stats());
                server.serve().await?;
                Ok(())
            }
        });
        Ok(())
    }

    /// Adds the observer client, which records the number of established TCP connections on
    /// frps's host whenever it changes (a leak check below frps's own counts).
    pub fn add_observer(&mut self) {
        let trace = self.trace.clone();
        self.sim.client("observer", async move {
            let mut last = None;
            loop {
                let n = turmoil::established_tcp_stream_count_on(FRPS);
                if last != Some(n) {
                    trace.record(Event::Sockets(n));
                    last = Some(n);
                }
                tokio::time::sleep(STATS_PERIOD).await;
            }
        });
    }

    /// Adds frpc on host `name`; its dials are recorded in the trace.
    pub fn add_frpc(&mut self, name: &str, toml: &str) -> anyhow::Result<()> {
        let cfg = conf::parse_client_str(toml, "frpc.toml", &conf::Env::new(), true)
            .with_context(|| format!("config of {name}"))?;
        let seed = self.seed;
        let trace = self.trace.clone();
        let host: Arc<str> = name.into();
        let starts = Arc::new(AtomicU64::new(0));
        self.sim.host(name, move || {
            let n = starts.fetch_add(1, Ordering::Relaxed);
            let net =
                TurmoilNet::seeded(sub_seed(seed, &host, n)).with_dial_log(trace.clone(), &host);
            let cfg = cfg.clone();
            async move {
                frpc::run(cfg, net, CancellationToken::new()).await?;
                Ok(())
            }
        });
        Ok(())
    }

    /// Adds an echo server on host `name`, port `port`.
    pub fn add_echo(&mut self, name: &str, port: u16) {
        self.sim.host(name, move || echo(port));
    }

    /// Adds the user client on host `user`, running `plan`.
    pub fn add_user(&mut self, plan: UserPlan) {
        let trace = self.trace.clone();
        let done = self.user_done.clone();
        self.sim.client("user", async move {
            user::run(plan, trace).await;
            done.store(true, Ordering::Relaxed);
            Ok(())
        });
    }

    /// Steps until the user's last transfer has ended, or until `limit`.
    pub fn run_until_user_done(&mut self, limit: Duration) -> anyhow::Result<()> {
        while !self.user_done.load(Ordering::Relaxed) && self.sim.elapsed() < limit {
            let next = self.sim.elapsed() + TICK;
            self.run_until(next)?;
        }
        Ok(())
    }

    /// Steps the simulation until `t`, sampling frps's counts as it goes.
    pub fn run_until(&mut self, t: Duration) -> anyhow::Result<()> {
        while self.sim.elapsed() < t {
            self.sim.step().map_err(|e| {
                anyhow::anyhow!("simulation failed at {:?}: {e}", self.sim.elapsed())
            })?;
            if self.sim.elapsed() >= self.next_sample {
                self.next_sample = self.sim.elapsed() + STATS_PERIOD;
                self.sample_stats();
            }
        }
        Ok(())
    }

    /// frps's live counts now, `None` while frps is down.
    pub fn stats(&self) -> Option<frps::Stats> {
        lock(&self.frps_stats)
            .as_ref()
            .map(frps::StatsHandle::snapshot)
    }

    fn sample_stats(&mut self) {
        let Some(now) = self.stats() else { return };
        if self.last_stats.as_ref() != Some(&now) {
            self.trace
                .record_at(self.sim.elapsed(), Event::Stats(now.clone()));
            self.last_stats = Some(now);
        }
    }

    fn fault(&self, what: String) {
        tracing::info!("fault: {what}");
        self.trace.record_at(self.sim.elapsed(), Event::Fault(what));
    }

    /// Cuts every link between `a` and `b`; segments in flight are lost.
    pub fn partition(&mut self, a: &str, b: &str) {
        self.fault(format!("partition {a} {b}"));
        self.sim.partition(a, b);
    }

    /// Heals a partition.
    pub fn repair(&mut self, a: &str, b: &str) {
        self.fault(format!("repair {a} {b}"));
        self.sim.repair(a, b);
    }

    /// Stops a host's software (its sockets close as a killed process's would).
    pub fn crash(&mut self, host: &str) {
        self.fault(format!("crash {host}"));
        if host == FRPS {
            *lock(&self.frps_stats) = None;
        }
        self.sim.crash(host);
    }

    /// Starts a host's software again (after [`Self::crash`], or restarts it).
    pub fn bounce(&mut self, host: &str) {
        self.fault(format!("bounce {host}"));
        if host == FRPS {
            *lock(&self.frps_stats) = None;
        }
        self.sim.bounce(host);
    }

    /// Sets the random link-failure rate (turmoil's `fail_rate`; `repair_rate` is per world)
    /// between `a` and `b`.
    pub fn set_fail_rate(&mut self, a: &str, b: &str, rate: f64) {
        self.fault(format!("fail_rate {a} {b} {rate}"));
        self.sim.set_link_fail_rate(a, b, rate);
    }

    /// Sets the maximum latency of the link between `a` and `b`.
    pub fn set_max_latency(&mut self, a: &str, b: &str, max: Duration) {
        self.fault(format!("max_latency {a} {b} {max:?}"));
        self.sim.set_link_max_message_latency(a, b, max);
    }
}

impl Drop for World {
    /// With `SIM_TRACE` set, prints the trace when the run ends (passed or failed).
    fn drop(&mut self) {
        if std::env::var_os("SIM_TRACE").is_some() {
            for e in self.trace.entries() {
                println!("{e}");
            }
        }
    }
}

/// A per-host, per-start seed derived from the scenario seed (FNV-1a then splitmix64).
pub fn sub_seed(seed: u64, label: &str, start: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in label.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    splitmix(seed ^ splitmix(h ^ start))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The backend: echoes every byte back until the peer closes.
async fn echo(port: u16) -> turmoil::Result {
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
    loop {
        let (mut conn, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if conn.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
}

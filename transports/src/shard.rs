//! Connection affinity: the binaries run one single-threaded tokio runtime per core (a
//! *shard*) instead of one work-stealing pool, and every task of a connection runs on the shard
//! that owns the connection's socket.
//!
//! Why: a tunnelled byte crosses a pipeline of tasks (relay → yamux writer → TLS, and back on
//! the other side). On a work-stealing pool those stages land on different workers, so each
//! hand-off is a cross-core wake-up and the frames change caches; on a small machine shared with
//! the services and the load, each worker is also preempted by the other processes. On one
//! thread the hand-off is a local queue push. Measured on the 2-core bench host (NOTES.md, "One
//! runtime per core"): one tokio worker per process instead of two gave +25 % single-stream
//! and +17 % 8-stream throughput and +14 % keep-alive requests/s. Shards keep that gain for
//! each session while a frps with many clients still spreads them over every core, the way
//! nginx and Envoy pin a connection to one worker.
//!
//! The rule (applied by [`crate::TokioNet`], and by nobody when no shards are installed: the
//! libraries, their tests and the simulator run on whatever runtime they are given):
//! - an accepted control-port connection moves to a shard before its handshake. With tcpMux,
//!   shards take turns: the session carries all of that client's traffic. Without tcpMux, the
//!   peer's IP picks the shard, so a client's control connection, the proxies it registers and
//!   every work connection it opens meet on one thread;
//! - whatever that connection's tasks spawn (sessions, proxy listeners, user connections,
//!   relays) stays on its shard, because `tokio::spawn` on a current-thread runtime spawns there;
//! - frpc opens work connections without tcpMux on the shards in turn: each is a socket, a TLS
//!   session and a relay of its own.
//!
//! Everything still works across shards (a group listener on one shard handing a user
//! connection to a member on another): tokio's wakers and IO resources are thread-safe, only
//! slower to cross.

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::sync::watch;

/// How long a stopping shard lets its tasks' blocking work finish before leaving it behind.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// One shard: a current-thread runtime and the thread that runs it.
#[derive(Debug, Clone)]
pub struct Shard {
    handle: Handle,
    thread: ThreadId,
    name: String,
}

impl Shard {
    /// The shard of the runtime running on this thread (a current-thread runtime's `block_on`).
    pub fn current() -> Self {
        let thread = std::thread::current();
        Shard {
            handle: Handle::current(),
            thread: thread.id(),
            name: thread.name().unwrap_or("unnamed").to_owned(),
        }
    }

    /// The name of the thread this shard's tasks run on (`main`, `shard-1`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The thread this shard's tasks run on.
    pub fn thread(&self) -> ThreadId {
        self.thread
    }

    /// Runs `fut` on this shard: right here (a plain `tokio::spawn`) when this is the current
    /// thread, which saves the cross-thread hand-off.
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if std::thread::current().id() == self.thread && Handle::try_current().is_ok() {
            drop(tokio::spawn(fut));
        } else {
            drop(self.handle.spawn(fut));
        }
    }
}

/// The runtimes connections are spread over: the caller's plus one thread per extra shard.
#[derive(Debug)]
pub struct Shards {
    shards: Vec<Shard>,
    next: AtomicUsize,
}

impl Shards {
    /// Shards for the given runtimes; the first is the caller's (the one running the service).
    pub fn new(shards: Vec<Shard>) -> Self {
        assert!(!shards.is_empty(), "at least one runtime");
        Shards {
            shards,
            next: AtomicUsize::new(0),
        }
    }

    /// How many runtimes there are.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Never: there is at least the caller's runtime.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The shard for a connection from `ip` (the same for every connection from it).
    pub fn for_ip(&self, ip: IpAddr) -> &Shard {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        ip.hash(&mut hasher);
        &self.shards[(hasher.finish() % self.shards.len() as u64) as usize]
    }

    /// The next shard in turn.
    pub fn next(&self) -> &Shard {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.shards[i % self.shards.len()]
    }
}

static INSTALLED: OnceLock<Shards> = OnceLock::new();

/// The process's shards, when the binary installed them ([`run_sharded`]).
pub fn installed() -> Option<&'static Shards> {
    INSTALLED.get()
}

/// Runs `fut` on the next shard in turn, or here when no shards are installed.
pub fn spawn_next<F>(fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    match installed() {
        Some(shards) => shards.next().spawn(fut),
        None => drop(tokio::spawn(fut)),
    }
}

/// The number of shards the binaries start: `TOKIO_WORKER_THREADS` when set (tokio's own
/// variable for its worker count, so the knob users know keeps working), else one per core.
pub fn default_count() -> usize {
    count_from(std::env::var("TOKIO_WORKER_THREADS").ok().as_deref())
}

fn count_from(var: Option<&str>) -> usize {
    var.and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn runtime() -> std::io::Result<Runtime> {
    Builder::new_current_thread().enable_all().build()
}

/// Runs `main` to completion on a current-thread runtime on this thread, with `count - 1` more
/// shard threads beside it, installed for the process ([`installed`]); stops them when `main`
/// is done. With `count` 1 nothing is installed and everything runs on this thread.
///
/// Shards can be installed once per process; a later call runs `main` without them.
pub fn run_sharded<Fut>(count: usize, main: Fut) -> std::io::Result<Fut::Output>
where
    Fut: Future,
{
    let main_rt = runtime()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    if count > 1 && INSTALLED.get().is_none() {
        let main_thread = std::thread::current();
        let mut shards = vec![Shard {
            handle: main_rt.handle().clone(),
            thread: main_thread.id(),
            name: main_thread.name().unwrap_or("main").to_owned(),
        }];
        for i in 1..count {
            let rt = runtime()?;
            let handle = rt.handle().clone();
            let mut stop = stop_rx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("shard-{i}"))
                .spawn(move || {
                    rt.block_on(async move {
                        let _ = stop.wait_for(|stopped| *stopped).await;
                    });
                    rt.shutdown_timeout(STOP_TIMEOUT);
                })?;
            shards.push(Shard {
                handle,
                thread: thread.thread().id(),
                name: format!("shard-{i}"),
            });
            threads.push(thread);
        }
        let _ = INSTALLED.set(Shards::new(shards));
    }
    let out = main_rt.block_on(main);
    let _ = stop_tx.send(true);
    for thread in threads {
        let _ = thread.join();
    }
    main_rt.shutdown_timeout(STOP_TIMEOUT);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` shards, each a current-thread runtime on its own thread, kept running until the
    /// returned sender is dropped.
    fn shard_threads(n: usize) -> (Vec<Shard>, Vec<JoinHandle<()>>, watch::Sender<bool>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut shards = Vec::new();
        let mut threads = Vec::new();
        for _ in 0..n {
            let rt = runtime().unwrap();
            let handle = rt.handle().clone();
            let mut stop = stop_rx.clone();
            let t = std::thread::spawn(move || {
                rt.block_on(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
            });
            shards.push(Shard {
                handle,
                thread: t.thread().id(),
                name: String::new(),
            });
            threads.push(t);
        }
        (shards, threads, stop_tx)
    }

    #[test]
    fn one_ip_always_gets_the_same_shard_and_turns_cover_all() {
        let (list, threads, stop) = shard_threads(3);
        let shards = Shards::new(list);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let first = shards.for_ip(ip).thread();
        for _ in 0..10 {
            assert_eq!(shards.for_ip(ip).thread(), first);
        }
        let turns: std::collections::HashSet<_> = (0..6).map(|_| shards.next().thread()).collect();
        assert_eq!(turns.len(), 3, "taking turns visits every shard");
        let spread: std::collections::HashSet<_> = (0..64u8)
            .map(|i| shards.for_ip(IpAddr::from([10, 0, 0, i])).thread())
            .collect();
        assert!(spread.len() > 1, "many addresses spread over the shards");
        stop.send(true).unwrap();
        threads.into_iter().for_each(|t| t.join().unwrap());
    }

    #[test]
    fn a_shard_runs_what_is_spawned_on_it_and_what_that_spawns() {
        let (list, threads, stop) = shard_threads(2);
        let target = list[1].clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let caller = runtime().unwrap();
        caller.block_on(async {
            target.spawn(async move {
                let outer = std::thread::current().id();
                // A task spawned by a task of the shard stays on the shard.
                let inner = tokio::spawn(async { std::thread::current().id() })
                    .await
                    .unwrap();
                let _ = tx.send((outer, inner));
            });
        });
        let (outer, inner) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(outer, target.thread());
        assert_eq!(inner, target.thread());
        stop.send(true).unwrap();
        threads.into_iter().for_each(|t| t.join().unwrap());
    }

    #[test]
    fn spawning_on_the_current_shard_runs_locally() {
        let rt = runtime().unwrap();
        let here = rt.block_on(async {
            let shard = Shard::current();
            let (tx, rx) = tokio::sync::oneshot::channel();
            shard.spawn(async move {
                let _ = tx.send(std::thread::current().id());
            });
            rx.await.unwrap()
        });
        assert_eq!(here, std::thread::current().id());
    }

    #[test]
    fn count_follows_tokio_worker_threads() {
        assert_eq!(count_from(Some("3")), 3);
        assert_eq!(count_from(Some(" 1 ")), 1);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(count_from(None), cores);
        assert_eq!(
            count_from(Some("0")),
            cores,
            "0 means the default, as for tokio"
        );
        assert_eq!(count_from(Some("many")), cores);
    }
}

//! One test's context: which implementation plays each side, a temp folder for configs and
//! logs, and launchers that record every process's log for the failure report.
//!
//! `Ctx` is a cheap clone (an `Arc`); the runner (`crate::run`) keeps one clone so the temp
//! folder, and thus every log, outlives the test body and can be printed when it fails.

use std::ffi::OsString;
use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::bins::{binary, Impl, Role};
use crate::config::{FrpcConfig, FrpsConfig};
use crate::ports::{free_port, free_tcp_udp_port, free_udp_port};
use crate::process::{read_log, FrpProcess, Launch};

/// How long frps may take to listen on its bind port (real frp needed up to ~0.7 s here).
pub const FRPS_START_TIMEOUT: Duration = Duration::from_secs(15);
/// How many times `start_frps` picks a new port after losing a port race.
const BIND_ATTEMPTS: usize = 3;

/// Which implementation runs frps and which runs frpc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Combo {
    /// The server's implementation.
    pub frps: Impl,
    /// The client's implementation.
    pub frpc: Impl,
}

impl Combo {
    /// `frps` server with `frpc` client.
    pub fn new(frps: Impl, frpc: Impl) -> Self {
        Self { frps, frpc }
    }
}

impl fmt::Display for Combo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frps={} frpc={}", self.frps, self.frpc)
    }
}

/// A running frps and the config it was started with.
#[derive(Debug)]
pub struct Frps {
    /// The process.
    pub process: FrpProcess,
    /// Its config (bind port included).
    pub config: FrpsConfig,
}

impl Frps {
    /// The bind port.
    pub fn port(&self) -> u16 {
        self.config.bind_port
    }
}

impl Deref for Frps {
    type Target = FrpProcess;
    fn deref(&self) -> &FrpProcess {
        &self.process
    }
}

/// How frps receives its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrpsMode {
    File,
    Flags,
}

/// Per-test state; see the module docs.
#[derive(Debug, Clone)]
pub struct Ctx {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    combo: Combo,
    dir: TempDir,
    seq: AtomicUsize,
    logs: Mutex<Vec<(String, PathBuf)>>,
    envs: Mutex<Vec<(String, String)>>,
}

impl Ctx {
    /// A context with a fresh temp folder.
    pub fn new(combo: Combo) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("frp-e2e-")
            .tempdir()
            .context("creating the test's temp folder")?;
        Ok(Self {
            inner: Arc::new(Inner {
                combo,
                dir,
                seq: AtomicUsize::new(0),
                logs: Mutex::new(Vec::new()),
                envs: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The implementations under test.
    pub fn combo(&self) -> Combo {
        self.inner.combo
    }

    /// The temp folder (working directory of every process).
    pub fn dir(&self) -> &Path {
        self.inner.dir.path()
    }

    fn next_id(&self) -> usize {
        self.inner.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Writes `text` to `rel` inside the temp folder (creating folders) and returns the path.
    pub fn write_file(&self, rel: &str, text: &str) -> Result<PathBuf> {
        let path = self.dir().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Sets an environment variable for every process started from now on.
    pub fn set_env(&self, key: &str, value: &str) {
        let mut envs = self.inner.envs.lock().unwrap_or_else(|e| e.into_inner());
        envs.retain(|(k, _)| k != key);
        envs.push((key.to_owned(), value.to_owned()));
    }

    /// Spawns `role` of `imp` with `args` in the temp folder, logging to a file of its own.
    pub fn spawn(
        &self,
        imp: Impl,
        role: Role,
        args: Vec<OsString>,
        envs: Vec<(String, String)>,
    ) -> Result<FrpProcess> {
        let program = binary(imp, role)?;
        let id = self.next_id();
        let label = format!("{role} ({imp}) #{id}");
        let log_path = self.dir().join(format!("{role}-{imp}-{id}.log"));
        self.lock_logs().push((label.clone(), log_path.clone()));
        let mut all_envs = self
            .inner
            .envs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        all_envs.extend(envs);
        let envs = all_envs;
        FrpProcess::spawn(Launch {
            label,
            program,
            args,
            cwd: self.dir().to_path_buf(),
            envs,
            log_path,
        })
    }

    fn lock_logs(&self) -> std::sync::MutexGuard<'_, Vec<(String, PathBuf)>> {
        self.inner.logs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts this combo's frps with `-c <file>` on a free port, waiting until it listens.
    /// `build` receives the bind port; a start that lost the port race is retried.
    pub async fn start_frps(&self, build: impl Fn(u16) -> FrpsConfig) -> Result<Frps> {
        self.start_frps_mode(|| Ok(build(free_port()?)), FrpsMode::File)
            .await
    }

    /// Like [`Ctx::start_frps`] but passes the settings as command-line flags (no `-c`).
    pub async fn start_frps_flags(&self, build: impl Fn(u16) -> FrpsConfig) -> Result<Frps> {
        self.start_frps_mode(|| Ok(build(free_port()?)), FrpsMode::Flags)
            .await
    }

    /// Starts frps with UDP listeners: `build(bind_port, udp_port)` gets a bind port that is
    /// free for TCP and UDP alike (so `kcpBindPort` may equal it, as frp's docs suggest) and
    /// another free UDP port (e.g. for `quicBindPort`). Waits until frps listens on `bindPort`
    /// and has bound every UDP port its config names.
    pub async fn start_frps_udp(&self, build: impl Fn(u16, u16) -> FrpsConfig) -> Result<Frps> {
        let pick = || -> Result<FrpsConfig> {
            let bind = free_tcp_udp_port()?;
            let mut udp = free_udp_port()?;
            while udp == bind {
                udp = free_udp_port()?;
            }
            Ok(build(bind, udp))
        };
        self.start_frps_mode(pick, FrpsMode::File).await
    }

    async fn start_frps_mode(
        &self,
        build: impl Fn() -> Result<FrpsConfig>,
        mode: FrpsMode,
    ) -> Result<Frps> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let config = build()?;
            let process = self.spawn_frps(&config, mode)?;
            match wait_listening(&process, &config).await {
                Ok(()) => return Ok(Frps { process, config }),
                Err(e) if attempt < BIND_ATTEMPTS && lost_port_race(&process) => {
                    eprintln!(
                        "{}: port {} was taken, retrying: {e:#}",
                        process.label(),
                        config.bind_port
                    );
                }
                Err(e) => return Err(e.context(format!("starting frps ({})", self.combo().frps))),
            }
        }
    }

    /// Starts frps again with exactly `config` (same bind port, no retry), e.g. after killing
    /// the previous one, and waits until it listens.
    pub async fn restart_frps(&self, config: &FrpsConfig) -> Result<Frps> {
        let process = self.spawn_frps(config, FrpsMode::File)?;
        wait_listening(&process, config)
            .await
            .context("restarting frps on the same port")?;
        Ok(Frps {
            process,
            config: config.clone(),
        })
    }

    fn spawn_frps(&self, config: &FrpsConfig, mode: FrpsMode) -> Result<FrpProcess> {
        let args = match mode {
            FrpsMode::File => {
                let name = format!("frps-{}.toml", self.next_id());
                let path = self.write_file(&name, &config.to_toml())?;
                vec!["-c".into(), path.into_os_string()]
            }
            FrpsMode::Flags => config.to_args(),
        };
        self.spawn(self.combo().frps, Role::Frps, args, Vec::new())
    }

    /// Writes `config` to a file and starts this combo's frpc on it (does not wait).
    pub fn start_frpc(&self, config: &FrpcConfig) -> Result<FrpProcess> {
        let name = format!("frpc-{}.toml", self.next_id());
        let path = self.write_file(&name, &config.to_toml())?;
        self.start_frpc_file(&path, Vec::new())
    }

    /// Starts an frpc of implementation `imp` (whatever the combination says) with `config`:
    /// for scenarios that mix clients, such as a load-balancing group with one real and one
    /// of our frpc.
    pub fn start_frpc_impl(&self, imp: Impl, config: &FrpcConfig) -> Result<FrpProcess> {
        let name = format!("frpc-{}.toml", self.next_id());
        let path = self.write_file(&name, &config.to_toml())?;
        let args = vec!["-c".into(), path.as_os_str().to_owned()];
        self.spawn(imp, Role::Frpc, args, Vec::new())
    }

    /// Starts this combo's frpc with `-c path` and extra environment (does not wait).
    pub fn start_frpc_file(&self, path: &Path, envs: Vec<(String, String)>) -> Result<FrpProcess> {
        let args = vec!["-c".into(), path.as_os_str().to_owned()];
        self.spawn(self.combo().frpc, Role::Frpc, args, envs)
    }

    /// Runs `<role> verify -c <config>` of `imp` (bounded to 20 s) and returns its exit
    /// status and output.
    pub async fn verify(
        &self,
        imp: Impl,
        role: Role,
        config: &Path,
    ) -> Result<(ExitStatus, String)> {
        let args = vec!["verify".into(), "-c".into(), config.as_os_str().to_owned()];
        let process = self.spawn(imp, role, args, Vec::new())?;
        let status = process.wait_exit(Duration::from_secs(20)).await?;
        Ok((status, process.log()))
    }

    /// Every log of this test, labelled, for a failure report.
    pub fn logs_report(&self) -> String {
        let mut out = String::new();
        for (label, path) in self.lock_logs().iter() {
            out.push_str(&format!("===== {label}: {} =====\n", path.display()));
            let log = read_log(path);
            // Keep reports readable: the start and the end of very long logs.
            const MAX: usize = 12_000;
            if log.len() > MAX {
                let head = floor_char_boundary(&log, MAX / 3);
                let tail = ceil_char_boundary(&log, log.len() - MAX * 2 / 3);
                out.push_str(&log[..head]);
                out.push_str("\n[...]\n");
                out.push_str(&log[tail..]);
            } else {
                out.push_str(&log);
            }
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }
}

/// Waits until frps listens on its TCP `bindPort` and has bound its UDP `kcpBindPort` and
/// `quicBindPort` (when set), all within [`FRPS_START_TIMEOUT`].
async fn wait_listening(process: &FrpProcess, config: &FrpsConfig) -> Result<()> {
    let started = std::time::Instant::now();
    process
        .wait_for_port(config.bind_port, FRPS_START_TIMEOUT)
        .await?;
    for (key, port) in [
        ("kcpBindPort", config.kcp_bind_port),
        ("quicBindPort", config.quic_bind_port),
    ] {
        let Some(port) = port else { continue };
        let left = FRPS_START_TIMEOUT.saturating_sub(started.elapsed());
        process
            .wait_for_udp_port(port, left.max(Duration::from_secs(1)))
            .await
            .with_context(|| format!("frps listening on udp {key} = {port}"))?;
    }
    Ok(())
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Whether a failed frps start looks like a lost port race (it exited saying the address is
/// in use; Go prints `bind: address already in use`, Rust `Address already in use`).
fn lost_port_race(process: &FrpProcess) -> bool {
    !process.is_running()
        && process
            .log()
            .to_lowercase()
            .contains("address already in use")
}

/// Fails unless `text` contains `pattern`, quoting the text.
pub fn ensure_contains(text: &str, pattern: &str, what: &str) -> Result<()> {
    if text.contains(pattern) {
        return Ok(());
    }
    bail!("{what}: expected {pattern:?} in output:\n{text}")
}

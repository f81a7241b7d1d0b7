//! A guard around one running `frps`/`frpc` process.
//!
//! Output (stdout and stderr) goes to a log file so nothing blocks on a full pipe and the text
//! survives the process for failure reports. The process is killed and reaped on `Drop`, and
//! every wait is bounded and fails early when the process has already exited.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use tokio::net::{TcpStream, UdpSocket};

/// How often waits poll the log file, the port or the process state.
const POLL: Duration = Duration::from_millis(50);
/// How long a UDP probe waits for an ICMP port-unreachable (loopback answers in microseconds).
const UDP_PROBE_WAIT: Duration = Duration::from_millis(200);
/// Lines of log quoted in an error message (`Ctx` prints whole logs on failure).
const TAIL_LINES: usize = 20;

/// What to launch: program, arguments, working directory, extra environment.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Human-readable name used in messages, e.g. `frps (real)`.
    pub label: String,
    /// The binary.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Working directory (relative paths in configs resolve against it).
    pub cwd: PathBuf,
    /// Extra environment variables.
    pub envs: Vec<(String, String)>,
    /// File receiving stdout and stderr.
    pub log_path: PathBuf,
}

/// A running frp process, killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct FrpProcess {
    label: String,
    log_path: PathBuf,
    child: Mutex<Child>,
}

impl FrpProcess {
    /// Starts the process described by `launch`.
    pub fn spawn(launch: Launch) -> Result<Self> {
        let log = File::create(&launch.log_path)
            .with_context(|| format!("creating log file {}", launch.log_path.display()))?;
        let log_err = log.try_clone().context("duplicating the log file handle")?;
        let child = Command::new(&launch.program)
            .args(&launch.args)
            .current_dir(&launch.cwd)
            .envs(launch.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .with_context(|| format!("spawning {} ({})", launch.label, launch.program.display()))?;
        Ok(Self {
            label: launch.label,
            log_path: launch.log_path,
            child: Mutex::new(child),
        })
    }

    /// The label given at launch.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the process printed so far, with ANSI colour codes removed.
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        // A poisoned lock only means another thread panicked while polling; the Child is fine.
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The exit status if the process has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.child().try_wait().ok().flatten()
    }

    /// Whether the process is still running.
    pub fn is_running(&self) -> bool {
        self.exit_status().is_none()
    }

    /// Fails (with the log tail) if the process has exited.
    pub fn ensure_running(&self) -> Result<()> {
        match self.exit_status() {
            None => Ok(()),
            Some(status) => Err(self.failure(&format!("exited unexpectedly ({status})"))),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    /// Asks the process to stop (SIGTERM, through `kill(1)`); does not wait.
    pub fn terminate(&self) -> Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .context("running kill -TERM")?;
        ensure!(
            status.success(),
            "kill -TERM {} failed: {status}",
            self.pid()
        );
        Ok(())
    }

    /// Kills the process (SIGKILL) and waits for it; a no-op if it already exited.
    pub fn kill(&self) {
        let mut child = self.child();
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    /// Waits until the log contains `pattern` (plain substring, ANSI codes stripped).
    pub async fn wait_for_log(&self, pattern: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let exited = self.exit_status();
            if self.log().contains(pattern) {
                return Ok(());
            }
            if let Some(status) = exited {
                return Err(
                    self.failure(&format!("exited ({status}) without printing {pattern:?}"))
                );
            }
            if Instant::now() >= deadline {
                return Err(self.failure(&format!("did not print {pattern:?} within {timeout:?}")));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until something accepts TCP connections on `127.0.0.1:port`, failing early if
    /// this process exits first.
    pub async fn wait_for_port(&self, port: u16, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.ensure_running()
                .with_context(|| format!("waiting for port {port}"))?;
            let attempt = tokio::time::timeout(
                Duration::from_millis(500),
                TcpStream::connect(("127.0.0.1", port)),
            )
            .await;
            // Equal local and peer addresses are Linux's TCP self-connect to a port nobody
            // listens on yet: not a listener.
            if let Ok(Ok(stream)) = attempt {
                if stream.local_addr().ok() != stream.peer_addr().ok() {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(self.failure(&format!("port {port} not listening within {timeout:?}")));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until something has bound UDP `127.0.0.1:port` (frps's KCP or QUIC listener),
    /// failing early if this process exits first. See [`udp_port_bound`] for the probe.
    pub async fn wait_for_udp_port(&self, port: u16, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.ensure_running()
                .with_context(|| format!("waiting for udp port {port}"))?;
            if udp_port_bound(port).await? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.failure(&format!("udp port {port} not bound within {timeout:?}")));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for the process to exit on its own and returns its status.
    pub async fn wait_exit(&self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(self.failure(&format!("still running after {timeout:?}")));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// An error naming this process, with `what` and the tail of its log.
    pub fn failure(&self, what: &str) -> anyhow::Error {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
        anyhow!(
            "{} {what}\n--- last lines of {} ---\n{tail}\n---",
            self.label,
            self.log_path.display()
        )
    }
}

impl Drop for FrpProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether something has bound UDP `127.0.0.1:port`.
///
/// Sends one empty datagram from a connected socket: to an unbound loopback port it draws an
/// ICMP port-unreachable, which Linux reports on the socket as `ECONNREFUSED`; a bound port
/// stays silent (KCP and QUIC listeners drop a zero-length datagram as too short).
pub async fn udp_port_bound(port: u16) -> Result<bool> {
    let socket = UdpSocket::bind(("127.0.0.1", 0))
        .await
        .context("binding a udp probe socket")?;
    socket
        .connect(("127.0.0.1", port))
        .await
        .with_context(|| format!("connecting a udp probe to 127.0.0.1:{port}"))?;
    match socket.send(&[]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(false),
        Err(e) => return Err(e).context("sending the udp probe"),
    }
    let mut buf = [0u8; 64];
    match tokio::time::timeout(UDP_PROBE_WAIT, socket.recv(&mut buf)).await {
        Err(_elapsed) => Ok(true),
        Ok(Ok(_)) => Ok(true),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(false),
        Ok(Err(e)) => Err(e).context("reading the udp probe's answer"),
    }
}

/// Reads a log file as text with ANSI escape sequences removed ("" if unreadable).
pub fn read_log(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    strip_ansi(&String::from_utf8_lossy(&bytes))
}

/// Removes ANSI CSI sequences (`ESC [ ... final-byte`), which real frp writes to its console
/// log even when it is not a terminal (frp `pkg/util/log`, colour on unless
/// `log.disablePrintColor`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Fails unless `status` is an exit with a non-zero code (a signal death does not count).
pub fn ensure_failed_exit(status: ExitStatus, who: &str) -> Result<()> {
    match status.code() {
        Some(0) => bail!("{who} exited with code 0, expected a failure"),
        Some(_) => Ok(()),
        None => bail!("{who} was killed by a signal ({status}), expected a non-zero exit code"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colours() {
        let raw = "\u{1b}[1;34m2026 [I] frps started\n\u{1b}[0m";
        assert_eq!(strip_ansi(raw), "2026 [I] frps started\n");
    }

    fn sh(dir: &Path, script: &str) -> FrpProcess {
        FrpProcess::spawn(Launch {
            label: "sh".into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            cwd: dir.to_path_buf(),
            envs: vec![("E2E_X".into(), "hello".into())],
            log_path: dir.join("sh.log"),
        })
        .expect("spawn sh")
    }

    #[tokio::test]
    async fn waits_for_log_and_exit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = sh(dir.path(), "echo \"$E2E_X world\"; sleep 0.2; exit 3");
        p.wait_for_log("hello world", Duration::from_secs(5))
            .await
            .expect("log line");
        let status = p.wait_exit(Duration::from_secs(5)).await.expect("exit");
        assert_eq!(status.code(), Some(3));
        assert!(!p.is_running());
        let err = p
            .wait_for_log("never printed", Duration::from_secs(5))
            .await
            .expect_err("must fail fast after exit");
        assert!(err.to_string().contains("exited"), "{err}");
    }

    #[tokio::test]
    async fn udp_probe_tells_bound_from_free() {
        let socket = std::net::UdpSocket::bind(("127.0.0.1", 0)).expect("bind");
        let port = socket.local_addr().expect("addr").port();
        assert!(udp_port_bound(port).await.expect("probe bound"));
        drop(socket);
        assert!(!udp_port_bound(port).await.expect("probe free"));
    }

    #[tokio::test]
    async fn drop_kills() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = sh(dir.path(), "sleep 30");
        assert!(p.is_running());
        let err = p
            .wait_for_port(1, Duration::from_millis(200))
            .await
            .expect_err("nothing listens on port 1");
        assert!(err.to_string().contains("port 1"), "{err}");
        let started = Instant::now();
        drop(p);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

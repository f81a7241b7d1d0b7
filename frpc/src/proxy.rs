//! frpc's proxies: their registration state across sessions and what happens to a work
//! connection once `StartWorkConn` names its proxy (frp v0.65.0 `client/proxy/`).
//!
//! Phases follow frp's `proxy_wrapper.go`: `new` → `wait start` (NewProxy sent) → `running`
//! (NewProxyResp without error) or `start error`; every 3 s a proxy waiting more than 20 s, or
//! in `start error` for more than 30 s, has its NewProxy sent again. A new session puts every
//! proxy back to `new` and registers it again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use control::{CloseProxy, Message, NewProxy, NewProxyResp, StartWorkConn};
use tokio::sync::{mpsc, Notify};
use tracing::{debug, error, info, info_span, warn, Instrument};
use transports::{BoxStream, Net};

use crate::health::HealthSpec;
use crate::settings::ClientSettings;

/// frp's `waitResponseTimeout`.
const WAIT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);
/// frp's `startErrTimeout`.
const START_ERR_TIMEOUT: Duration = Duration::from_secs(30);
/// frp's dial timeout for the local service.
const LOCAL_DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// A proxy's phase, named as frp names them in `frpc status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not yet sent to the server.
    New,
    /// NewProxy sent, no answer yet.
    WaitStart,
    /// The server refused it.
    StartError,
    /// Registered and serving.
    Running,
    /// Closed on the server because its health check failed.
    CheckFailed,
    /// Closed.
    Closed,
}

impl Phase {
    /// frp's phase string.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::New => "new",
            Phase::WaitStart => "wait start",
            Phase::StartError => "start error",
            Phase::Running => "running",
            Phase::CheckFailed => "check failed",
            Phase::Closed => "closed",
        }
    }
}

/// What a work connection needs to know about its proxy.
#[derive(Clone)]
pub(crate) struct LocalTarget {
    pub(crate) name: String,
    pub(crate) local_ip: String,
    pub(crate) local_port: u16,
    pub(crate) encryption_key: Option<control::crypto::Key>,
    pub(crate) compression: bool,
    pub(crate) limiter: Option<std::sync::Arc<proxies::limit::BandwidthLimiter>>,
    pub(crate) proxy_protocol: Option<proxies::proxy_protocol::Version>,
}

struct Entry {
    new_proxy: NewProxy,
    target: LocalTarget,
    /// The health check, if the proxy has one.
    health: Option<HealthSpec>,
    /// False while the health check fails (and before it first passes).
    healthy: bool,
    phase: Phase,
    remote_addr: String,
    err: String,
    last_send: Option<Instant>,
    last_err: Option<Instant>,
}

struct State {
    entries: HashMap<String, Entry>,
    tx: Option<mpsc::Sender<Message>>,
}

/// All proxies of one frpc, keyed by their name on the wire (`user.name` when `user` is set).
pub(crate) struct ProxyManager {
    state: Mutex<State>,
    /// Notified whenever a proxy leaves [`Phase::WaitStart`] (answer received, session ended),
    /// for work connections that arrived before their proxy's answer was read.
    answered: Notify,
}

impl ProxyManager {
    /// Builds the manager from the configured proxies; unsupported kinds are logged and left out.
    pub(crate) fn new(settings: &ClientSettings, proxies: &[conf::ProxyConfig]) -> Self {
        let mut entries = HashMap::new();
        for p in proxies {
            match crate::settings_map::proxy_entry(settings, p) {
                Ok((new_proxy, target)) => {
                    let health = HealthSpec::from_config(p.base());
                    entries.insert(
                        new_proxy.proxy_name.clone(),
                        Entry {
                            new_proxy,
                            target,
                            healthy: health.is_none(),
                            health,
                            phase: Phase::New,
                            remote_addr: String::new(),
                            err: String::new(),
                            last_send: None,
                            last_err: None,
                        },
                    );
                }
                Err(e) => warn!("[{}] {e}", p.name()),
            }
        }
        Self {
            state: Mutex::new(State { entries, tx: None }),
            answered: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session: every proxy is registered again on `tx`.
    pub(crate) fn start_session(&self, tx: mpsc::Sender<Message>) {
        let mut st = self.lock();
        for e in st.entries.values_mut() {
            e.phase = Phase::New;
            e.remote_addr.clear();
            e.err.clear();
        }
        st.tx = Some(tx);
        drop(st);
        self.answered.notify_waiters();
        self.check_status();
    }

    /// The session ended: nothing is registered any more.
    pub(crate) fn end_session(&self) {
        let mut st = self.lock();
        st.tx = None;
        for e in st.entries.values_mut() {
            e.phase = Phase::New;
        }
        drop(st);
        self.answered.notify_waiters();
    }

    /// The health checks to run: each proxy's wire name and spec.
    pub(crate) fn health_checks(&self) -> Vec<(String, HealthSpec)> {
        let st = self.lock();
        st.entries
            .iter()
            .filter_map(|(n, e)| e.health.clone().map(|h| (n.clone(), h)))
            .collect()
    }

    /// A health check changed its verdict: register or close the proxy right away.
    pub(crate) fn set_health(&self, name: &str, healthy: bool) {
        if let Some(e) = self.lock().entries.get_mut(name) {
            e.healthy = healthy;
        }
        self.check_status();
    }

    /// Sends NewProxy for healthy proxies that are new, waited too long, or failed long enough
    /// ago, and CloseProxy for registered ones whose health check fails (frp
    /// `proxy_wrapper.go checkWorker`).
    pub(crate) fn check_status(&self) {
        let mut st = self.lock();
        let Some(tx) = st.tx.clone() else { return };
        let now = Instant::now();
        for e in st.entries.values_mut() {
            if !e.healthy {
                if matches!(e.phase, Phase::Running | Phase::WaitStart) {
                    let close = CloseProxy {
                        proxy_name: e.new_proxy.proxy_name.clone(),
                    };
                    if tx.try_send(Message::CloseProxy(close)).is_ok() {
                        e.phase = Phase::CheckFailed;
                        self.answered.notify_waiters();
                    }
                }
                continue;
            }
            let due = match e.phase {
                Phase::New | Phase::CheckFailed => true,
                Phase::WaitStart => e.last_send.is_none_or(|t| now - t > WAIT_RESPONSE_TIMEOUT),
                Phase::StartError => e.last_err.is_none_or(|t| now - t > START_ERR_TIMEOUT),
                Phase::Running | Phase::Closed => false,
            };
            if due {
                if tx.try_send(Message::NewProxy(e.new_proxy.clone())).is_err() {
                    debug!(
                        "control send queue full; NewProxy for [{}] retried later",
                        e.new_proxy.proxy_name
                    );
                    continue;
                }
                e.phase = Phase::WaitStart;
                e.last_send = Some(now);
            }
        }
    }

    /// The server's answer to a NewProxy.
    pub(crate) fn on_new_proxy_resp(&self, r: NewProxyResp) {
        let mut st = self.lock();
        let Some(e) = st.entries.get_mut(&r.proxy_name) else {
            warn!(
                "[{}] start error: proxy [{}] not found",
                r.proxy_name, r.proxy_name
            );
            return;
        };
        if e.phase != Phase::WaitStart {
            return;
        }
        if r.error.is_empty() {
            e.phase = Phase::Running;
            e.remote_addr = r.remote_addr;
            e.err.clear();
            info!("[{}] start proxy success", r.proxy_name);
        } else {
            e.phase = Phase::StartError;
            e.err = r.error.clone();
            e.last_err = Some(Instant::now());
            warn!("[{}] start error: {}", r.proxy_name, r.error);
        }
        drop(st);
        self.answered.notify_waiters();
    }

    /// Each proxy's name, phase, remote address and last error (for `frpc status`).
    #[allow(dead_code)]
    pub(crate) fn status(&self) -> Vec<(String, Phase, String, String)> {
        let st = self.lock();
        let mut v: Vec<_> = st
            .entries
            .iter()
            .map(|(n, e)| (n.clone(), e.phase, e.remote_addr.clone(), e.err.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The target of proxy `name` once it runs; `None` (logged) if it is unknown or not running.
    ///
    /// The server dispatches work only to a proxy it has registered, so a `StartWorkConn` for a
    /// proxy still waiting for its `NewProxyResp` means the answer is on its way: it is on the
    /// control stream, which another task reads, and on a lossy link a retransmission can hand
    /// both over at once, in either order. Go frpc closes such a work connection (its proxy is
    /// not running yet), which drops the first user connection after a (re)registration (seen in
    /// `bench/lossy`: iperf3's control connection, right after the proxy came up). This waits
    /// for the answer instead, at most [`WAIT_RESPONSE_TIMEOUT`].
    async fn running_target(&self, name: &str) -> Option<LocalTarget> {
        let deadline = Instant::now() + WAIT_RESPONSE_TIMEOUT;
        loop {
            let answered = self.answered.notified();
            tokio::pin!(answered);
            // Registered before the check, so an answer between the two is not missed.
            answered.as_mut().enable();
            match self.lock().entries.get(name) {
                Some(e) if e.phase == Phase::Running => return Some(e.target.clone()),
                Some(e) if e.phase == Phase::WaitStart => {}
                _ => {
                    debug!("work connection for unknown or stopped proxy [{name}] closed");
                    return None;
                }
            }
            if tokio::time::timeout_at(deadline, answered).await.is_err() {
                debug!("work connection for proxy [{name}] closed: no answer to its registration");
                return None;
            }
        }
    }

    /// Serves one work connection for the proxy `start.proxy_name`.
    pub(crate) async fn handle_work_conn<N: Net>(
        &self,
        net: N,
        work: BoxStream,
        start: StartWorkConn,
    ) {
        let Some(target) = self.running_target(&start.proxy_name).await else {
            return;
        };
        let span = info_span!("proxy", name = %target.name);
        serve_tcp_work_conn(net, work, start, target)
            .instrument(span)
            .await
    }
}

/// Joins a work connection with a new connection to the local service
/// (frp `HandleTCPWorkConnection`).
async fn serve_tcp_work_conn<N: Net>(
    net: N,
    work: BoxStream,
    start: StartWorkConn,
    t: LocalTarget,
) {
    // Boxed so the dial's state is freed once connected instead of staying in this future,
    // which lives as long as the connection.
    let dial = Box::pin(net.connect_tcp(&t.local_ip, t.local_port));
    let mut local = match tokio::time::timeout(LOCAL_DIAL_TIMEOUT, dial).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            error!(
                "connect to local service [{}:{}] error: {e}",
                t.local_ip, t.local_port
            );
            return;
        }
        Err(_) => {
            error!(
                "connect to local service [{}:{}] error: i/o timeout",
                t.local_ip, t.local_port
            );
            return;
        }
    };
    if let Some(version) = t.proxy_protocol {
        if let Some(header) = proxies::proxy_protocol::header(version, &start) {
            use tokio::io::AsyncWriteExt;
            if let Err(e) = local.write_all(&header).await {
                error!("write proxy protocol header to local conn error: {e}");
                return;
            }
        }
    }
    // The join may last for hours: keep only what it needs.
    drop(start);
    let linger = proxies::relay::HALF_CLOSE_LINGER;
    let r = if t.limiter.is_none() && t.encryption_key.is_none() && !t.compression {
        drop(t);
        // Nothing to transform: two plain TCP sockets are spliced in the kernel
        // (`proxies::splice`); other transports get the buffered relay.
        proxies::splice::join_plain(work, Box::new(local), linger).await
    } else {
        // frp's order on the client: the limiter on the raw work connection, then encryption,
        // then compression (`client/proxy/proxy.go`).
        let work: BoxStream = match &t.limiter {
            Some(l) => Box::new(proxies::limit::RateLimited::new(work, l.clone())),
            None => work,
        };
        let mut remote =
            proxies::relay::wrap_stream(work, t.encryption_key.as_ref(), t.compression);
        proxies::relay::join_report(&mut remote, &mut local, linger).await
    };
    match r.error {
        None => debug!(
            "join connections closed: {} B to local, {} B from local",
            r.a_to_b, r.b_to_a
        ),
        Some(e) => debug!("join connections closed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use transports::TokioNet;

    use super::*;

    /// A manager with one tcp proxy `web` to `local_port`, in a session whose `NewProxy` was
    /// sent (phase `WaitStart`), and the receiver of the control messages it sent.
    fn waiting_manager(local_port: u16) -> (Arc<ProxyManager>, mpsc::Receiver<Message>) {
        let toml = format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = 7000\n[[proxies]]\nname = \"web\"\n\
             type = \"tcp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = {local_port}\nremotePort = 6000\n"
        );
        let cfg = conf::parse_client_str(&toml, "frpc.toml", &conf::Env::new(), true).unwrap();
        let settings = crate::settings_map::resolve(&cfg).unwrap();
        let pm = Arc::new(ProxyManager::new(&settings, &cfg.proxies));
        let (tx, mut rx) = mpsc::channel(16);
        pm.start_session(tx);
        assert!(matches!(rx.try_recv(), Ok(Message::NewProxy(p)) if p.proxy_name == "web"));
        assert_eq!(pm.status()[0].1, Phase::WaitStart);
        (pm, rx)
    }

    /// Serves a work connection for proxy `name` in a task; returns the task and the far end.
    fn spawn_work_conn(
        pm: &Arc<ProxyManager>,
        name: &str,
    ) -> (tokio::task::JoinHandle<()>, tokio::io::DuplexStream) {
        let (near, far) = tokio::io::duplex(4096);
        let (pm, start) = (pm.clone(), start(name));
        let task =
            tokio::spawn(async move { pm.handle_work_conn(TokioNet, Box::new(near), start).await });
        (task, far)
    }

    fn start(name: &str) -> StartWorkConn {
        StartWorkConn {
            proxy_name: name.into(),
            ..Default::default()
        }
    }

    fn answer(error: &str) -> NewProxyResp {
        NewProxyResp {
            proxy_name: "web".into(),
            remote_addr: ":6000".into(),
            error: error.into(),
        }
    }

    /// The work connection's far end sees EOF within `within`.
    async fn closes(far: &mut tokio::io::DuplexStream, within: Duration) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(within, far.read(&mut b)).await,
            Ok(Ok(0))
        )
    }

    /// A `StartWorkConn` read before the proxy's `NewProxyResp` (another task reads the control
    /// stream, and a retransmission on a lossy link hands both over at once) is served once the
    /// answer arrives, instead of being closed as for a proxy that is not running.
    #[tokio::test]
    async fn work_conn_before_the_registration_answer_waits_for_it() {
        let local = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (pm, _rx) = waiting_manager(local.local_addr().unwrap().port());
        let (serve, mut far) = spawn_work_conn(&pm, "web");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !serve.is_finished(),
            "work connection closed before the answer"
        );
        pm.on_new_proxy_resp(answer(""));
        let (mut svc, _) = tokio::time::timeout(Duration::from_secs(5), local.accept())
            .await
            .expect("the local service was not dialled after the answer")
            .unwrap();
        far.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        svc.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        svc.write_all(b"pong").await.unwrap();
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
    }

    /// A refused registration closes the waiting work connection, without dialling.
    #[tokio::test]
    async fn work_conn_waiting_for_a_refused_registration_is_closed() {
        let local = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (pm, _rx) = waiting_manager(local.local_addr().unwrap().port());
        let (_serve, mut far) = spawn_work_conn(&pm, "web");
        tokio::time::sleep(Duration::from_millis(20)).await;
        pm.on_new_proxy_resp(answer("port already used"));
        assert!(closes(&mut far, Duration::from_secs(5)).await);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), local.accept())
                .await
                .is_err(),
            "dialled the local service for a refused proxy"
        );
    }

    /// The session ending while a work connection waits closes it.
    #[tokio::test]
    async fn work_conn_waiting_when_the_session_ends_is_closed() {
        let (pm, _rx) = waiting_manager(9);
        let (_serve, mut far) = spawn_work_conn(&pm, "web");
        tokio::time::sleep(Duration::from_millis(20)).await;
        pm.end_session();
        assert!(closes(&mut far, Duration::from_secs(5)).await);
    }

    /// Without an answer the wait ends after `WAIT_RESPONSE_TIMEOUT`, not before.
    #[tokio::test(start_paused = true)]
    async fn work_conn_without_an_answer_gives_up_after_the_response_timeout() {
        let (pm, _rx) = waiting_manager(9);
        let t0 = Instant::now();
        let (_serve, mut far) = spawn_work_conn(&pm, "web");
        assert!(closes(&mut far, WAIT_RESPONSE_TIMEOUT * 2).await);
        let waited = t0.elapsed();
        assert!(
            waited >= WAIT_RESPONSE_TIMEOUT
                && waited < WAIT_RESPONSE_TIMEOUT + Duration::from_secs(1),
            "{waited:?}"
        );
    }

    /// Work for a proxy this client does not have is closed at once.
    #[tokio::test(start_paused = true)]
    async fn work_conn_for_an_unknown_proxy_is_closed_at_once() {
        let (pm, _rx) = waiting_manager(9);
        let (near, mut far) = tokio::io::duplex(4096);
        let t0 = Instant::now();
        pm.handle_work_conn(TokioNet, Box::new(near), start("other"))
            .await;
        assert!(closes(&mut far, Duration::from_millis(1)).await);
        assert_eq!(t0.elapsed(), Duration::ZERO);
    }
}

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
use tokio::sync::mpsc;
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
        self.check_status();
    }

    /// The session ended: nothing is registered any more.
    pub(crate) fn end_session(&self) {
        let mut st = self.lock();
        st.tx = None;
        for e in st.entries.values_mut() {
            e.phase = Phase::New;
        }
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

    /// Serves one work connection for the proxy `start.proxy_name`.
    pub(crate) async fn handle_work_conn<N: Net>(
        &self,
        net: N,
        work: BoxStream,
        start: StartWorkConn,
    ) {
        let target = {
            let st = self.lock();
            match st.entries.get(&start.proxy_name) {
                Some(e) if e.phase == Phase::Running => e.target.clone(),
                _ => {
                    debug!(
                        "work connection for unknown or stopped proxy [{}] closed",
                        start.proxy_name
                    );
                    return;
                }
            }
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

//! `type = "tcp"`: frps listens on `proxyBindAddr:remotePort` and hands every user connection
//! to the client over a work connection (frp v0.65.0 `server/proxy/tcp.go`, `proxy.go`).

use std::net::SocketAddr;
use std::sync::Arc;

use control::{Message, NewProxy, StartWorkConn};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};
use transports::{BoxStream, Listener, Net};

use super::{ProxyError, ServerProxy};
use crate::service::Shared;
use crate::session::ControlHandle;

/// Options applied to every user connection of one proxy.
#[derive(Clone)]
pub(crate) struct ConnOptions {
    pub(crate) name: String,
    pub(crate) encryption_key: Option<control::crypto::Key>,
    pub(crate) compression: bool,
    pub(crate) limiter: Option<proxies::limit::Limiter>,
}

impl ConnOptions {
    pub(crate) fn from_msg<N: Net>(shared: &Shared<N>, m: &NewProxy) -> Result<Self, ProxyError> {
        let limiter = if m.bandwidth_limit_mode == "server" && !m.bandwidth_limit.is_empty() {
            let q: conf::ByteSize = m
                .bandwidth_limit
                .parse()
                .map_err(|e| ProxyError::Port(format!("bandwidth_limit: {e}")))?;
            (q.bytes() > 0).then(|| proxies::limit::Limiter::new(q.bytes()))
        } else {
            None
        };
        Ok(Self {
            name: m.proxy_name.clone(),
            encryption_key: m
                .use_encryption
                .then(|| control::crypto::derive_key(shared.settings.token.as_bytes())),
            compression: m.use_compression,
            limiter,
        })
    }
}

pub(super) async fn start<N: Net>(
    shared: &Arc<Shared<N>>,
    ctl: &ControlHandle,
    m: NewProxy,
) -> Result<ServerProxy, ProxyError> {
    let opts = ConnOptions::from_msg(shared, &m)?;
    let requested = u16::try_from(m.remote_port)
        .map_err(|_| ProxyError::Port(format!("remote port [{}] out of range", m.remote_port)))?;
    let bind_addr = shared.settings.proxy_bind_addr.clone();
    let net = shared.net.clone();
    // Port choice is pure; binding happens right after, and a failed bind releases the port.
    let port = shared
        .registry
        .with_ports(|p| p.acquire(&m.proxy_name, requested, |port| port_free(&bind_addr, port)))
        .map_err(|e| ProxyError::Port(e.to_string()))?;
    let addr = format!("{bind_addr}:{port}");
    let listener = match parse_addr(&addr) {
        Some(sa) => net.bind_tcp(sa).await,
        None => Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad proxy bind address")),
    };
    let listener = match listener {
        Ok(l) => l,
        Err(source) => {
            shared.registry.with_ports(|p| p.release(port));
            return Err(ProxyError::Listen { addr, source });
        }
    };
    info!("tcp proxy listen port [{port}]");
    let cancel = CancellationToken::new();
    let span = info_span!("proxy", name = %m.proxy_name);
    shared.tasks.spawn(
        accept_loop(shared.clone(), listener, ctl.clone(), opts, cancel.clone()).instrument(span),
    );
    Ok(ServerProxy { remote_addr: format!(":{port}"), ports_used: 1, port: Some(port), cancel })
}

/// Whether a port can be bound right now on the proxy bind address (the allocator's probe).
fn port_free(bind_addr: &str, port: u16) -> bool {
    std::net::TcpListener::bind((bind_addr, port)).is_ok()
}

fn parse_addr(addr: &str) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs().ok()?.next()
}

async fn accept_loop<N: Net>(
    shared: Arc<Shared<N>>,
    listener: N::Listener,
    ctl: ControlHandle,
    opts: ConnOptions,
    cancel: CancellationToken,
) {
    let local = listener.local_addr().ok();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((conn, peer)) => {
                    info!("get a user connection [{peer}]");
                    let task = handle_user_conn(Box::new(conn), peer, local, ctl.clone(), opts.clone(), cancel.clone());
                    shared.tasks.spawn(task.in_current_span());
                }
                Err(e) => {
                    warn!("listener is closed: {e}");
                    break;
                }
            },
        }
    }
}

/// Joins one user connection with a work connection from the client.
pub(crate) async fn handle_user_conn(
    user: BoxStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    ctl: ControlHandle,
    opts: ConnOptions,
    cancel: CancellationToken,
) {
    let start = StartWorkConn {
        proxy_name: opts.name.clone(),
        src_addr: peer.ip().to_string(),
        src_port: peer.port(),
        dst_addr: local.map(|a| a.ip().to_string()).unwrap_or_default(),
        dst_port: local.map(|a| a.port()).unwrap_or_default(),
        error: String::new(),
    };
    let Some(work) = work_conn_for(&ctl, &start).await else {
        return;
    };
    let work = proxies::relay::wrap_stream(work, opts.encryption_key.as_ref(), opts.compression);
    let work: BoxStream = match &opts.limiter {
        Some(l) => Box::new(proxies::limit::RateLimited::new(work, l.clone())),
        None => work,
    };
    tokio::select! {
        _ = cancel.cancelled() => debug!("proxy closed, dropping user connection [{peer}]"),
        r = proxies::relay::pump(work, user) => match r {
            Ok((to_user, from_user)) => debug!("join connections closed: in {from_user} B, out {to_user} B"),
            Err(e) => debug!("join connections closed with error: {e}"),
        },
    }
}

/// Takes pooled work connections until `StartWorkConn` is written on one (frp
/// `GetWorkConnFromPool`: up to poolCount+1 tries).
async fn work_conn_for(ctl: &ControlHandle, start: &StartWorkConn) -> Option<BoxStream> {
    let msg = Message::StartWorkConn(start.clone());
    for attempt in 0..ctl.work_conn_attempts() {
        let mut conn = match ctl.get_work_conn().await {
            Ok(c) => c,
            Err(e) => {
                warn!("failed to get work connection: {e}");
                return None;
            }
        };
        match control::write_msg(&mut conn, &msg).await {
            Ok(()) => return Some(conn),
            Err(e) => warn!("failed to send message to work connection from pool: {e}, times: {attempt}"),
        }
    }
    warn!("try to get work connection failed in the end");
    None
}

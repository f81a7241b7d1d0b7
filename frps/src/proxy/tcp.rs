//! `type = "tcp"`: frps listens on `proxyBindAddr:remotePort` and hands every user connection
//! to the client over a work connection (frp v0.65.0 `server/proxy/tcp.go`, `proxy.go`).

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use control::{Message, NewProxy, StartWorkConn};
use proxies::limit::{BandwidthLimiter, RateLimited};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};
use transports::{BoxStream, Listener, Net};

use super::group::{ActiveGuard, Join, Member};
use super::{ProxyError, ServerProxy};
use crate::service::Shared;
use crate::session::ControlHandle;

/// Options applied to every user connection of one proxy.
#[derive(Clone)]
pub(crate) struct ConnOptions {
    pub(crate) name: String,
    pub(crate) encryption_key: Option<control::crypto::Key>,
    pub(crate) compression: bool,
    pub(crate) limiter: Option<Arc<BandwidthLimiter>>,
    /// Open user connections of this proxy (group spreading, metrics).
    pub(crate) active: Arc<AtomicUsize>,
}

impl ConnOptions {
    pub(crate) fn from_msg<N: Net>(shared: &Shared<N>, m: &NewProxy) -> Result<Self, ProxyError> {
        let limiter = if m.bandwidth_limit_mode == "server" && !m.bandwidth_limit.is_empty() {
            let q: conf::ByteSize = m
                .bandwidth_limit
                .parse()
                .map_err(|e| ProxyError::Port(format!("bandwidth_limit: {e}")))?;
            NonZeroU64::new(q.bytes()).map(|n| Arc::new(BandwidthLimiter::new(n)))
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
            active: Arc::new(AtomicUsize::new(0)),
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
    if !m.group.is_empty() {
        return start_in_group(shared, ctl, m, opts, requested).await;
    }
    let (listener, port) = bind_proxy_port(shared, &m.proxy_name, requested).await?;
    info!("tcp proxy listen port [{port}]");
    let cancel = CancellationToken::new();
    let target = Target::Single {
        ctl: ctl.clone(),
        opts,
        cancel: cancel.clone(),
    };
    let task = spawn_accept_loop(shared, &m.proxy_name, listener, target, cancel.clone());
    Ok(ServerProxy {
        remote_addr: format!(":{port}"),
        ports_used: 1,
        port: Some(port),
        group: None,
        cancel,
        listener_task: Some(task),
    })
}

/// Joins (or founds) the proxy's load-balancing group.
async fn start_in_group<N: Net>(
    shared: &Arc<Shared<N>>,
    ctl: &ControlHandle,
    m: NewProxy,
    opts: ConnOptions,
    requested: u16,
) -> Result<ServerProxy, ProxyError> {
    let groups = shared.registry.groups();
    let cancel = CancellationToken::new();
    let member = Member::new(ctl.clone(), opts, cancel.clone());
    let member_id = member.id;
    let joined = |port: u16| ServerProxy {
        remote_addr: format!(":{port}"),
        ports_used: 1,
        port: None,
        group: Some((m.group.clone(), member_id)),
        cancel: cancel.clone(),
        listener_task: None,
    };
    if let Join::Joined(port) = groups.join(&m.group, &m.group_key, requested, member.clone())? {
        info!("tcp proxy listen port [{port}] in group [{}]", m.group);
        return Ok(joined(port));
    }
    let (listener, port) = bind_proxy_port(shared, &m.proxy_name, requested).await?;
    let listener_cancel = CancellationToken::new();
    if !groups.create(
        &m.group,
        &m.group_key,
        requested,
        port,
        member.clone(),
        listener_cancel.clone(),
    ) {
        // Another member founded the group while we were binding: use theirs.
        drop(listener);
        shared
            .registry
            .with_ports(|p| p.release(port, tokio::time::Instant::now().into_std()));
        return match groups.join(&m.group, &m.group_key, requested, member)? {
            Join::Joined(port) => Ok(joined(port)),
            Join::Absent => Err(ProxyError::Group(control::wire_error::GROUP_PARAMS_INVALID)),
        };
    }
    info!("tcp proxy listen port [{port}] in group [{}]", m.group);
    let target = Target::Group {
        name: m.group.clone(),
    };
    let task = spawn_accept_loop(shared, &m.group, listener, target, listener_cancel);
    groups.attach_task(&m.group, task);
    Ok(joined(port))
}

/// How many ports a `remotePort = 0` proxy tries before giving up (frp: 5 random candidates).
const BIND_ATTEMPTS: usize = 5;

/// Picks a port with the allocator and binds it through the `Net` seam. The allocator's own
/// "can this port be bound" probe only excludes ports a bind already failed on: the bind itself
/// is the probe, so the simulator sees every socket.
async fn bind_proxy_port<N: Net>(
    shared: &Shared<N>,
    name: &str,
    requested: u16,
) -> Result<(N::Listener, u16), ProxyError> {
    let bind_addr = &shared.settings.proxy_bind_addr;
    let mut failed: Vec<u16> = Vec::new();
    let mut rng = StdRng::seed_from_u64(shared.net.random_u64());
    loop {
        let port = shared
            .registry
            .with_ports(|p| {
                p.acquire(
                    name,
                    requested,
                    tokio::time::Instant::now().into_std(),
                    &mut rng,
                    |port| !failed.contains(&port),
                )
            })
            .map_err(|e| ProxyError::Port(e.to_string()))?;
        let addr = parse_addr(bind_addr, port)
            .ok_or_else(|| ProxyError::Port(format!("invalid proxy bind address [{bind_addr}]")))?;
        match shared.net.bind_tcp(addr).await {
            Ok(l) => return Ok((l, port)),
            Err(e) => {
                shared
                    .registry
                    .with_ports(|p| p.release(port, tokio::time::Instant::now().into_std()));
                debug!("bind {addr}: {e}");
                failed.push(port);
                if requested != 0 || failed.len() >= BIND_ATTEMPTS {
                    return Err(ProxyError::Port(
                        control::wire_error::PORT_UNAVAILABLE.into(),
                    ));
                }
            }
        }
    }
}

fn parse_addr(host: &str, port: u16) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    (host, port).to_socket_addrs().ok()?.next()
}

/// Who takes the connections a listener accepts.
enum Target {
    /// One proxy.
    Single {
        ctl: ControlHandle,
        opts: ConnOptions,
        cancel: CancellationToken,
    },
    /// The members of a group, picked per connection.
    Group { name: String },
}

fn spawn_accept_loop<N: Net>(
    shared: &Arc<Shared<N>>,
    span_name: &str,
    listener: N::Listener,
    target: Target,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let span = info_span!("proxy", name = %span_name);
    shared
        .tasks
        .spawn(accept_loop(shared.clone(), listener, target, cancel).instrument(span))
}

async fn accept_loop<N: Net>(
    shared: Arc<Shared<N>>,
    mut listener: N::Listener,
    target: Target,
    cancel: CancellationToken,
) {
    let local = listener.local_addr().ok();
    loop {
        let (conn, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    warn!("listener is closed: {e}");
                    break;
                }
            },
        };
        info!("get a user connection [{peer}]");
        let (ctl, opts, conn_cancel) = match &target {
            Target::Single { ctl, opts, cancel } => (ctl.clone(), opts.clone(), cancel.clone()),
            Target::Group { name } => match shared.registry.groups().pick(name) {
                Some(m) => (m.ctl, m.opts, m.cancel),
                None => continue,
            },
        };
        let task = handle_user_conn(Box::new(conn), peer, local, ctl, opts, conn_cancel);
        shared.tasks.spawn(task.in_current_span());
    }
}

/// Joins one user connection with a work connection from the client.
pub(crate) async fn handle_user_conn(
    mut user: BoxStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    ctl: ControlHandle,
    opts: ConnOptions,
    cancel: CancellationToken,
) {
    let start = StartWorkConn {
        proxy_name: opts.name.clone(),
        src_addr: ip_text(peer.ip()),
        src_port: peer.port(),
        dst_addr: local.map(|a| ip_text(a.ip())).unwrap_or_default(),
        dst_port: local.map(|a| a.port()).unwrap_or_default(),
        error: String::new(),
    };
    let _active = ActiveGuard::new(&opts.active);
    let Some(work) = work_conn_for(&ctl, &start).await else {
        return;
    };
    drop(start);
    let linger = proxies::relay::HALF_CLOSE_LINGER;
    let relay = async {
        if opts.encryption_key.is_none() && !opts.compression && opts.limiter.is_none() {
            // Nothing to transform: two plain TCP sockets are spliced in the kernel
            // (`proxies::splice`); other transports get the buffered relay.
            return proxies::splice::join_plain(user, work, linger).await;
        }
        // frp's order on the server: encryption, then compression, then the limiter on top.
        let work =
            proxies::relay::wrap_stream(work, opts.encryption_key.as_ref(), opts.compression);
        let mut work: BoxStream = match &opts.limiter {
            Some(l) => Box::new(RateLimited::new(work, l.clone())),
            None => Box::new(work),
        };
        proxies::relay::join_report(&mut user, &mut work, linger).await
    };
    // Polled each time the relay wakes (twice per forwarded request): the cheap wait.
    tokio::select! {
        _ = transports::cancel::Cancelled::new(&cancel) => {
            debug!("proxy closed, dropping user connection [{peer}]")
        }
        r = relay => {
            match r.error {
                None => debug!("join connections closed: in {} B, out {} B", r.a_to_b, r.b_to_a),
                Some(e) => debug!("join connections closed with error: {e}"),
            }
        }
    }
}

/// An address as Go prints it (`net.IP.String`, which frp puts in `StartWorkConn`).
///
/// IPv4 by hand: `Ipv4Addr`'s `Display` goes through the formatting machinery once per octet,
/// and two addresses per user connection cost frps 5 % of its user-space instructions per new
/// connection (callgrind). IPv6 keeps `Display`, which already matches Go's compressed form.
fn ip_text(ip: std::net::IpAddr) -> String {
    let std::net::IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut s = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if octet >= 100 {
            s.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            s.push(char::from(b'0' + octet / 10 % 10));
        }
        s.push(char::from(b'0' + octet % 10));
    }
    s
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
            Err(e) => {
                warn!("failed to send message to work connection from pool: {e}, times: {attempt}")
            }
        }
    }
    warn!("try to get work connection failed in the end");
    None
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::ip_text;

    #[test]
    fn ip_text_matches_display() {
        for a in [0u8, 1, 9, 10, 42, 99, 100, 101, 199, 200, 255] {
            for b in [0u8, 7, 10, 100, 255] {
                let ip = IpAddr::V4(Ipv4Addr::new(a, b, b.wrapping_add(a), 255 - a));
                assert_eq!(ip_text(ip), ip.to_string());
            }
        }
        let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert_eq!(ip_text(ip), "2001:db8::1");
    }
}

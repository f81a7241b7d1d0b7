//! Server-side proxies: what frps does for each `NewProxy`. A closed set chosen by `match` on
//! the proxy type; each kind owns its listeners through a cancellation token.

pub(crate) mod group;
mod tcp;

use std::sync::Arc;

use control::NewProxy;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use transports::Net;

use crate::service::Shared;
use crate::session::ControlHandle;

/// Why a proxy could not be registered; the text goes to the client in `NewProxyResp.error`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("{}", control::wire_error::proxy_already_exists(.0))]
    Exists(String),
    #[error("{}", control::wire_error::EXCEED_MAX_PORTS_PER_CLIENT)]
    TooManyPorts,
    #[error("proxy type [{0}] is not supported by this frps yet")]
    Unsupported(String),
    #[error("{0}")]
    Port(String),
    #[error("{0}")]
    Group(&'static str),
}

/// A running proxy, owned by its control session.
pub(crate) struct ServerProxy {
    pub(crate) remote_addr: String,
    pub(crate) ports_used: u32,
    /// The port this proxy bound itself (not for group members: the group owns its port).
    port: Option<u16>,
    /// `(group, member id)` for a load-balancing group member.
    group: Option<(String, u64)>,
    cancel: CancellationToken,
    /// The accept loop of `port`, awaited on close so the socket is gone when close returns.
    listener_task: Option<JoinHandle<()>>,
}

impl ServerProxy {
    /// Stops the listener and the proxy's user connections and releases its port (a group's
    /// port only when its last member leaves).
    pub(crate) async fn close<N: Net>(self, shared: &Shared<N>) {
        self.cancel.cancel();
        let (port, task) = match self.group {
            Some((name, id)) => match shared.registry.groups().leave(&name, id) {
                Some((port, task)) => (Some(port), task),
                None => (None, None),
            },
            None => (self.port, self.listener_task),
        };
        if let Some(task) = task {
            let _ = task.await;
        }
        if let Some(port) = port {
            shared
                .registry
                .with_ports(|p| p.release(port, tokio::time::Instant::now().into_std()));
        }
    }
}

/// How many ports of `maxPortsPerClient` the proxy uses (frp `GetUsedPortsNum`).
pub(crate) fn ports_needed(m: &NewProxy) -> u32 {
    match m.proxy_type.as_str() {
        "tcp" | "udp" => 1,
        _ => 0,
    }
}

/// Starts the proxy described by `m` for the session `ctl`.
pub(crate) async fn start<N: Net>(
    shared: &Arc<Shared<N>>,
    ctl: &ControlHandle,
    m: NewProxy,
) -> Result<ServerProxy, ProxyError> {
    match m.proxy_type.as_str() {
        "tcp" => tcp::start(shared, ctl, m).await,
        other => Err(ProxyError::Unsupported(other.to_string())),
    }
}

//! Server-side proxies: what frps does for each `NewProxy`. A closed set chosen by `match` on
//! the proxy type; each kind owns its listeners through a cancellation token.

mod tcp;

use std::sync::Arc;

use control::NewProxy;
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
}

/// A running proxy, owned by its control session.
pub(crate) struct ServerProxy {
    pub(crate) remote_addr: String,
    pub(crate) ports_used: u32,
    port: Option<u16>,
    cancel: CancellationToken,
}

impl ServerProxy {
    /// Stops the listeners and the proxy's user connections and releases its port.
    pub(crate) fn close<N: Net>(self, shared: &Shared<N>) {
        self.cancel.cancel();
        if let Some(port) = self.port {
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

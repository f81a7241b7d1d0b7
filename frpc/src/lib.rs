//! frpc, the frp client, as a library: [`run`] keeps a [`conf::ClientConfig`]'s proxies
//! registered on frps over any [`transports::Net`] until the cancellation token fires.
//! `main.rs` only parses the command line, loads the config, sets up logging and turns Ctrl-C
//! into cancellation.
//!
//! Layout: `service` (login, reconnect with frp's backoff), `session` (the actor per control
//! connection), `proxy` (proxy phases and work connections), [`settings`] (the config resolved).

pub mod cli;
mod health;
mod proxy;
mod service;
mod session;
pub mod settings;
mod settings_map;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use transports::Net;

pub use proxy::Phase;
pub use service::{LOGIN_RESP_TIMEOUT, VERSION};
pub use settings::ClientSettings;

/// Why the client stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The first login failed and `loginFailExit` is on.
    #[error("login to the server failed: {0}. With loginFailExit enabled, no additional retries will be attempted")]
    LoginFailed(String),
    /// The config cannot be turned into settings (e.g. a bad TLS file).
    #[error("{0}")]
    Config(String),
}

/// Runs the client for `config` until `shutdown` is cancelled.
pub async fn run<N: Net>(
    config: conf::ClientConfig,
    net: N,
    shutdown: CancellationToken,
) -> Result<(), ClientError> {
    let settings = Arc::new(settings_map::resolve(&config).map_err(ClientError::Config)?);
    let proxies = Arc::new(proxy::ProxyManager::new(&settings, &config.proxies));
    let monitors = TaskTracker::new();
    let stop_monitors = shutdown.child_token();
    for (name, spec) in proxies.health_checks() {
        let pm = proxies.clone();
        let span = tracing::info_span!("proxy", name = %name);
        let report =
            move |t: health::Transition| pm.set_health(&name, t == health::Transition::Healthy);
        monitors.spawn(
            health::run_monitor(net.clone(), spec, stop_monitors.clone(), report).instrument(span),
        );
    }
    monitors.close();
    let service = service::Service {
        settings,
        net,
        run_id: String::new(),
        proxies,
        shutdown,
    };
    let result = service.run().await;
    stop_monitors.cancel();
    monitors.wait().await;
    result
}

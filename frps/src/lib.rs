//! frps, the frp server, as a library: [`run`] serves a [`conf::ServerConfig`] on any
//! [`transports::Net`] until the cancellation token fires. `main.rs` only parses the command
//! line, loads the config, sets up logging and turns Ctrl-C into cancellation, so tests and the
//! simulator run exactly this code.
//!
//! Layout: [`service`] accepts connections and dispatches their first message; `session` is
//! the actor per logged-in client (control connection, work-connection pool, proxies);
//! `proxy` holds the proxy kinds; `registry` the server-wide maps; [`settings`] the config
//! resolved into plain values.

pub mod cli;
mod proxy;
mod registry;
pub mod service;
mod session;
pub mod settings;
mod settings_map;

use tokio_util::sync::CancellationToken;
use transports::Net;

pub use service::{Server, Stats, StatsHandle, VERSION};
pub use settings::ServerSettings;
pub use settings_map::config_from_flags;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The control listener could not be set up.
    #[error("create server listener error, {0}")]
    Listen(#[source] transports::TransportError),
    /// The config asks for something this frps cannot do.
    #[error("{0}")]
    Config(String),
}

/// Serves `config` until `shutdown` is cancelled.
pub async fn run<N: Net>(
    config: conf::ServerConfig,
    net: N,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    Server::bind(settings(&config)?, net, shutdown)
        .await?
        .serve()
        .await
}

/// Resolves `config` into the [`ServerSettings`] that [`Server::bind`] takes, as [`run`] does.
pub fn settings(config: &conf::ServerConfig) -> Result<ServerSettings, ServerError> {
    settings_map::resolve(config)
}

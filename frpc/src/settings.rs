//! The client's settings resolved from [`conf::ClientConfig`]: defaults applied, sentinels
//! (`-1` = disabled) turned into `Option`s. The one place besides `settings_map` that knows
//! the config model's shape.

use std::time::Duration;

/// Everything frpc's service and sessions need, resolved.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// `user`; proxy names go on the wire as `user.name` when set.
    pub user: String,
    /// `auth.token`.
    pub token: String,
    /// Signs `Login`, and `Ping`/`NewWorkConn` under `auth.additionalScopes`.
    pub auth: control::TokenAuth,
    /// `loginFailExit`.
    pub login_fail_exit: bool,
    /// `transport.poolCount`.
    pub pool_count: u32,
    /// `transport.heartbeatInterval`; `None` when disabled.
    pub heartbeat_interval: Option<Duration>,
    /// `transport.heartbeatTimeout`; `None` when disabled.
    pub heartbeat_timeout: Option<Duration>,
    /// `metadatas`, sent in `Login.metas`.
    pub metas: std::collections::BTreeMap<String, String>,
    /// Options for the transport's connector.
    pub transport: transports::ClientTransportOptions,
}

//! frp 0.65.0's default values as named constants, with the `Complete()` they come from.
//!
//! frp fills defaults with `util.EmptyOr(v, default)`: a zero value (unset *or* explicitly 0 /
//! `""`) is replaced. The `complete()` methods in this crate do the same, so
//! `bindPort = 0` still means 7000, exactly as in frps.

/// `bindAddr` (frps) — `pkg/config/v1/server.go`.
pub const BIND_ADDR: &str = "0.0.0.0";
/// `bindPort` (frps) and `serverPort` (frpc).
pub const BIND_PORT: u16 = 7000;
/// `vhostHTTPTimeout`, seconds.
pub const VHOST_HTTP_TIMEOUT: u64 = 60;
/// `userConnTimeout`, seconds.
pub const USER_CONN_TIMEOUT: u64 = 10;
/// `udpPacketSize`, bytes (both sides).
pub const UDP_PACKET_SIZE: u32 = 1500;
/// `natholeAnalysisDataReserveHours`.
pub const NATHOLE_ANALYSIS_DATA_RESERVE_HOURS: u64 = 7 * 24;
/// `sshTunnelGateway.autoGenPrivateKeyPath`.
pub const SSH_AUTO_GEN_PRIVATE_KEY_PATH: &str = "./.autogen_ssh_key";

/// `transport.tcpMuxKeepaliveInterval`, seconds (both sides) — `server.go`, `client.go`.
pub const TCP_MUX_KEEPALIVE_INTERVAL: u64 = 30;
/// frps `transport.tcpKeepalive` / frpc `transport.dialServerKeepalive`, seconds.
pub const TCP_KEEPALIVE: i64 = 7200;
/// frps `transport.maxPoolCount`.
pub const MAX_POOL_COUNT: u32 = 5;
/// frps `transport.heartbeatTimeout` / frpc `transport.heartbeatTimeout` without tcpMux.
pub const HEARTBEAT_TIMEOUT: i64 = 90;
/// frpc `transport.heartbeatInterval` without tcpMux.
pub const HEARTBEAT_INTERVAL: i64 = 30;
/// Heartbeat interval/timeout when tcpMux is on: disabled, yamux keepalive does the job.
pub const HEARTBEAT_DISABLED: i64 = -1;
/// `transport.quic.keepalivePeriod` — `common.go` `QUICOptions.Complete`.
pub const QUIC_KEEPALIVE_PERIOD: u32 = 10;
/// `transport.quic.maxIdleTimeout`.
pub const QUIC_MAX_IDLE_TIMEOUT: u32 = 30;
/// `transport.quic.maxIncomingStreams`.
pub const QUIC_MAX_INCOMING_STREAMS: u32 = 100_000;

/// `webServer.addr` — `common.go` `WebServerConfig.Complete`.
pub const WEB_SERVER_ADDR: &str = "127.0.0.1";
/// `log.to`.
pub const LOG_TO: &str = "console";
/// `log.maxDays`.
pub const LOG_MAX_DAYS: u32 = 3;

/// frpc `serverAddr` — `client.go`.
pub const SERVER_ADDR: &str = "0.0.0.0";
/// frpc `natHoleStunServer`.
pub const NAT_HOLE_STUN_SERVER: &str = "stun.easyvoip.com:3478";
/// frpc `transport.dialServerTimeout`, seconds.
pub const DIAL_SERVER_TIMEOUT: u64 = 10;
/// frpc `transport.poolCount` (0 counts as unset).
pub const POOL_COUNT: u32 = 1;

/// Proxy `localIP` — `proxy.go` `ProxyBaseConfig.Complete`.
pub const LOCAL_IP: &str = "127.0.0.1";
/// `healthCheck.timeoutSeconds` — frp `client/health/health.go`.
pub const HEALTH_CHECK_TIMEOUT_SECONDS: u32 = 3;
/// `healthCheck.maxFailed`.
pub const HEALTH_CHECK_MAX_FAILED: u32 = 1;
/// `healthCheck.intervalSeconds`.
pub const HEALTH_CHECK_INTERVAL_SECONDS: u32 = 10;

/// Visitor `bindAddr` — `visitor.go` `VisitorBaseConfig.Complete`.
pub const VISITOR_BIND_ADDR: &str = "127.0.0.1";
/// xtcp visitor `maxRetriesAnHour`.
pub const XTCP_MAX_RETRIES_AN_HOUR: u32 = 8;
/// xtcp visitor `minRetryInterval`, seconds.
pub const XTCP_MIN_RETRY_INTERVAL: u32 = 90;
/// xtcp visitor `fallbackTimeoutMs`.
pub const XTCP_FALLBACK_TIMEOUT_MS: u32 = 1000;

/// Legacy INI `dashboard_addr` default (`pkg/config/legacy/server.go`), which differs from v1.
pub const LEGACY_DASHBOARD_ADDR: &str = "0.0.0.0";

/// serde default for frp's `*bool` fields that default to true.
pub(crate) fn yes() -> bool {
    true
}

/// Replaces an empty string with `default` (frp `util.EmptyOr`).
pub(crate) fn or_str(v: &mut String, default: &str) {
    if v.is_empty() {
        *v = default.to_string();
    }
}

/// Replaces a zero number with `default` (frp `util.EmptyOr`).
pub(crate) fn or_num<T: PartialEq + Default + Copy>(v: &mut T, default: T) {
    if *v == T::default() {
        *v = default;
    }
}

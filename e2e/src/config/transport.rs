//! Transport settings shared by the frps and frpc writers: frpc's `transport.protocol` and the
//! `transport.quic.*` options both sides accept (frp `pkg/config/v1/common.go`, `QUICOptions`).

use std::fmt;

use super::line;

/// frpc `transport.protocol`: how frpc reaches frps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `"tcp"` (frp's default): frps `bindPort`.
    #[default]
    Tcp,
    /// `"kcp"`: KCP over UDP to frps `kcpBindPort`.
    Kcp,
    /// `"quic"`: QUIC to frps `quicBindPort` (always TLS, ALPN `frp`; `tcpMux` is ignored).
    Quic,
    /// `"websocket"`: a websocket (`GET /~!frp`) on frps `bindPort`.
    Websocket,
    /// `"wss"`: websocket inside TLS, for a TLS-terminating proxy in front of frps (frps itself
    /// has no wss listener).
    Wss,
}

impl Protocol {
    /// The config value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Kcp => "kcp",
            Protocol::Quic => "quic",
            Protocol::Websocket => "websocket",
            Protocol::Wss => "wss",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `transport.quic.*` (frp defaults: keepalive 10 s, idle timeout 30 s, 100000 streams).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuicOptions {
    /// `transport.quic.keepalivePeriod`, seconds.
    pub keepalive_period: Option<u32>,
    /// `transport.quic.maxIdleTimeout`, seconds.
    pub max_idle_timeout: Option<u32>,
    /// `transport.quic.maxIncomingStreams`.
    pub max_incoming_streams: Option<u32>,
}

impl QuicOptions {
    /// Options with `keepalivePeriod`, `maxIdleTimeout` (seconds) and `maxIncomingStreams`.
    pub fn new(keepalive_period: u32, max_idle_timeout: u32, max_incoming_streams: u32) -> Self {
        Self {
            keepalive_period: Some(keepalive_period),
            max_idle_timeout: Some(max_idle_timeout),
            max_incoming_streams: Some(max_incoming_streams),
        }
    }

    /// Appends the set options as top-level dotted keys.
    pub(super) fn write(&self, out: &mut String) {
        for (key, value) in [
            ("transport.quic.keepalivePeriod", self.keepalive_period),
            ("transport.quic.maxIdleTimeout", self.max_idle_timeout),
            (
                "transport.quic.maxIncomingStreams",
                self.max_incoming_streams,
            ),
        ] {
            if let Some(v) = value {
                line(out, key, &v.to_string());
            }
        }
    }
}

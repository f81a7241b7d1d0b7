//! The config model's transport options as this crate takes them, so frps and frpc convert
//! them the same way.

use std::time::Duration;

use crate::client::{Congestion, KcpTuning, QuicOptions};

impl From<&conf::QuicOptions> for QuicOptions {
    fn from(q: &conf::QuicOptions) -> Self {
        QuicOptions {
            keepalive_period: Duration::from_secs(u64::from(q.keepalive_period)),
            max_idle_timeout: Duration::from_secs(u64::from(q.max_idle_timeout)),
            max_incoming_streams: u64::from(q.max_incoming_streams),
            congestion: q.congestion.map(Congestion::from).unwrap_or_default(),
        }
    }
}

impl From<conf::QuicCongestion> for Congestion {
    fn from(c: conf::QuicCongestion) -> Self {
        match c {
            conf::QuicCongestion::Bbr => Congestion::Bbr,
            conf::QuicCongestion::Cubic => Congestion::Cubic,
            conf::QuicCongestion::NewReno => Congestion::NewReno,
        }
    }
}

impl From<conf::KcpTuning> for KcpTuning {
    fn from(t: conf::KcpTuning) -> Self {
        match t {
            conf::KcpTuning::Compat => KcpTuning::Compat,
            conf::KcpTuning::Fast => KcpTuning::Fast,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quic_defaults_match_frp() {
        let q = QuicOptions::from(&conf::QuicOptions::default());
        assert_eq!(q.keepalive_period, Duration::from_secs(10));
        assert_eq!(q.max_idle_timeout, Duration::from_secs(30));
        assert_eq!(q.max_incoming_streams, 100_000);
        assert_eq!(q.congestion, Congestion::default());
    }
}

//! [`KcpConfig`]: KCP tuning, with frp 0.65.0's exact values and our faster preset.

use std::io;
use std::time::Duration;

use super::core::{CoreConfig, DEAD_LINK, OVERHEAD};
use super::fec::FEC_OVERHEAD;

/// Largest datagram we read (kcp-go reads into 1500-byte buffers; we allow a margin).
pub(crate) const MAX_DATAGRAM: usize = 2048;

/// Tuning of KCP sessions (one value per dialer or listener).
///
/// Field names follow kcp-go's setters: `SetNoDelay(nodelay, interval, resend, nc)`,
/// `SetWindowSize(snd, rcv)`, `SetMtu`, `SetWriteDelay`, `SetACKNoDelay`, and the FEC
/// shard counts of `DialWithOptions` / `ListenWithOptions`. Stream mode is always on
/// (frp turns it on everywhere; the byte stream is all [`KcpStream`](super::KcpStream) offers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KcpConfig {
    /// nodelay mode: minimum RTO 30 ms, RTO grows by half an RTO per retransmission.
    pub nodelay: bool,
    /// Flush interval in ms (kcp-go clamps to 10..=5000; we accept 1..=5000).
    pub interval_ms: u32,
    /// Fast retransmit after this many ACKs of later segments (0 = off).
    pub resend: u32,
    /// `nc`: no congestion window (send as fast as the windows allow).
    pub no_congestion_window: bool,
    /// Send window, in segments.
    pub snd_wnd: u16,
    /// Receive window, in segments (advertised in every segment's `wnd`).
    pub rcv_wnd: u16,
    /// KCP MTU: largest KCP datagram, segment headers included, FEC header excluded
    /// (kcp-go v5.6.13 adds the 8-byte FEC header on top, so frp's 1350 gives 1358-byte
    /// datagrams).
    pub mtu: usize,
    /// Minimum RTO in ms; `None` = kcp-go's (30 with nodelay, 100 without).
    pub min_rto_ms: Option<u32>,
    /// FEC data shards per group; 0 (with `fec_parity_shards` 0) sends raw KCP.
    pub fec_data_shards: usize,
    /// FEC parity shards per group.
    pub fec_parity_shards: usize,
    /// Coalesce writes until the next flush tick (kcp-go `SetWriteDelay(true)`).
    pub write_delay: bool,
    /// Send ACKs as soon as data arrives instead of on the next flush.
    pub ack_nodelay: bool,
    /// Transmissions of one segment after which the session is declared dead.
    pub dead_link: u32,
    /// Most new segments one flush may send; 0 = unlimited (kcp-go). Bounds the bursts
    /// a large window would otherwise put on the wire at once.
    pub max_burst: u32,
    /// After a [`KcpStream`](super::KcpStream) is dropped, how long its session keeps
    /// running to deliver what is still unacknowledged (KCP has no close handshake).
    pub linger: Duration,
    /// Listener: most concurrent sessions; datagrams opening more are dropped.
    pub max_sessions: usize,
    /// Listener: sessions waiting for `accept` (kcp-go's `acceptBacklog`).
    pub accept_backlog: usize,
}

impl KcpConfig {
    /// frpc's dial settings (golib v0.5.1 `net/dial.go dialKCPServer`): nodelay
    /// (1, 20, 2, 1), windows 128/512, MTU 1350, FEC 10/3, write delay, no ACK nodelay.
    pub fn frp_client() -> Self {
        KcpConfig {
            nodelay: true,
            interval_ms: 20,
            resend: 2,
            no_congestion_window: true,
            snd_wnd: 128,
            rcv_wnd: 512,
            mtu: 1350,
            min_rto_ms: None,
            fec_data_shards: 10,
            fec_parity_shards: 3,
            write_delay: true,
            ack_nodelay: false,
            dead_link: DEAD_LINK,
            max_burst: 0,
            linger: Duration::from_secs(10),
            max_sessions: 4096,
            accept_backlog: 128,
        }
    }

    /// frps's listener settings (frp v0.65.0 `pkg/util/net/kcp.go ListenKcp`): as the
    /// client but with windows 1024/1024.
    pub fn frp_server() -> Self {
        KcpConfig {
            snd_wnd: 1024,
            rcv_wnd: 1024,
            ..Self::frp_client()
        }
    }

    /// Our preset for links where both ends are frp-rs (interoperable with kcp-go too):
    ///
    /// * 5 ms flush interval and no write delay: a write goes out at once, so loopback
    ///   latency is well under frp's ~20 ms (ACKs still ride the 5 ms tick).
    /// * windows of 4096 segments (~5.5 MB in flight): ~1.4 Gbit/s at 30 ms RTT, so the
    ///   window, not the RTT, stops limiting goodput on long paths; receivers bound
    ///   memory by the same window.
    /// * no congestion window and fast resend after 2 ACKs (frp's too): loss does not
    ///   throttle the rate, holes are resent within about one RTT.
    /// * minimum RTO 60 ms: ACKs ride the receiver's 5 ms tick and bursts queue, so at
    ///   30 ms RTT kcp-go's `srtt + max(interval, 4·rttvar)` fires early and a fifth of
    ///   the traffic became spurious resends; real losses are repaired by fast/early
    ///   retransmit long before the RTO anyway.
    /// * no FEC: with windows this large a lost segment is resent long before the window
    ///   stalls, so 30 % parity overhead buys nothing but CPU and bandwidth. MTU 1400
    ///   (raw KCP, so 1400-byte datagrams fit any 1500-byte path with room for tunnels).
    pub fn fast() -> Self {
        KcpConfig {
            interval_ms: 5,
            min_rto_ms: Some(60),
            snd_wnd: 4096,
            rcv_wnd: 4096,
            mtu: 1400,
            fec_data_shards: 0,
            fec_parity_shards: 0,
            write_delay: false,
            ..Self::frp_server()
        }
    }

    /// Checks the values can run (rejecting, for example, an MTU larger than a read).
    pub fn validate(&self) -> io::Result<()> {
        let bad = |msg: &str| {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("KCP: {msg}"),
            ))
        };
        if self.mtu < OVERHEAD + 26 || self.mtu + FEC_OVERHEAD > MAX_DATAGRAM {
            return bad("mtu must be between 50 and 2040");
        }
        if !(1..=5000).contains(&self.interval_ms) {
            return bad("interval must be between 1 and 5000 ms");
        }
        if self.snd_wnd == 0 || self.rcv_wnd == 0 {
            return bad("windows must be at least 1 segment");
        }
        let fec = (self.fec_data_shards, self.fec_parity_shards);
        if fec != (0, 0) && (fec.0 == 0 || fec.1 == 0 || fec.0 + fec.1 > 255) {
            return bad("FEC shards must both be 0 or both positive, at most 255 in total");
        }
        if self.dead_link == 0 || self.max_sessions == 0 || self.accept_backlog == 0 {
            return bad("dead_link, max_sessions and accept_backlog must be positive");
        }
        Ok(())
    }

    pub(crate) fn core(&self) -> CoreConfig {
        CoreConfig {
            nodelay: self.nodelay,
            interval: self.interval_ms,
            resend: self.resend,
            no_cwnd: self.no_congestion_window,
            snd_wnd: self.snd_wnd,
            rcv_wnd: self.rcv_wnd,
            mtu: self.mtu,
            min_rto: self.min_rto_ms,
            dead_link: self.dead_link,
            max_burst: self.max_burst,
        }
    }

    /// Shard counts the FEC decoder assumes: ours, or frp's 10/3 when we send raw KCP
    /// (a kcp-go peer always sends 10/3).
    pub(crate) fn decoder_shards(&self) -> (usize, usize) {
        if self.fec_data_shards == 0 {
            (10, 3)
        } else {
            (self.fec_data_shards, self.fec_parity_shards)
        }
    }
}

impl Default for KcpConfig {
    /// frp's client settings.
    fn default() -> Self {
        Self::frp_client()
    }
}

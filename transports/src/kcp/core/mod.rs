//! The KCP ARQ state machine, sans IO, in stream mode (the only mode frp uses).
//!
//! Segment format (ikcp, little-endian, 24 bytes then data):
//! `conv u32 | cmd u8 (81 PUSH, 82 ACK, 83 WASK, 84 WINS) | frg u8 | wnd u16 | ts u32 |
//! sn u32 | una u32 | len u32 | data`. Several segments may share one datagram.
//!
//! The algorithm follows kcp-go v5.6.13 `kcp.go` (our peers are kcp-go): RFC 6298 RTO
//! with kcp-go's rttvar weighting, `flush` returning the delay until the next one, early
//! retransmit when a later segment was acknowledged and nothing new was sent, the ACK
//! "jitter filter", window probing, and kcp-go's congestion window when `nc` is off.
//! Two deliberate differences, neither visible on the wire:
//!
//! * Fast-ack counting is done once per input datagram against its highest ACK (ikcp's C
//!   code) instead of once per ACK segment (kcp-go), which is O(window) per datagram
//!   instead of O(window × acks) and matters with the large windows of the fast tuning.
//! * `snd_buf` sequence numbers are contiguous (segments leave only from the front), so
//!   an ACK finds its segment by index instead of by a scan.
//!
//! Why our own core rather than the `kcp` crate: that crate drives output through a
//! blocking `Write`, counts windows differently from kcp-go and keeps message mode;
//! we need a time-as-argument core that the FEC layer and tokio timers can drive, with
//! O(1) ACK handling for big windows.
//!
//! Time is a wrapping `u32` millisecond clock supplied by the caller.

use std::collections::VecDeque;

mod flush;

/// Bytes of a segment header.
pub const OVERHEAD: usize = 24;
/// Push data.
pub const CMD_PUSH: u8 = 81;
/// Acknowledge.
pub const CMD_ACK: u8 = 82;
/// Window probe (ask).
pub const CMD_WASK: u8 = 83;
/// Window size (tell).
pub const CMD_WINS: u8 = 84;

const ASK_SEND: u32 = 1;
const ASK_TELL: u32 = 2;
/// Minimum RTO with nodelay (ikcp `IKCP_RTO_NDL`).
pub const RTO_NODELAY_MIN: u32 = 30;
const RTO_MIN: u32 = 100;
const RTO_DEF: u32 = 200;
const RTO_MAX: u32 = 60_000;
const THRESH_INIT: u32 = 2;
const THRESH_MIN: u32 = 2;
const PROBE_INIT: u32 = 7_000;
const PROBE_LIMIT: u32 = 120_000;
/// Segment buffers a conversation may keep for reuse even with small windows.
const MIN_SPARE_BUFFERS: usize = 64;
/// kcp-go's `IKCP_DEADLINK`: transmissions of one segment before the link is dead.
pub const DEAD_LINK: u32 = 20;

/// Tuning of one KCP endpoint (kcp-go `NoDelay`, `WndSize`, `SetMtu`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreConfig {
    /// nodelay mode: minimum RTO 30 ms and gentler RTO backoff.
    pub nodelay: bool,
    /// Flush interval in ms.
    pub interval: u32,
    /// Fast retransmit after this many later ACKs (0 = off).
    pub resend: u32,
    /// Disable the congestion window.
    pub no_cwnd: bool,
    /// Send window in segments.
    pub snd_wnd: u16,
    /// Receive window in segments.
    pub rcv_wnd: u16,
    /// Largest KCP datagram (header included).
    pub mtu: usize,
    /// Minimum RTO in ms (`None`: 30 with nodelay, 100 without, as kcp-go).
    pub min_rto: Option<u32>,
    /// Transmissions of one segment after which the link is declared dead.
    pub dead_link: u32,
    /// Most new segments one flush may send (0 = no limit, as kcp-go).
    pub max_burst: u32,
}

/// Why [`Kcp::input`] rejected (part of) a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Shorter than one segment header.
    #[error("datagram shorter than a KCP header")]
    Short,
    /// A segment of another conversation.
    #[error("conversation id mismatch")]
    Conv,
    /// A segment's length exceeds the datagram.
    #[error("truncated KCP segment")]
    Truncated,
    /// Unknown command byte.
    #[error("unknown KCP command")]
    Cmd,
}

/// Counters of one conversation, for diagnostics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// PUSH segments sent, retransmissions included.
    pub sent: u64,
    /// Retransmissions after an RTO expired.
    pub rto_resends: u64,
    /// Fast and early retransmissions (later segments were acknowledged).
    pub fast_resends: u64,
    /// PUSH segments received that were already received.
    pub duplicates: u64,
}

#[derive(Debug)]
struct Segment {
    sn: u32,
    ts: u32,
    resendts: u32,
    rto: u32,
    fastack: u32,
    xmit: u32,
    acked: bool,
    data: Vec<u8>,
}

/// Signed distance between two wrapping timestamps or sequence numbers.
fn diff(later: u32, earlier: u32) -> i32 {
    later.wrapping_sub(earlier) as i32
}

/// Reads the conversation id, command and sn of the first segment of a KCP datagram.
pub fn peek_header(kcp: &[u8]) -> Option<(u32, u8, u32)> {
    if kcp.len() < OVERHEAD {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes([kcp[i], kcp[i + 1], kcp[i + 2], kcp[i + 3]]);
    Some((u32_at(0), kcp[4], u32_at(12)))
}

/// One KCP conversation.
#[derive(Debug)]
pub struct Kcp {
    conv: u32,
    mtu: usize,
    mss: usize,
    dead: bool,
    snd_una: u32,
    snd_nxt: u32,
    rcv_nxt: u32,
    ssthresh: u32,
    rx_rttvar: i32,
    rx_srtt: i32,
    rx_rto: u32,
    rx_minrto: u32,
    snd_wnd: u32,
    rcv_wnd: u32,
    rmt_wnd: u32,
    cwnd: u32,
    incr: u32,
    probe: u32,
    ts_probe: u32,
    probe_wait: u32,
    cfg: CoreConfig,
    snd_queue: VecDeque<Vec<u8>>,
    snd_buf: VecDeque<Segment>,
    rcv_queue: VecDeque<Vec<u8>>,
    /// Bytes of `rcv_queue.front()` already read.
    rcv_offset: usize,
    rcv_buf: VecDeque<(u32, Vec<u8>)>,
    acklist: Vec<(u32, u32)>,
    buffer: Vec<u8>,
    stats: Stats,
    /// Segment buffers kept for reuse (at most `spare_limit`): at gigabit rates a fresh
    /// `mss`-sized allocation per segment sent and received showed up as ~9 % of the CPU
    /// in malloc/free. ACKs free buffers in bursts, so the pool is sized to a quarter of
    /// the larger window (memory bounded by the windows anyway).
    spare: Vec<Vec<u8>>,
    spare_limit: usize,
    /// Earliest `resendts` of the segments in flight, as of the last full `snd_buf` scan
    /// and the segments sent since (`None`: nothing in flight). May be early (a segment
    /// was acknowledged since), never late.
    earliest_resend: Option<u32>,
    /// Some segment in flight may have `fastack > 0`.
    fastack_pending: bool,
}

impl Kcp {
    /// A conversation `conv` tuned by `cfg` (windows of 0 become 1, MTU at least 50).
    pub fn new(conv: u32, cfg: &CoreConfig) -> Self {
        let mtu = cfg.mtu.max(50);
        let min_rto = cfg.min_rto.unwrap_or(if cfg.nodelay {
            RTO_NODELAY_MIN
        } else {
            RTO_MIN
        });
        Kcp {
            conv,
            mtu,
            mss: mtu - OVERHEAD,
            dead: false,
            snd_una: 0,
            snd_nxt: 0,
            rcv_nxt: 0,
            ssthresh: THRESH_INIT,
            rx_rttvar: 0,
            rx_srtt: 0,
            rx_rto: RTO_DEF,
            rx_minrto: min_rto,
            snd_wnd: u32::from(cfg.snd_wnd.max(1)),
            rcv_wnd: u32::from(cfg.rcv_wnd.max(1)),
            // ikcp's initial guess of the peer's window (IKCP_WND_RCV).
            rmt_wnd: 32,
            cwnd: 0,
            incr: 0,
            probe: 0,
            ts_probe: 0,
            probe_wait: 0,
            cfg: CoreConfig {
                interval: cfg.interval.max(1),
                ..*cfg
            },
            snd_queue: VecDeque::new(),
            snd_buf: VecDeque::new(),
            rcv_queue: VecDeque::new(),
            rcv_offset: 0,
            rcv_buf: VecDeque::new(),
            acklist: Vec::new(),
            buffer: Vec::with_capacity(mtu),
            stats: Stats::default(),
            spare: Vec::new(),
            spare_limit: (usize::from(cfg.snd_wnd.max(cfg.rcv_wnd)) / 4).max(MIN_SPARE_BUFFERS),
            earliest_resend: None,
            fastack_pending: false,
        }
    }

    /// An empty buffer for one segment's data, reused when possible.
    fn take_buf(&mut self) -> Vec<u8> {
        self.spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.mss))
    }

    /// Keeps a segment buffer for reuse (a bounded number of them).
    fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < self.spare_limit && buf.capacity() >= self.mss {
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The conversation id.
    pub fn conv(&self) -> u32 {
        self.conv
    }

    /// Largest payload of one segment.
    pub fn mss(&self) -> usize {
        self.mss
    }

    /// True once a segment was sent `dead_link` times without acknowledgement.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Segments queued or in flight (kcp-go `WaitSnd`).
    pub fn wait_snd(&self) -> usize {
        self.snd_buf.len() + self.snd_queue.len()
    }

    /// Segments that may still be queued before writers must wait: kcp-go lets `Write`
    /// proceed while `WaitSnd < min(snd_wnd, rmt_wnd)`.
    pub fn send_room(&self) -> usize {
        (self.snd_wnd.min(self.rmt_wnd) as usize).saturating_sub(self.wait_snd())
    }

    /// True if there are unread bytes.
    pub fn readable(&self) -> bool {
        !self.rcv_queue.is_empty()
    }

    /// True if ACKs wait for the next flush.
    pub fn has_pending_acks(&self) -> bool {
        !self.acklist.is_empty()
    }

    /// Queues bytes for sending, filling the last queued segment first (stream mode).
    pub fn send(&mut self, mut data: &[u8]) {
        if let Some(last) = self.snd_queue.back_mut() {
            let take = (self.mss - last.len().min(self.mss)).min(data.len());
            last.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        for chunk in data.chunks(self.mss) {
            let mut seg = self.take_buf();
            seg.extend_from_slice(chunk);
            self.snd_queue.push_back(seg);
        }
    }

    /// Reads received bytes in order; returns how many were copied.
    pub fn recv(&mut self, out: &mut [u8]) -> usize {
        let fast_recover = self.rcv_queue.len() >= self.rcv_wnd as usize;
        let mut n = 0;
        while n < out.len() {
            let Some(front) = self.rcv_queue.front() else {
                break;
            };
            let avail = &front[self.rcv_offset..];
            let take = avail.len().min(out.len() - n);
            out[n..n + take].copy_from_slice(&avail[..take]);
            n += take;
            self.rcv_offset += take;
            if self.rcv_offset == front.len() {
                if let Some(done) = self.rcv_queue.pop_front() {
                    self.recycle(done);
                }
                self.rcv_offset = 0;
            }
        }
        self.move_to_rcv_queue();
        if fast_recover && self.rcv_queue.len() < self.rcv_wnd as usize {
            // Tell the peer the window reopened (kcp-go "fast recover").
            self.probe |= ASK_TELL;
        }
        n
    }

    fn move_to_rcv_queue(&mut self) {
        while let Some((sn, _)) = self.rcv_buf.front() {
            if *sn != self.rcv_nxt || self.rcv_queue.len() >= self.rcv_wnd as usize {
                break;
            }
            if let Some((_, data)) = self.rcv_buf.pop_front() {
                if !data.is_empty() {
                    self.rcv_queue.push_back(data);
                }
            }
            self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
        }
    }

    fn update_ack(&mut self, rtt: i32) {
        if self.rx_srtt == 0 {
            self.rx_srtt = rtt;
            self.rx_rttvar = rtt >> 1;
        } else {
            let mut delta = rtt - self.rx_srtt;
            self.rx_srtt += delta >> 3;
            delta = delta.abs();
            if rtt < self.rx_srtt - self.rx_rttvar {
                self.rx_rttvar += (delta - self.rx_rttvar) >> 5;
            } else {
                self.rx_rttvar += (delta - self.rx_rttvar) >> 2;
            }
        }
        let rto = (self.rx_srtt.max(0) as u32)
            .saturating_add(self.cfg.interval.max((self.rx_rttvar.max(0) as u32) << 2));
        self.rx_rto = rto.clamp(self.rx_minrto, RTO_MAX);
    }

    fn shrink_buf(&mut self) {
        self.snd_una = self.snd_buf.front().map_or(self.snd_nxt, |s| s.sn);
    }

    /// Index in `snd_buf` of an in-flight `sn`.
    fn snd_index(&self, sn: u32) -> Option<usize> {
        if diff(sn, self.snd_una) < 0 || diff(sn, self.snd_nxt) >= 0 {
            return None;
        }
        let idx = sn.wrapping_sub(self.snd_buf.front()?.sn) as usize;
        (idx < self.snd_buf.len()).then_some(idx)
    }

    fn parse_ack(&mut self, sn: u32) {
        if let Some(i) = self.snd_index(sn) {
            let seg = &mut self.snd_buf[i];
            seg.acked = true;
            let data = std::mem::take(&mut seg.data);
            self.recycle(data);
        }
    }

    fn parse_fastack(&mut self, sn: u32, ts: u32) {
        let Some(end) = self.snd_index(sn) else {
            return;
        };
        for seg in self.snd_buf.range_mut(..end) {
            if !seg.acked && diff(seg.ts, ts) <= 0 {
                seg.fastack += 1;
                self.fastack_pending = true;
            }
        }
    }

    fn parse_una(&mut self, una: u32) -> bool {
        let before = self.snd_buf.len();
        while self.snd_buf.front().is_some_and(|s| diff(una, s.sn) > 0) {
            if let Some(seg) = self.snd_buf.pop_front() {
                self.recycle(seg.data);
            }
        }
        self.snd_buf.len() != before
    }

    fn parse_data(&mut self, sn: u32, data: &[u8]) {
        if diff(sn, self.rcv_nxt) < 0 {
            self.stats.duplicates += 1;
            return;
        }
        if diff(sn, self.rcv_nxt.wrapping_add(self.rcv_wnd)) >= 0 {
            return;
        }
        let mut idx = 0;
        for (i, (s, _)) in self.rcv_buf.iter().enumerate().rev() {
            if *s == sn {
                self.stats.duplicates += 1;
                return;
            }
            if diff(sn, *s) > 0 {
                idx = i + 1;
                break;
            }
        }
        let mut buf = self.take_buf();
        buf.extend_from_slice(data);
        self.rcv_buf.insert(idx, (sn, buf));
        self.move_to_rcv_queue();
    }

    /// Processes one KCP datagram. `regular` is false for datagrams rebuilt by FEC (their
    /// window and timestamps are not trusted, as in kcp-go). Returns whether the send
    /// window slid (the caller should then flush, as kcp-go does).
    pub fn input(&mut self, mut data: &[u8], regular: bool, now: u32) -> Result<bool, InputError> {
        if data.len() < OVERHEAD {
            return Err(InputError::Short);
        }
        let prev_una = self.snd_una;
        let mut slid = false;
        let mut latest_ack_ts = None;
        let mut max_ack: Option<(u32, u32)> = None;
        let mut result = Ok(());
        while data.len() >= OVERHEAD {
            let u32_at =
                |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
            let (conv, cmd) = (u32_at(0), data[4]);
            let wnd = u16::from_le_bytes([data[6], data[7]]);
            let (ts, sn, una, len) = (u32_at(8), u32_at(12), u32_at(16), u32_at(20) as usize);
            if conv != self.conv {
                result = Err(InputError::Conv);
                break;
            }
            let body = &data[OVERHEAD..];
            if body.len() < len {
                result = Err(InputError::Truncated);
                break;
            }
            if !(CMD_PUSH..=CMD_WINS).contains(&cmd) {
                result = Err(InputError::Cmd);
                break;
            }
            if regular {
                self.rmt_wnd = u32::from(wnd);
            }
            slid |= self.parse_una(una);
            self.shrink_buf();
            match cmd {
                CMD_ACK => {
                    self.parse_ack(sn);
                    if max_ack.is_none_or(|(m, _)| diff(sn, m) > 0) {
                        max_ack = Some((sn, ts));
                    }
                    latest_ack_ts = Some(ts);
                }
                CMD_PUSH if diff(sn, self.rcv_nxt.wrapping_add(self.rcv_wnd)) < 0 => {
                    self.acklist.push((sn, ts));
                    self.parse_data(sn, &body[..len]);
                }
                CMD_PUSH => {} // beyond the receive window: dropped, not acknowledged
                CMD_WASK => self.probe |= ASK_TELL,
                _ => {} // WINS: the window was taken from the header
            }
            data = &body[len..];
        }
        if let Some((sn, ts)) = max_ack {
            self.parse_fastack(sn, ts);
        }
        if let (Some(ts), true) = (latest_ack_ts, regular) {
            if diff(now, ts) >= 0 {
                self.update_ack(diff(now, ts));
            }
        }
        if !self.cfg.no_cwnd && diff(self.snd_una, prev_una) > 0 {
            self.grow_cwnd();
        }
        result.map(|()| slid)
    }

    fn grow_cwnd(&mut self) {
        if self.cwnd >= self.rmt_wnd {
            return;
        }
        let mss = self.mss as u32;
        if self.cwnd < self.ssthresh {
            self.cwnd += 1;
            self.incr += mss;
        } else {
            self.incr = self.incr.max(mss);
            self.incr += (mss * mss) / self.incr + mss / 16;
            if (self.cwnd + 1) * mss <= self.incr {
                self.cwnd = self.incr.div_ceil(mss);
            }
        }
        if self.cwnd > self.rmt_wnd {
            self.cwnd = self.rmt_wnd;
            self.incr = self.rmt_wnd * mss;
        }
    }

    fn wnd_unused(&self) -> u16 {
        let free = (self.rcv_wnd as usize).saturating_sub(self.rcv_queue.len());
        u16::try_from(free).unwrap_or(u16::MAX)
    }
}

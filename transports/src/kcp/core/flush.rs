//! The output side of [`Kcp`]: `flush` (ACKs, window probes, new segments and
//! retransmissions) and kcp-go's congestion window bookkeeping.

use super::{
    diff, Kcp, Segment, ASK_SEND, ASK_TELL, CMD_ACK, CMD_PUSH, CMD_WASK, CMD_WINS, OVERHEAD,
    PROBE_INIT, PROBE_LIMIT, THRESH_MIN,
};

#[allow(clippy::too_many_arguments)]
fn put_header(
    buf: &mut Vec<u8>,
    conv: u32,
    cmd: u8,
    wnd: u16,
    ts: u32,
    sn: u32,
    una: u32,
    len: usize,
) {
    buf.extend_from_slice(&conv.to_le_bytes());
    buf.push(cmd);
    buf.push(0); // frg: always 0 in stream mode
    buf.extend_from_slice(&wnd.to_le_bytes());
    buf.extend_from_slice(&ts.to_le_bytes());
    buf.extend_from_slice(&sn.to_le_bytes());
    buf.extend_from_slice(&una.to_le_bytes());
    buf.extend_from_slice(&(len as u32).to_le_bytes());
}

impl Kcp {
    /// Emits ACKs, probes, new and due segments as datagrams of at most `mtu` bytes to
    /// `out`. With `ack_only`, only pending ACKs. Returns the ms until the next flush is
    /// due (at most the interval).
    pub fn flush(&mut self, now: u32, ack_only: bool, out: &mut impl FnMut(&[u8])) -> u32 {
        let mut buf = std::mem::take(&mut self.buffer);
        let wnd = self.wnd_unused();
        let una = self.rcv_nxt;
        let mtu = self.mtu;
        // Emits the datagram being built if `space` more bytes would not fit.
        let mut make_space = |buf: &mut Vec<u8>, space: usize| {
            if !buf.is_empty() && buf.len().saturating_add(space) > mtu {
                out(buf);
                buf.clear();
            }
        };

        let acks = std::mem::take(&mut self.acklist);
        for (i, &(sn, ts)) in acks.iter().enumerate() {
            // kcp-go filters ACKs already covered by una, except the last one.
            if diff(sn, self.rcv_nxt) >= 0 || i + 1 == acks.len() {
                make_space(&mut buf, OVERHEAD);
                put_header(&mut buf, self.conv, CMD_ACK, wnd, ts, sn, una, 0);
            }
        }
        self.acklist = acks;
        self.acklist.clear();
        if ack_only {
            make_space(&mut buf, usize::MAX);
            self.buffer = buf;
            return self.cfg.interval;
        }

        self.update_probe(now);
        for (flag, cmd) in [(ASK_SEND, CMD_WASK), (ASK_TELL, CMD_WINS)] {
            if self.probe & flag != 0 {
                make_space(&mut buf, OVERHEAD);
                put_header(&mut buf, self.conv, cmd, wnd, 0, 0, una, 0);
            }
        }
        self.probe = 0;

        let mut cwnd = self.snd_wnd.min(self.rmt_wnd);
        if !self.cfg.no_cwnd {
            cwnd = cwnd.min(self.cwnd);
        }
        let mut new_segs = 0u32;
        let burst = if self.cfg.max_burst == 0 {
            u32::MAX
        } else {
            self.cfg.max_burst
        };
        while new_segs < burst && diff(self.snd_nxt, self.snd_una.wrapping_add(cwnd)) < 0 {
            let Some(data) = self.snd_queue.pop_front() else {
                break;
            };
            self.snd_buf.push_back(Segment {
                sn: self.snd_nxt,
                ts: 0,
                resendts: 0,
                rto: 0,
                fastack: 0,
                xmit: 0,
                acked: false,
                data,
            });
            self.snd_nxt = self.snd_nxt.wrapping_add(1);
            new_segs += 1;
        }

        let resent = if self.cfg.resend == 0 {
            u32::MAX
        } else {
            self.cfg.resend
        };
        let (mut change, mut lost) = (false, false);
        let mut next = self.cfg.interval as i32;
        // Only segments that may be due need a look: with nothing to resend (no fast ACKs
        // counted, no RTO expired) that is just the new ones at the tail. This keeps a flush
        // O(new segments) instead of O(window) with the fast tuning's 4096-segment windows;
        // what is sent is exactly what the full kcp-go scan would send.
        let full = self.fastack_pending || self.earliest_resend.is_some_and(|t| diff(now, t) >= 0);
        let start = if full {
            self.earliest_resend = None;
            self.fastack_pending = false;
            0
        } else {
            self.snd_buf.len() - new_segs as usize
        };
        if let Some(t) = self.earliest_resend {
            let rto = diff(t, now);
            if rto > 0 && rto < next {
                next = rto;
            }
        }
        for seg in self.snd_buf.range_mut(start..) {
            if seg.acked {
                continue;
            }
            let mut send = true;
            if seg.xmit == 0 {
                seg.rto = self.rx_rto;
            } else if seg.fastack >= resent || (seg.fastack > 0 && new_segs == 0) {
                // fast retransmit, or kcp-go's early retransmit
                seg.fastack = 0;
                seg.rto = self.rx_rto;
                change = true;
                self.stats.fast_resends += 1;
            } else if diff(now, seg.resendts) >= 0 {
                seg.rto += if self.cfg.nodelay {
                    self.rx_rto / 2
                } else {
                    self.rx_rto
                };
                seg.fastack = 0;
                lost = true;
                self.stats.rto_resends += 1;
            } else {
                send = false;
            }
            if send {
                seg.resendts = now.wrapping_add(seg.rto);
                seg.xmit += 1;
                seg.ts = now;
                self.stats.sent += 1;
                make_space(&mut buf, OVERHEAD + seg.data.len());
                put_header(
                    &mut buf,
                    self.conv,
                    CMD_PUSH,
                    wnd,
                    now,
                    seg.sn,
                    una,
                    seg.data.len(),
                );
                buf.extend_from_slice(&seg.data);
                if seg.xmit >= self.cfg.dead_link {
                    self.dead = true;
                }
            }
            let rto = diff(seg.resendts, now);
            if rto > 0 && rto < next {
                next = rto;
            }
            if self
                .earliest_resend
                .is_none_or(|t| diff(seg.resendts, t) < 0)
            {
                self.earliest_resend = Some(seg.resendts);
            }
            self.fastack_pending |= seg.fastack > 0;
        }
        make_space(&mut buf, usize::MAX);
        self.buffer = buf;
        if !self.cfg.no_cwnd {
            self.adjust_cwnd(change, lost, cwnd, resent);
        }
        next as u32
    }

    fn update_probe(&mut self, now: u32) {
        if self.rmt_wnd != 0 {
            self.ts_probe = 0;
            self.probe_wait = 0;
            return;
        }
        if self.probe_wait == 0 {
            self.probe_wait = PROBE_INIT;
            self.ts_probe = now.wrapping_add(self.probe_wait);
        } else if diff(now, self.ts_probe) >= 0 {
            self.probe_wait = (self.probe_wait.max(PROBE_INIT) * 3 / 2).min(PROBE_LIMIT);
            self.ts_probe = now.wrapping_add(self.probe_wait);
            self.probe |= ASK_SEND;
        }
    }

    fn adjust_cwnd(&mut self, change: bool, lost: bool, cwnd: u32, resent: u32) {
        let mss = self.mss as u32;
        if change {
            let inflight = self.snd_nxt.wrapping_sub(self.snd_una);
            self.ssthresh = (inflight / 2).max(THRESH_MIN);
            self.cwnd = self.ssthresh.saturating_add(resent);
            self.incr = self.cwnd.saturating_mul(mss);
        }
        if lost {
            self.ssthresh = (cwnd / 2).max(THRESH_MIN);
            self.cwnd = 1;
            self.incr = mss;
        }
        if self.cwnd < 1 {
            self.cwnd = 1;
            self.incr = mss;
        }
    }
}

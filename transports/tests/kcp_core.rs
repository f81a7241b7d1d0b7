//! The sans-IO KCP core in memory: two endpoints on a fake clock joined by a lossy,
//! reordering, duplicating link (optionally through the FEC layer) must deliver both byte
//! streams intact and in order. Also: malformed input never panics.

use proptest::prelude::*;
use transports::kcp::core::{CoreConfig, Kcp, DEAD_LINK};
use transports::kcp::fec::{classify, FecDecoder, FecEncoder, Framing};

/// A tiny deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn chance(&mut self, percent: u32) -> bool {
        (self.next() % 100) < u64::from(percent)
    }
}

#[derive(Clone, Copy, Debug)]
struct Link {
    loss: u32,
    dup: u32,
    delay: u32,
    jitter: u32,
}

struct End {
    kcp: Kcp,
    enc: Option<FecEncoder>,
    dec: FecDecoder,
    next_flush: u32,
    to_send: Vec<u8>,
    sent: usize,
    received: Vec<u8>,
}

impl End {
    fn new(conv: u32, cfg: &CoreConfig, data: Vec<u8>, fec: bool) -> Self {
        End {
            kcp: Kcp::new(conv, cfg),
            enc: fec.then(|| FecEncoder::new(10, 3).unwrap()),
            dec: FecDecoder::new(10, 3).unwrap(),
            next_flush: 0,
            to_send: data,
            sent: 0,
            received: Vec::new(),
        }
    }

    fn input(&mut self, dg: &[u8], now: u32) {
        match classify(dg) {
            Framing::Raw(k) => {
                let _ = self.kcp.input(k, true, now);
            }
            Framing::Data(k) => {
                let _ = self.kcp.input(k, true, now);
                let mut rec = Vec::new();
                self.dec.decode(dg, &mut |r| rec.push(r.to_vec()));
                for r in rec {
                    let _ = self.kcp.input(&r, false, now);
                }
            }
            Framing::Parity => {
                let mut rec = Vec::new();
                self.dec.decode(dg, &mut |r| rec.push(r.to_vec()));
                for r in rec {
                    let _ = self.kcp.input(&r, false, now);
                }
            }
            Framing::Invalid => {}
        }
    }

    /// Writes what the window allows, reads what arrived, flushes when due.
    fn tick(&mut self, now: u32, out: &mut Vec<Vec<u8>>) {
        let room = self.kcp.send_room() * self.kcp.mss();
        let n = room.min(self.to_send.len() - self.sent).min(5000);
        if n > 0 {
            self.kcp.send(&self.to_send[self.sent..self.sent + n]);
            self.sent += n;
        }
        let mut buf = [0u8; 3000];
        loop {
            let got = self.kcp.recv(&mut buf);
            if got == 0 {
                break;
            }
            self.received.extend_from_slice(&buf[..got]);
        }
        if now >= self.next_flush {
            let Self { kcp, enc, .. } = self;
            let interval = kcp.flush(now, false, &mut |d| match enc {
                Some(e) => e.encode(d, u64::from(now), &mut |p| out.push(p)),
                None => out.push(d.to_vec()),
            });
            self.next_flush = now + interval.max(1);
        }
    }
}

fn config(wnd: u16) -> CoreConfig {
    CoreConfig {
        nodelay: true,
        interval: 10,
        resend: 2,
        no_cwnd: true,
        snd_wnd: wnd,
        rcv_wnd: wnd,
        mtu: 1350,
        min_rto: None,
        dead_link: 1000,
        max_burst: 0,
    }
}

/// Runs both directions until delivered; returns the simulated ms it took.
fn run_pair(a_data: Vec<u8>, b_data: Vec<u8>, link: Link, fec: bool, seed: u64) -> u32 {
    let cfg = config(64);
    let mut ends = [
        End::new(7, &cfg, a_data.clone(), fec),
        End::new(7, &cfg, b_data.clone(), fec),
    ];
    let mut rng = Rng(seed | 1);
    // (arrival time, destination, datagram)
    let mut wire: Vec<(u32, usize, Vec<u8>)> = Vec::new();
    for now in 0..600_000u32 {
        let (due, rest): (Vec<_>, Vec<_>) = wire.into_iter().partition(|(t, _, _)| *t <= now);
        wire = rest;
        for (_, dst, dg) in due {
            ends[dst].input(&dg, now);
        }
        for (i, end) in ends.iter_mut().enumerate() {
            let mut out = Vec::new();
            end.tick(now, &mut out);
            for dg in out {
                assert!(dg.len() <= 1358, "datagram of {} bytes", dg.len());
                let copies = if rng.chance(link.loss) {
                    0
                } else if rng.chance(link.dup) {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let at = now + link.delay + (rng.next() % u64::from(link.jitter + 1)) as u32;
                    wire.push((at, 1 - i, dg.clone()));
                }
            }
        }
        if ends[1].received.len() == a_data.len() && ends[0].received.len() == b_data.len() {
            assert!(ends[1].received == a_data, "a→b stream corrupted");
            assert!(ends[0].received == b_data, "b→a stream corrupted");
            return now;
        }
    }
    panic!(
        "not delivered: a→b {}/{}, b→a {}/{}",
        ends[1].received.len(),
        a_data.len(),
        ends[0].received.len(),
        b_data.len()
    );
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt) ^ (i >> 9) as u8)
        .collect()
}

#[test]
fn perfect_link_delivers_quickly() {
    let link = Link {
        loss: 0,
        dup: 0,
        delay: 5,
        jitter: 0,
    };
    let ms = run_pair(pattern(200_000, 1), pattern(50_000, 2), link, false, 1);
    // 64-segment window, 10 ms RTT plus ACK delay: well under a few seconds.
    assert!(ms < 3_000, "took {ms} ms");
}

#[test]
fn fec_hides_light_loss() {
    let link = Link {
        loss: 3,
        dup: 0,
        delay: 5,
        jitter: 0,
    };
    run_pair(pattern(300_000, 3), pattern(300_000, 4), link, true, 99);
}

#[test]
fn dead_link_when_peer_vanishes() {
    let mut cfg = config(32);
    cfg.dead_link = DEAD_LINK;
    let mut kcp = Kcp::new(1, &cfg);
    kcp.send(b"hello");
    let mut now = 0u32;
    while !kcp.is_dead() {
        let next = kcp.flush(now, false, &mut |_| {});
        now += next.max(1);
        assert!(now < 600_000, "never declared dead");
    }
}

#[test]
fn window_limits_queueing() {
    let mut kcp = Kcp::new(1, &config(16));
    // The peer's window is unknown until it speaks: ikcp assumes 32, capped by ours.
    assert_eq!(kcp.send_room(), 16);
    kcp.send(&vec![0u8; 16 * kcp.mss()]);
    assert_eq!(kcp.send_room(), 0);
}

/// `(cmd, sn)` of every segment in the datagrams.
fn segments(datagrams: &[Vec<u8>]) -> Vec<(u8, u32)> {
    let mut segs = Vec::new();
    for dg in datagrams {
        let mut d = dg.as_slice();
        while d.len() >= 24 {
            let sn = u32::from_le_bytes([d[12], d[13], d[14], d[15]]);
            let len = u32::from_le_bytes([d[20], d[21], d[22], d[23]]) as usize;
            segs.push((d[4], sn));
            d = &d[(24 + len).min(d.len())..];
        }
    }
    segs
}

/// A header-only segment: `conv`, `cmd`, window `wnd`, `sn`; ts, una and len 0.
fn segment(conv: u32, cmd: u8, wnd: u16, sn: u32) -> Vec<u8> {
    let mut seg = Vec::new();
    seg.extend_from_slice(&conv.to_le_bytes());
    seg.extend_from_slice(&[cmd, 0]);
    seg.extend_from_slice(&wnd.to_le_bytes());
    seg.extend_from_slice(&0u32.to_le_bytes()); // ts
    seg.extend_from_slice(&sn.to_le_bytes());
    seg.extend_from_slice(&0u32.to_le_bytes()); // una
    seg.extend_from_slice(&0u32.to_le_bytes()); // len
    seg
}

#[test]
fn rto_and_fast_resends_happen_while_new_data_keeps_flowing() {
    // The flush only scans the whole send buffer when something may be due; check that
    // an unacknowledged segment is still resent exactly when its RTO expires (200 ms
    // before any RTT sample) while every flush also sends new segments.
    let mut kcp = Kcp::new(1, &config(1024));
    kcp.input(&segment(1, 84, 1024, 0), true, 0).unwrap(); // the peer's window: 1024
    let mut first_resend = None;
    for now in 0..400u32 {
        kcp.send(&[7u8; 100]);
        let mut out = Vec::new();
        let next = kcp.flush(now, false, &mut |d| out.push(d.to_vec()));
        assert!((1..=10).contains(&next), "next flush in {next} ms");
        let pushes: Vec<u32> = segments(&out)
            .into_iter()
            .filter(|&(cmd, _)| cmd == 81)
            .map(|(_, sn)| sn)
            .collect();
        assert!(pushes.contains(&now), "new segment {now} not sent");
        if pushes.contains(&0) && now > 0 {
            first_resend.get_or_insert(now);
        }
    }
    assert_eq!(first_resend, Some(200));
    // Segment k is resent at k + 200: segments 0..=199 within the 400 flushes.
    assert_eq!(kcp.stats().rto_resends, 200);

    // A fast retransmit: the peer acknowledges segments 1 and 2 (not 0) with timestamps
    // after segment 0 was sent; two such ACKs make segment 0 due at the next flush.
    let mut kcp = Kcp::new(9, &config(64));
    for _ in 0..3 {
        kcp.send(&[1u8; 1326]);
    }
    let mut out = Vec::new();
    kcp.flush(0, false, &mut |d| out.push(d.to_vec()));
    kcp.input(&segment(9, 82, 64, 1), true, 5).unwrap();
    kcp.input(&segment(9, 82, 64, 2), true, 6).unwrap();
    kcp.send(&[2u8; 10]); // new data in the same flush
    let mut out = Vec::new();
    kcp.flush(7, false, &mut |d| out.push(d.to_vec()));
    let pushes: Vec<u32> = segments(&out)
        .into_iter()
        .filter(|&(cmd, _)| cmd == 81)
        .map(|(_, sn)| sn)
        .collect();
    assert_eq!(pushes, vec![0, 3]);
    assert_eq!(kcp.stats().fast_resends, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn lossy_reordering_duplicating_link_delivers_in_order(
        len_a in 0usize..60_000,
        len_b in 0usize..60_000,
        loss in 0u32..25,
        dup in 0u32..20,
        jitter in 0u32..40,
        fec in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let link = Link { loss, dup, delay: 3, jitter };
        run_pair(pattern(len_a, 5), pattern(len_b, 6), link, fec, seed);
    }

    #[test]
    fn malformed_input_never_panics(dgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..50)) {
        let mut kcp = Kcp::new(0x0403_0201, &config(32));
        for mut dg in dgs {
            if dg.len() >= 5 {
                // Mostly our conv and valid commands, to get past the first checks.
                dg[..4].copy_from_slice(&0x0403_0201u32.to_le_bytes());
                dg[4] = 81 + dg[4] % 5;
            }
            let _ = kcp.input(&dg, true, 5);
            kcp.flush(10, false, &mut |_| {});
            let mut buf = [0u8; 512];
            kcp.recv(&mut buf);
        }
    }
}

//! `kcp_fec`: kcp-go's FEC framing (`transports::kcp::fec`) and the KCP ARQ core
//! (`transports::kcp::core`) on arbitrary datagrams.

use transports::kcp::core::{peek_header, CoreConfig, Kcp, OVERHEAD};
use transports::kcp::fec::{classify, FecDecoder, FecEncoder, Framing};

use crate::records::records;

/// frp's KCP MTU (golib `dialKCPServer`, frps `ListenKcp`).
const MTU: usize = 1350;
/// frp's FEC shard counts.
const DATA: usize = 10;
const PARITY: usize = 3;

/// Input: records (see `records`). Tag % 4: 0 a datagram from the peer, 1 advance the
/// clock by `len` ms and flush, 2 read up to `len` bytes, 3 queue the body for sending.
/// Bit 7 of a datagram record's tag drops that datagram in the FEC round trip.
///
/// Properties:
///
/// * the receive path (classify, FEC recovery, `Kcp::input`), `recv` and `flush` never
///   panic; we deliver no more bytes than the peer pushed;
/// * every datagram `flush` emits fits the MTU and parses as whole KCP segments of our
///   conversation;
/// * FEC round trip: the datagrams framed by [`FecEncoder`] with some shards lost, fed to a
///   [`FecDecoder`], recover only lost data shards, byte for byte, and all of them in
///   every complete group that lost at most 3 shards.
pub fn kcp_fec(data: &[u8]) {
    check_core(data);
    check_fec_round_trip(data);
}

fn check_core(data: &[u8]) {
    let conv = records(data)
        .find(|r| r.tag % 4 == 0)
        .and_then(|r| match classify(r.body) {
            Framing::Data(k) | Framing::Raw(k) => peek_header(k).map(|(conv, ..)| conv),
            _ => None,
        })
        .unwrap_or(0);
    let cfg = CoreConfig {
        nodelay: true,
        interval: 20,
        resend: 2,
        no_cwnd: data.first().is_some_and(|b| b & 0x80 == 0),
        snd_wnd: 128,
        rcv_wnd: 512,
        mtu: MTU,
        min_rto: None,
        dead_link: 20,
        max_burst: 0,
    };
    let mut kcp = Kcp::new(conv, &cfg);
    let mut dec = FecDecoder::new(DATA, PARITY).expect("10/3 is valid");
    let mut now: u32 = 0;
    let mut pushed: usize = 0;
    let mut delivered: usize = 0;
    let mut buf = vec![0u8; 64 * 1024];
    for r in records(data) {
        match r.tag % 4 {
            0 => {
                let mut recovered = Vec::new();
                match classify(r.body) {
                    Framing::Raw(k) => {
                        pushed += push_bytes(k);
                        let _ = kcp.input(k, true, now);
                    }
                    Framing::Data(k) => {
                        pushed += push_bytes(k);
                        let _ = kcp.input(k, true, now);
                        dec.decode(r.body, &mut |k| recovered.push(k.to_vec()));
                    }
                    Framing::Parity => dec.decode(r.body, &mut |k| recovered.push(k.to_vec())),
                    Framing::Invalid => {}
                }
                for k in recovered {
                    pushed += push_bytes(&k);
                    let _ = kcp.input(&k, false, now);
                }
            }
            1 => {
                now = now.wrapping_add(u32::from(r.len));
                flush_checked(&mut kcp, now);
            }
            2 => {
                let n = kcp.recv(&mut buf[..usize::from(r.len)]);
                delivered += n;
            }
            _ => {
                kcp.send(r.body);
                flush_checked(&mut kcp, now);
            }
        }
        assert!(
            delivered <= pushed,
            "delivered {delivered} bytes, the peer pushed {pushed}"
        );
    }
}

/// Payload bytes of the PUSH segments in a KCP datagram (an upper bound of what it adds).
fn push_bytes(mut k: &[u8]) -> usize {
    let mut n = 0;
    while k.len() >= OVERHEAD {
        let len = u32::from_le_bytes([k[20], k[21], k[22], k[23]]) as usize;
        let Some(rest) = k[OVERHEAD..].get(len..) else {
            break;
        };
        if k[4] == 81 {
            n += len;
        }
        k = rest;
    }
    n
}

fn flush_checked(kcp: &mut Kcp, now: u32) {
    let conv = kcp.conv();
    kcp.flush(now, false, &mut |dg| {
        assert!(dg.len() <= MTU, "datagram of {} bytes > MTU", dg.len());
        let mut rest = dg;
        assert!(!rest.is_empty(), "empty datagram");
        while !rest.is_empty() {
            assert!(rest.len() >= OVERHEAD, "partial segment header");
            let (c, cmd, _) = peek_header(rest).expect("a header");
            assert_eq!(c, conv, "segment of another conversation");
            assert!((81..=84).contains(&cmd), "command {cmd}");
            let len = u32::from_le_bytes([rest[20], rest[21], rest[22], rest[23]]) as usize;
            rest = rest[OVERHEAD..]
                .get(len..)
                .expect("segment longer than the datagram");
        }
    });
}

fn check_fec_round_trip(data: &[u8]) {
    // (kcp bytes, dropped) per datagram record, capped as a KCP datagram is.
    let sent: Vec<(&[u8], bool)> = records(data)
        .filter(|r| r.tag % 4 == 0)
        .map(|r| (&r.body[..r.body.len().min(MTU)], r.tag & 0x80 != 0))
        .collect();
    let mut enc = FecEncoder::new(DATA, PARITY).expect("10/3 is valid");
    // Every shard with the index of its data payload (None for parity).
    let mut shards: Vec<(Vec<u8>, Option<usize>)> = Vec::new();
    for (i, (kcp, _)) in sent.iter().enumerate() {
        let mut first = true;
        enc.encode(kcp, 0, &mut |s| {
            shards.push((s, first.then_some(i)));
            first = false;
        });
    }
    let total = DATA + PARITY;
    let mut dec = FecDecoder::new(DATA, PARITY).expect("10/3 is valid");
    let mut recovered: Vec<Vec<u8>> = Vec::new();
    let mut lost: Vec<usize> = Vec::new();
    for (n, (shard, idx)) in shards.iter().enumerate() {
        // A parity shard is lost when the data shard `PARITY` places before it in the
        // group was (which keeps the input-to-loss mapping simple and deterministic).
        let drop = match idx {
            Some(i) => sent[*i].1,
            None => {
                let pos = n % total;
                shards[n - pos + (pos - DATA)].1.is_some_and(|i| sent[i].1)
            }
        };
        if drop {
            if let Some(i) = idx {
                lost.push(*i);
            }
            continue;
        }
        dec.decode(shard, &mut |k| recovered.push(k.to_vec()));
    }
    for r in &recovered {
        assert!(
            lost.iter().any(|&i| sent[i].0 == r.as_slice()),
            "recovered a shard that was not lost: {r:?}"
        );
    }
    // Complete groups (data and parity sent) with at most PARITY lost shards.
    for g in shards.chunks_exact(total) {
        let lost_in_group: Vec<usize> = g[..DATA]
            .iter()
            .filter_map(|(_, i)| i.filter(|&i| sent[i].1))
            .collect();
        let lost_parity = g[DATA..]
            .iter()
            .enumerate()
            .filter(|(p, _)| g[*p].1.is_some_and(|i| sent[i].1))
            .count();
        if lost_in_group.len() + lost_parity <= PARITY {
            for i in lost_in_group {
                assert!(
                    recovered.iter().any(|r| r.as_slice() == sent[i].0),
                    "lost data shard {i} not recovered"
                );
            }
        }
    }
}

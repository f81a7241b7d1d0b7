//! kcp-go FEC framing: byte vectors captured from the real frp 0.65.0 binaries, and
//! property tests of our encoder/decoder (recovery of up to 3 lost shards per group,
//! garbage never panics).

use proptest::prelude::*;
use transports::kcp::fec::{classify, FecDecoder, FecEncoder, Framing};
use transports::kcp::rs::ReedSolomon;

/// The first FEC group real frpc (`transport.protocol = "kcp"`, TLS off) sent to real frps
/// through a UDP relay: 10 data shards (Login, yamux frames, ACKs), then 3 parity shards.
const CAPTURED_GROUP: [&str; 13] = [
    "00000000f100d500f4a6c4ff51000002160000000000000000000000bb0000000001000100000001005c00000000000000000001000000a36f000000000000009a7b2276657273696f6e223a22302e36352e30222c226f73223a226c696e7578222c2261726368223a22616d643634222c2270726976696c6567655f6b6579223a223637346566396664356138343736333937366138323435623536383663616339222c2274696d657374616d70223a313739353331303735342c22636c69656e745f73706563223a7b7d2c22706f6f6c5f636f756e74223a317d",
    "01000000f100dd00f4a6c4ff520000021f040000000000000100000000000000f4a6c4ff510000023f0000000100000001000000ab000000000000000000000100000010e481572e3867e849b0436ae6e2ef3a91000000000000000100000045229bc00043cea38a916834cd95445a030f9de95a205014685d76f1cac9cef297711a936cb899b4befc0bfc659f1ae8ba231c29aa0807ed74c77f18f0584a937f7a908daa700001000100000003005c000000000000000000030000002677000000000000001d7b2272756e5f6964223a2233363338646239343163633664326237227d",
    "02000000f1001a00f4a6c4ff5200000233040000010000000200000000000000",
    "03000000f1007000f4a6c4ff5200000261140000110000001200000000000000f4a6c4ff510000027610000002000000120000003e0000000001000100000005005c000000000000000000050000002677000000000000001d7b2272756e5f6964223a2233363338646239343163633664326237227d",
    "04000000f1001a00f4a6c4ff5200000275140000120000001300000000000000",
    "05000000f1001a00f4a6c4ff520000029f140000220000002300000000000000",
    "06000000f1001a00f4a6c4ff52000002c9140000320000003300000000000000",
    "07000000f1001a00f4a6c4ff5200000206150000420000004300000000000000",
    "08000000f1001a00f4a6c4ff5200000233150000520000005300000000000000",
    "09000000f1001a00f4a6c4ff5200000270150000620000006300000000000000",
    "0a000000f2009e00f4a6c4ffcc000002768c00001b000000b5000000640000001a526984bb0000dde4320000fb000000b4000081470000e0f6b800b8000000f4082df2667287727790ebb3288cdc1ccbe134422daff2f64c76fa016345d6a59a9176555800f71ea3ccbdab60c0524f33cb37d71d133320f55e1513a428b00e7e2c92da4a918e1701bd771c06214bf4bf1bdbd02a6facbf85ddf8fb2456af5a668da11eb13eec41e9034cecab4ed2af7694b5e8aa8b9415b50d2baff2d061d79577ece34cd2301bf48b08df55f9e9f0a16ee645f30b4c8402b6a0effef13b93686706fc",
    "0b000000f200c300f4a6c4fff5000002c4ab0000af000000160000001d0000001a456993bb0000cae27f0000c2000000e00000962e00004c58af00af000000a8bc9206672aeff4bb3144c34480fbe9e874c5d4ec9106586b1c4401d3ccd6e902be1f66c82e54f781f7df3c1e2628bc3b078b07ade176cda9516f6dcd93a4c0cd049d040f3a3bb22b09d9555ad15ba214764a77ecb3c6e92ca266d2b025550bc14f9b568cd4ae8a692c6baecff7cc7b573467f0560534a267c8c09106328d0badceaefa6bcc96cef49ac28b72d1d8aa2e0d71cad351da9bee7ca048b434140a35b5f211",
    "0c000000f200cb00f4a6c4ff8e00000287d400000c00000062000000e9000000bffd7cd78400001aa3340000c2000000620000bf8c000047090a000a000000f428921df9a3533b43c9d2c41a7885796cdf8b3071291d0961cfba5450c93db89bbc435c74f95713a4106cdb10a0c173bb001941183a6f3257eecbebff1f33e4bff8b339a61c693d3a60dd7fe88c2982ce250fac2fc3c85265d89a27226c0883468cd511e2807b7a6a2d617b3d0dbddeb3fe5b6f389dfe415b5f87291d4f50acfbb67b4861bd4d5a739fc4198d49be6778bb11ae5004b5b60bf2164e1bf0038fcd266eca",
];

fn captured() -> Vec<Vec<u8>> {
    CAPTURED_GROUP
        .iter()
        .map(|h| hex::decode(h).unwrap())
        .collect()
}

fn kcp_bytes(datagram: &[u8]) -> &[u8] {
    match classify(datagram) {
        Framing::Data(kcp) => kcp,
        other => panic!("not a data shard: {other:?}"),
    }
}

#[test]
fn captured_group_layout() {
    let group = captured();
    for (i, dg) in group.iter().enumerate() {
        assert_eq!(u32::from_le_bytes(dg[..4].try_into().unwrap()), i as u32);
        let flag = u16::from_le_bytes([dg[4], dg[5]]);
        assert_eq!(flag, if i < 10 { 0xF1 } else { 0xF2 });
        if i < 10 {
            let size = u16::from_le_bytes([dg[6], dg[7]]) as usize;
            assert_eq!(size, dg.len() - 6, "size = 2 + KCP bytes");
        }
    }
    let longest = group[..10].iter().map(Vec::len).max().unwrap();
    assert!(group[10..].iter().all(|p| p.len() == longest));
}

/// Our Reed-Solomon parity equals klauspost's, byte for byte.
#[test]
fn our_parity_matches_captured_parity() {
    let group = captured();
    let longest = group[..10].iter().map(Vec::len).max().unwrap();
    let padded: Vec<Vec<u8>> = group[..10]
        .iter()
        .map(|d| {
            let mut v = d[6..].to_vec();
            v.resize(longest - 6, 0);
            v
        })
        .collect();
    let refs: Vec<&[u8]> = padded.iter().map(Vec::as_slice).collect();
    let mut parity = vec![Vec::new(); 3];
    ReedSolomon::new(10, 3)
        .unwrap()
        .encode(&refs, &mut parity)
        .unwrap();
    for p in 0..3 {
        assert_eq!(parity[p], group[10 + p][6..], "parity shard {p}");
    }
}

/// Our encoder, fed the same KCP datagrams in time, emits the captured datagrams exactly.
#[test]
fn our_encoder_reproduces_captured_group() {
    let group = captured();
    let mut enc = FecEncoder::new(10, 3).unwrap();
    let mut out = Vec::new();
    for (i, dg) in group[..10].iter().enumerate() {
        enc.encode(kcp_bytes(dg), 1000 + i as u64 * 20, &mut |p| out.push(p));
    }
    assert_eq!(out, group);
}

/// Losing any 3 shards of the captured group, the decoder recovers the lost data shards.
#[test]
fn decoder_recovers_captured_group() {
    let group = captured();
    for lost in [
        [0usize, 1, 2],
        [7, 8, 9],
        [0, 5, 12],
        [3, 10, 11],
        [9, 11, 12],
    ] {
        let mut dec = FecDecoder::new(10, 3).unwrap();
        let mut recovered = Vec::new();
        for (i, dg) in group.iter().enumerate() {
            if !lost.contains(&i) {
                dec.decode(dg, &mut |k| recovered.push(k.to_vec()));
            }
        }
        let expected: Vec<Vec<u8>> = lost
            .iter()
            .filter(|&&i| i < 10)
            .map(|&i| kcp_bytes(&group[i]).to_vec())
            .collect();
        assert_eq!(recovered, expected, "lost {lost:?}");
    }
}

/// Encodes `payloads` (one group per 10) with timestamps 1 ms apart.
fn encode_all(payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut enc = FecEncoder::new(10, 3).unwrap();
    let mut out = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        enc.encode(p, i as u64, &mut |d| out.push(d));
    }
    out
}

proptest! {
    #[test]
    fn lose_up_to_three_shards_per_group_and_recover(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 24..1350), 20),
        lost in prop::collection::vec(prop::collection::btree_set(0usize..13, 0..=3), 2),
    ) {
        let shards = encode_all(&payloads);
        prop_assert_eq!(shards.len(), 26);
        let mut dec = FecDecoder::new(10, 3).unwrap();
        let mut got: Vec<Vec<u8>> = Vec::new();
        for (i, dg) in shards.iter().enumerate() {
            let (g, pos) = (i / 13, i % 13);
            if lost[g].contains(&pos) {
                continue;
            }
            if let Framing::Data(kcp) = classify(dg) {
                got.push(kcp.to_vec());
            }
            dec.decode(dg, &mut |k| got.push(k.to_vec()));
        }
        let mut got_sorted = got.clone();
        got_sorted.sort();
        let mut want = payloads.clone();
        want.sort();
        prop_assert_eq!(got_sorted, want);
    }

    #[test]
    fn reordered_and_duplicated_shards_never_yield_wrong_data(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 24..200), 30),
        order in Just((0..39usize).collect::<Vec<_>>()).prop_shuffle(),
        drop_mask in prop::collection::vec(any::<bool>(), 39),
    ) {
        let shards = encode_all(&payloads);
        let mut dec = FecDecoder::new(10, 3).unwrap();
        for &i in &order {
            if drop_mask[i] {
                continue;
            }
            for _ in 0..2 {
                dec.decode(&shards[i], &mut |k| {
                    assert!(payloads.iter().any(|p| p == k), "recovered bytes not sent");
                });
            }
        }
    }

    #[test]
    fn garbage_never_panics(dgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..64)) {
        let mut dec = FecDecoder::new(10, 3).unwrap();
        for mut dg in dgs {
            if dg.len() >= 6 {
                dg[4] = 0xF1 + (dg[0] & 1);
                dg[5] = 0;
            }
            let _ = classify(&dg);
            dec.decode(&dg, &mut |_| {});
        }
    }
}

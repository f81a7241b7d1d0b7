//! Property tests of the message catalogue and the codec: round trips for every message with
//! arbitrary field values, length agreement, Go-style `omitempty`/escaping, and "garbage never
//! panics or over-allocates".

use bytes::{BufMut, BytesMut};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

use control::msg::*;
use control::{decode, encode, MsgCodec, ProtocolError, HEADER_LEN, MAX_FRAME_LEN};

fn s() -> impl Strategy<Value = String> {
    // Mix of plain ASCII, the characters Go escapes, and arbitrary unicode.
    prop_oneof![
        Just(String::new()),
        "[a-z0-9._-]{1,12}",
        "[<>&\"\\\\\u{2028}\u{2029}\n\t\u{1}a]{1,8}",
        ".{0,16}",
    ]
}
fn map() -> impl Strategy<Value = StringMap> {
    btree_map(s(), s(), 0..3)
}
fn strings() -> impl Strategy<Value = Vec<String>> {
    vec(s(), 0..3)
}

fn login() -> impl Strategy<Value = Login> {
    (
        (s(), s(), s(), s(), s(), s()),
        (any::<i64>(), s(), map(), s(), any::<bool>(), any::<i64>()),
    )
        .prop_map(
            |((version, hostname, os, arch, user, privilege_key), rest)| {
                let (timestamp, run_id, metas, spec_type, always_auth_pass, pool_count) = rest;
                Login {
                    version,
                    hostname,
                    os,
                    arch,
                    user,
                    privilege_key,
                    timestamp,
                    run_id,
                    metas,
                    client_spec: ClientSpec {
                        r#type: spec_type,
                        always_auth_pass,
                    },
                    pool_count,
                }
            },
        )
}

fn new_proxy() -> impl Strategy<Value = NewProxy> {
    (
        (s(), s(), any::<bool>(), any::<bool>(), s(), s(), s(), s()),
        (map(), map(), any::<i64>(), strings(), s(), strings()),
        (s(), s(), s(), map(), map(), s(), s(), strings(), s()),
    )
        .prop_map(|(a, b, c)| NewProxy {
            proxy_name: a.0,
            proxy_type: a.1,
            use_encryption: a.2,
            use_compression: a.3,
            bandwidth_limit: a.4,
            bandwidth_limit_mode: a.5,
            group: a.6,
            group_key: a.7,
            metas: b.0,
            annotations: b.1,
            remote_port: b.2,
            custom_domains: b.3,
            sub_domain: b.4,
            locations: b.5,
            http_user: c.0,
            http_pwd: c.1,
            host_header_rewrite: c.2,
            headers: c.3,
            response_headers: c.4,
            route_by_http_user: c.5,
            sk: c.6,
            allow_users: c.7,
            multiplexer: c.8,
        })
}

fn udp_addr() -> impl Strategy<Value = UdpAddr> {
    (
        proptest::option::of(any::<std::net::IpAddr>()),
        any::<i64>(),
        s(),
    )
        .prop_map(|(ip, port, zone)| UdpAddr { ip, port, zone })
        // Go prints IPv4-mapped IPv6 as dotted IPv4; keep to addresses both sides print alike.
        .prop_filter(
            "mapped v6",
            |a| !matches!(a.ip, Some(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some()),
        )
}

fn detect_behavior() -> impl Strategy<Value = NatHoleDetectBehavior> {
    (
        s(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        vec((any::<i64>(), any::<i64>()), 0..3),
        any::<i64>(),
        any::<i64>(),
    )
        .prop_map(
            |(role, mode, ttl, send_delay_ms, read_timeout_ms, ports, sr, lr)| {
                NatHoleDetectBehavior {
                    role,
                    mode,
                    ttl,
                    send_delay_ms,
                    read_timeout_ms,
                    candidate_ports: ports
                        .into_iter()
                        .map(|(from, to)| PortsRange { from, to })
                        .collect(),
                    send_random_ports: sr,
                    listen_random_ports: lr,
                }
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        login().prop_map(Message::from),
        (s(), s(), s()).prop_map(|(version, run_id, error)| LoginResp {
            version,
            run_id,
            error
        }
        .into()),
        new_proxy().prop_map(Message::from),
        (s(), s(), s()).prop_map(|(proxy_name, remote_addr, error)| NewProxyResp {
            proxy_name,
            remote_addr,
            error
        }
        .into()),
        s().prop_map(|proxy_name| CloseProxy { proxy_name }.into()),
        (s(), s(), any::<i64>()).prop_map(|(run_id, privilege_key, timestamp)| NewWorkConn {
            run_id,
            privilege_key,
            timestamp
        }
        .into()),
        Just(ReqWorkConn {}.into()),
        (s(), s(), s(), any::<u16>(), any::<u16>(), s()).prop_map(|t| StartWorkConn {
            proxy_name: t.0,
            src_addr: t.1,
            dst_addr: t.2,
            src_port: t.3,
            dst_port: t.4,
            error: t.5,
        }
        .into()),
        (s(), s(), s(), any::<i64>(), any::<bool>(), any::<bool>()).prop_map(|t| {
            NewVisitorConn {
                run_id: t.0,
                proxy_name: t.1,
                sign_key: t.2,
                timestamp: t.3,
                use_encryption: t.4,
                use_compression: t.5,
            }
            .into()
        }),
        (s(), s()).prop_map(|(proxy_name, error)| NewVisitorConnResp { proxy_name, error }.into()),
        (s(), any::<i64>()).prop_map(|(privilege_key, timestamp)| Ping {
            privilege_key,
            timestamp
        }
        .into()),
        s().prop_map(|error| Pong { error }.into()),
        (
            vec(any::<u8>(), 0..64),
            proptest::option::of(udp_addr()),
            proptest::option::of(udp_addr())
        )
            .prop_map(|(data, l, r)| UdpPacket::new(&data, l, r).into()),
        (
            s(),
            s(),
            any::<bool>(),
            s(),
            s(),
            any::<i64>(),
            strings(),
            strings()
        )
            .prop_map(|t| {
                NatHoleVisitor {
                    transaction_id: t.0,
                    proxy_name: t.1,
                    pre_check: t.2,
                    protocol: t.3,
                    sign_key: t.4,
                    timestamp: t.5,
                    mapped_addrs: t.6,
                    assisted_addrs: t.7,
                }
                .into()
            }),
        (s(), s(), s(), strings(), strings()).prop_map(|t| NatHoleClient {
            transaction_id: t.0,
            proxy_name: t.1,
            sid: t.2,
            mapped_addrs: t.3,
            assisted_addrs: t.4,
        }
        .into()),
        (s(), s(), s(), strings(), strings(), detect_behavior(), s()).prop_map(|t| {
            NatHoleResp {
                transaction_id: t.0,
                sid: t.1,
                protocol: t.2,
                candidate_addrs: t.3,
                assisted_addrs: t.4,
                detect_behavior: t.5,
                error: t.6,
            }
            .into()
        }),
        (s(), s(), any::<bool>(), s()).prop_map(|t| NatHoleSid {
            transaction_id: t.0,
            sid: t.1,
            response: t.2,
            nonce: t.3,
        }
        .into()),
        (s(), any::<bool>()).prop_map(|(sid, success)| NatHoleReport { sid, success }.into()),
    ]
}

/// Whether a JSON value is Go's zero value for its type (what `omitempty` drops).
fn is_go_zero(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0) || n.as_u64() == Some(0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Checks omitempty recursively: struct fields that are zero must be absent, except the
/// nested structs Go always emits and the untagged `UDPAddr` fields.
fn assert_omitempty(v: &serde_json::Value, always: &[&str]) {
    if let serde_json::Value::Object(o) = v {
        for (k, val) in o {
            if !always.contains(&k.as_str()) {
                assert!(!is_go_zero(val), "zero-valued key {k:?} was emitted: {v}");
            }
            // Map values (metas, headers) are data, not struct fields.
            let is_map =
                ["metas", "annotations", "headers", "response_headers"].contains(&k.as_str());
            let is_udp_addr = k == "l" || k == "r";
            if !is_map && !is_udp_addr {
                match val {
                    serde_json::Value::Array(items) => {
                        items.iter().for_each(|i| assert_omitempty(i, always))
                    }
                    other => assert_omitempty(other, always),
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip_and_length_agreement(msg in message()) {
        let mut buf = BytesMut::new();
        encode(&msg, &mut buf).unwrap();
        prop_assert_eq!(buf[0], msg.type_byte());
        let len = i64::from_be_bytes(buf[1..HEADER_LEN].try_into().unwrap());
        prop_assert_eq!(len as usize, buf.len() - HEADER_LEN);
        prop_assert_eq!(&buf[HEADER_LEN..], &msg.to_json().unwrap()[..]);
        // Go's HTML-safe escaping: these never appear raw.
        prop_assert!(!buf[HEADER_LEN..].iter().any(|b| matches!(b, b'<' | b'>' | b'&')));
        let value: serde_json::Value = serde_json::from_slice(&buf[HEADER_LEN..]).unwrap();
        assert_omitempty(&value, &["client_spec", "detect_behavior"]);

        let decoded = decode(&mut buf).unwrap();
        prop_assert_eq!(decoded.as_ref(), Some(&msg));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn split_anywhere_still_decodes(msg in message(), cut in any::<prop::sample::Index>()) {
        let mut whole = BytesMut::new();
        encode(&msg, &mut whole).unwrap();
        let at = cut.index(whole.len());
        let mut codec = MsgCodec;
        let mut buf = BytesMut::from(&whole[..at]);
        prop_assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&whole[at..]);
        prop_assert_eq!(codec.decode(&mut buf).unwrap(), Some(msg));
    }

    #[test]
    fn garbage_never_panics_or_overallocates(data in vec(any::<u8>(), 0..12_000)) {
        let mut buf = BytesMut::from(&data[..]);
        let initial = buf.capacity();
        while let Ok(Some(_)) = decode(&mut buf) {}
        prop_assert!(buf.capacity() <= (2 * initial).max(MAX_FRAME_LEN));
    }

    #[test]
    fn valid_headers_with_garbage_bodies(
        ty in prop::sample::select(MessageType::ALL.to_vec()),
        len in prop_oneof![any::<i64>(), -5i64..10_300],
        body in vec(any::<u8>(), 0..300),
    ) {
        let mut buf = BytesMut::new();
        buf.put_u8(ty.type_byte());
        buf.put_i64(len);
        buf.put_slice(&body);
        match decode(&mut buf) {
            Ok(Some(m)) => prop_assert_eq!(m.msg_type(), ty),
            Ok(None) => {
                prop_assert!((0..=10240).contains(&len));
                prop_assert!(buf.capacity() <= 2 * MAX_FRAME_LEN);
            }
            Err(ProtocolError::NegativeLength(n)) => prop_assert!(n < 0 && n == len),
            Err(ProtocolError::TooLong { len: n, .. }) => prop_assert!(n > 10240 && n == len),
            Err(ProtocolError::BadJson { kind, .. }) => prop_assert_eq!(kind, ty),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn unknown_type_bytes_are_rejected_at_once(b in any::<u8>()) {
        prop_assume!(MessageType::from_type_byte(b).is_none());
        let mut buf = BytesMut::from(&[b][..]);
        prop_assert!(matches!(decode(&mut buf), Err(ProtocolError::UnknownType(x)) if x == b));
    }
}

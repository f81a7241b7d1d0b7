//! Encoding details of the catalogue: omitempty, Go escaping, UDP addresses, type bytes.

use super::*;
use std::net::SocketAddr;

fn json(m: impl Into<Message>) -> String {
    String::from_utf8(m.into().to_json().unwrap()).unwrap()
}

#[test]
fn zero_values_are_omitted_but_nested_structs_are_not() {
    assert_eq!(json(Login::default()), r#"{"client_spec":{}}"#);
    assert_eq!(json(NatHoleResp::default()), r#"{"detect_behavior":{}}"#);
    assert_eq!(json(ReqWorkConn {}), "{}");
    assert_eq!(json(Pong::default()), "{}");
    assert_eq!(json(UdpPacket::default()), "{}");
}

#[test]
fn html_characters_are_escaped_like_go() {
    let m = CloseProxy {
        proxy_name: "a<b>&c\u{2028}\u{8}\n\"é".into(),
    };
    assert_eq!(
        json(m),
        r#"{"proxy_name":"a\u003cb\u003e\u0026c\u2028\b\n\"é"}"#
    );
    let mut metas = StringMap::new();
    metas.insert("<k>".into(), "v".into());
    let m = Login {
        metas,
        ..Default::default()
    };
    assert_eq!(
        json(m),
        r#"{"metas":{"\u003ck\u003e":"v"},"client_spec":{}}"#
    );
}

#[test]
fn decode_accepts_missing_and_unknown_fields() {
    let m = Message::from_json(
        MessageType::StartWorkConn,
        br#"{"proxy_name":"x","future_field":[1,{"a":2}],"src_port":7}"#,
    )
    .unwrap();
    assert_eq!(
        m,
        Message::StartWorkConn(StartWorkConn {
            proxy_name: "x".into(),
            src_port: 7,
            ..Default::default()
        })
    );
    let m = Message::from_json(MessageType::ReqWorkConn, br#"{"x":1}"#).unwrap();
    assert_eq!(m, Message::ReqWorkConn(ReqWorkConn {}));
}

#[test]
fn udp_addr_matches_go_shape() {
    let addr: SocketAddr = "127.0.0.1:60244".parse().unwrap();
    let p = UdpPacket::new(b"hello<udp>", None, Some(addr.into()));
    assert_eq!(
        json(p.clone()),
        r#"{"c":"aGVsbG88dWRwPg==","r":{"IP":"127.0.0.1","Port":60244,"Zone":""}}"#
    );
    assert_eq!(p.payload().unwrap(), b"hello<udp>");
    assert_eq!(p.remote_addr.unwrap().to_socket_addr(), Some(addr));
    let nil: UdpAddr = serde_json::from_str(r#"{"IP":"","Port":1}"#).unwrap();
    assert_eq!(nil.ip, None);
    assert_eq!(nil.to_socket_addr(), None);
    assert!(serde_json::from_str::<UdpAddr>(r#"{"IP":"nope"}"#).is_err());
}

#[test]
fn go_platform_names() {
    assert_eq!(go_os("linux"), "linux");
    assert_eq!(go_os("macos"), "darwin");
    assert_eq!(go_arch("x86_64"), "amd64");
    assert_eq!(go_arch("aarch64"), "arm64");
    assert_eq!(go_arch("arm"), "arm");
}

#[test]
fn type_bytes_round_trip() {
    assert_eq!(MessageType::ALL.len(), 18);
    for &t in MessageType::ALL {
        assert_eq!(MessageType::from_type_byte(t.type_byte()), Some(t));
    }
    assert_eq!(MessageType::UdpPacket.name(), "UDPPacket");
    assert_eq!(Message::from_type_byte(b'o'), Some(MessageType::Login));
    assert_eq!(Message::from_type_byte(b'x'), None);
    assert_eq!(Message::from(Ping::default()).type_byte(), b'h');
}

/// The byte-scanning escaper against a char-by-char statement of Go's HTML-safe rule, on
/// strings rich in the characters that matter and in other `E2 xx xx` characters (`†`, `€`,
/// U+202A) that share U+2028's first byte.
#[test]
fn go_escaping_matches_a_char_by_char_reference() {
    use proptest::prelude::*;
    fn reference(s: &str) -> String {
        let mut out = String::new();
        for c in s.chars() {
            match c {
                '<' => out.push_str("\\u003c"),
                '>' => out.push_str("\\u003e"),
                '&' => out.push_str("\\u0026"),
                '\u{2028}' => out.push_str("\\u2028"),
                '\u{2029}' => out.push_str("\\u2029"),
                c => out.push(c),
            }
        }
        out
    }
    let chars = prop::sample::select(vec![
        'a', '<', '>', '&', '\u{2028}', '\u{2029}', '\u{2020}', '€', '\u{202a}', 'é', '\u{e2}',
    ]);
    proptest!(|(v in prop::collection::vec(chars, 0..24))| {
        let s: String = v.into_iter().collect();
        let mut got = Vec::new();
        serde_json::ser::Formatter::write_string_fragment(&mut GoFormatter, &mut got, &s).unwrap();
        prop_assert_eq!(String::from_utf8(got).unwrap(), reference(&s));
    });
}

//! Golden frames captured from the real frp 0.65.0 binaries (plain TCP, tcpMux off, TLS off;
//! control-connection frames decrypted). `tests/capture/capture.py` produced
//! `tests/golden/frames.txt`: real frpc against a fake frps, and real frps against a fake frpc.
//!
//! Every frame must decode, re-encode to the identical bytes, and carry the keys frp computed.

use bytes::BytesMut;
use control::msg::*;
use control::{auth, decode, encode, privilege_key, wire_error, AuthVerifier, TokenAuth};

const FRAMES: &str = include_str!("golden/frames.txt");
/// The `auth.token` both binaries were configured with.
const TOKEN: &str = "abc";

fn frame(name: &str) -> Vec<u8> {
    let line = FRAMES
        .lines()
        .find(|l| l.split_once(' ').map(|(n, _)| n) == Some(name))
        .unwrap_or_else(|| panic!("no golden frame {name}"));
    hex::decode(line.split_once(' ').unwrap().1.trim()).unwrap()
}

fn decode_exact(raw: &[u8]) -> Message {
    let mut buf = BytesMut::from(raw);
    let msg = decode(&mut buf).unwrap().expect("complete frame");
    assert!(buf.is_empty(), "decoder left {} bytes", buf.len());
    msg
}

#[test]
fn every_golden_frame_round_trips_byte_for_byte() {
    let mut count = 0;
    for line in FRAMES.lines().filter(|l| !l.trim().is_empty()) {
        let (name, hex_frame) = line.split_once(' ').unwrap();
        let raw = hex::decode(hex_frame.trim()).unwrap();
        let msg = decode_exact(&raw);
        assert_eq!(msg.type_byte(), raw[0], "{name}");
        let mut out = BytesMut::new();
        encode(&msg, &mut out).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out[9..]),
            String::from_utf8_lossy(&raw[9..]),
            "{name}: JSON differs"
        );
        assert_eq!(&out[..], &raw[..], "{name}: bytes differ");
        count += 1;
    }
    assert!(count >= 22, "only {count} golden frames");
}

#[test]
fn login_from_real_frpc() {
    let Message::Login(login) = decode_exact(&frame("login")) else {
        panic!("not a Login")
    };
    assert_eq!(login.version, "0.65.0");
    assert_eq!(login.os, "linux");
    assert_eq!(login.arch, "amd64");
    assert_eq!(login.user, "u1");
    assert_eq!(login.pool_count, 1);
    assert_eq!(login.metas.get("k1").map(String::as_str), Some("v1"));
    assert_eq!(login.client_spec, ClientSpec::default());
    assert!(login.run_id.is_empty());
    // The key frpc computed is md5(token ++ timestamp).
    assert_eq!(login.privilege_key, privilege_key(TOKEN, login.timestamp));
    let verifier = TokenAuth::new(TOKEN, &[]);
    assert_eq!(verifier.verify_login(&login), Ok(()));
    assert!(TokenAuth::new("abd", &[]).verify_login(&login).is_err());
}

#[test]
fn scoped_ping_and_work_conn_keys_from_real_frpc() {
    let scoped = TokenAuth::new(
        TOKEN,
        &[auth::AuthScope::HeartBeats, auth::AuthScope::NewWorkConns],
    );
    let Message::Ping(ping) = decode_exact(&frame("ping")) else {
        panic!("not a Ping")
    };
    assert_eq!(ping.privilege_key, privilege_key(TOKEN, ping.timestamp));
    assert_eq!(scoped.verify_ping(&ping), Ok(()));
    let Message::NewWorkConn(nwc) = decode_exact(&frame("new_work_conn")) else {
        panic!("not a NewWorkConn")
    };
    assert_eq!(nwc.run_id, "0123456789abcdef");
    assert_eq!(scoped.verify_new_work_conn(&nwc), Ok(()));
}

#[test]
fn visitor_sign_key_uses_the_same_formula_with_the_secret_key() {
    let Message::NewVisitorConn(v) = decode_exact(&frame("new_visitor_conn")) else {
        panic!("not a NewVisitorConn")
    };
    assert_eq!(v.proxy_name, "u1.s1");
    assert!(v.use_encryption && !v.use_compression);
    assert_eq!(v.sign_key, privilege_key("sk1", v.timestamp));
}

#[test]
fn new_proxy_fields_from_real_frpc() {
    let Message::NewProxy(tcp) = decode_exact(&frame("new_proxy_tcp")) else {
        panic!("not a NewProxy")
    };
    assert_eq!(tcp.proxy_name, "u1.t1");
    assert_eq!(tcp.remote_port, 6000);
    assert_eq!(tcp.bandwidth_limit_mode, "server");
    assert_eq!(tcp.metas.get("m1").map(String::as_str), Some("a<b>&c"));
    let Message::NewProxy(http) = decode_exact(&frame("new_proxy_http")) else {
        panic!("not a NewProxy")
    };
    assert_eq!(http.custom_domains, ["a.example.com", "b.example.com"]);
    assert_eq!(http.sub_domain, "sub");
    assert_eq!(http.http_pwd, "pwd");
    assert_eq!(
        http.headers.get("x-from-where").map(String::as_str),
        Some("frp")
    );
    let Message::CloseProxy(close) = decode_exact(&frame("close_proxy")) else {
        panic!("not a CloseProxy")
    };
    assert_eq!(close.proxy_name, "u1.t1");
}

#[test]
fn frps_replies_and_error_strings() {
    let Message::LoginResp(ok) = decode_exact(&frame("login_resp_ok")) else {
        panic!("not a LoginResp")
    };
    assert_eq!(ok.version, "0.65.0");
    assert_eq!(ok.run_id.len(), auth::RUN_ID_LEN);
    assert!(ok.error.is_empty());

    let error_of = |name: &str| match decode_exact(&frame(name)) {
        Message::LoginResp(m) => m.error,
        Message::Pong(m) => m.error,
        Message::StartWorkConn(m) => m.error,
        Message::NewProxyResp(m) => m.error,
        Message::NewVisitorConnResp(m) => m.error,
        other => panic!("{name}: unexpected {other:?}"),
    };
    assert_eq!(
        error_of("login_resp_bad_token"),
        wire_error::LOGIN_TOKEN_MISMATCH
    );
    assert_eq!(error_of("pong_bad"), wire_error::PING_TOKEN_MISMATCH);
    assert_eq!(
        error_of("start_work_conn_bad"),
        wire_error::NEW_WORK_CONN_TOKEN_MISMATCH
    );
    assert_eq!(
        error_of("new_proxy_resp_exists"),
        wire_error::proxy_already_exists("u1.t1")
    );
    assert_eq!(
        error_of("new_visitor_conn_resp_err"),
        wire_error::visitor_listener_missing("u1.nope")
    );
    assert_eq!(error_of("pong_ok"), "");
    assert_eq!(decode_exact(&frame("req_work_conn")), ReqWorkConn {}.into());
}

#[test]
fn start_work_conn_and_udp_packet_from_real_frps() {
    let Message::StartWorkConn(s) = decode_exact(&frame("start_work_conn_tcp")) else {
        panic!("not a StartWorkConn")
    };
    assert_eq!(
        (s.src_addr.as_str(), s.dst_addr.as_str()),
        ("127.0.0.1", "127.0.0.1")
    );
    assert!(s.src_port != 0 && s.dst_port != 0);
    let Message::UdpPacket(p) = decode_exact(&frame("udp_packet")) else {
        panic!("not a UdpPacket")
    };
    assert_eq!(p.payload().unwrap(), b"hello<udp>");
    assert!(p.local_addr.is_none());
    let remote = p.remote_addr.unwrap().to_socket_addr().unwrap();
    assert!(remote.ip().is_loopback());
}

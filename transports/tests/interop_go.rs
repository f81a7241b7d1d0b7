//! Interop with the real Go frp 0.65.0 binaries (they must be present: these tests fail,
//! not skip, when `$FRP_BIN_DIR` / `<workspace>/.cache/frp-0.65.0` lacks them).
//!
//! * real frpc → our [`ServerListener`]: the first logical connection carries a Login.
//! * our [`Connector`] → real frps: a hand-built Login gets a LoginResp, a second stream
//!   works independently (frps closes it after a bogus NewWorkConn) while the control
//!   stream keeps receiving data.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::{free_port, login_json, read_frame, write_frame, Child};
use tokio::io::AsyncReadExt;
use tokio::time::timeout;
use transports::{
    ClientTlsOptions, ClientTransportOptions, Connector, ServerListener, ServerTransportOptions,
    TokioNet,
};

const T: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug)]
struct Mode {
    tcp_mux: bool,
    tls: bool,
    head_byte: bool,
}

const MODES: [Mode; 5] = [
    // frpc defaults: tcpMux, TLS, no custom first byte.
    Mode {
        tcp_mux: true,
        tls: true,
        head_byte: false,
    },
    Mode {
        tcp_mux: true,
        tls: true,
        head_byte: true,
    },
    Mode {
        tcp_mux: true,
        tls: false,
        head_byte: false,
    },
    Mode {
        tcp_mux: false,
        tls: true,
        head_byte: true,
    },
    Mode {
        tcp_mux: false,
        tls: false,
        head_byte: false,
    },
];

fn frpc_config(port: u16, m: Mode) -> String {
    format!(
        r#"
serverAddr = "127.0.0.1"
serverPort = {port}
loginFailExit = false
log.level = "debug"
transport.tcpMux = {mux}
transport.tls.enable = {tls}
transport.tls.disableCustomTLSFirstByte = {disable}

[[proxies]]
name = "t1"
type = "tcp"
localPort = 1
remotePort = 0
"#,
        mux = m.tcp_mux,
        tls = m.tls,
        disable = !m.head_byte,
    )
}

async fn real_frpc_logs_in_to_our_listener(m: Mode) {
    let opts = ServerTransportOptions {
        bind_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        bind_port: 0,
        tcp_mux: m.tcp_mux,
        ..Default::default()
    };
    let mut listener = ServerListener::bind(opts, TokioNet::new()).await.unwrap();
    let port = listener.local_addr().port();
    let frpc = Child::spawn("frpc", &frpc_config(port, m));
    let (mut conn, peer) = timeout(T, listener.accept())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{m:?}: no logical connection; frpc said:\n{}",
                frpc.output()
            )
        })
        .unwrap();
    assert!(peer.ip().is_loopback());
    let (ty, login) = timeout(T, read_frame(&mut conn)).await.unwrap();
    assert_eq!(ty, 0x6f, "{m:?}: first frame must be Login");
    assert_eq!(login["version"], "0.65.0", "{login}");
    assert_eq!(login["pool_count"], 1, "{login}");
    assert!(login["privilege_key"]
        .as_str()
        .is_some_and(|k| k.len() == 32));
}

#[tokio::test]
async fn real_frpc_default_mode_to_our_listener() {
    real_frpc_logs_in_to_our_listener(MODES[0]).await;
}

#[tokio::test]
async fn real_frpc_other_modes_to_our_listener() {
    for m in &MODES[1..] {
        real_frpc_logs_in_to_our_listener(*m).await;
    }
}

/// A refused login ends the session; Go frpc (loginFailExit = false) then dials a new
/// session, which our listener yields as a new logical connection.
#[tokio::test]
async fn real_frpc_reconnects_after_refused_login() {
    let m = MODES[0];
    let opts = ServerTransportOptions {
        bind_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        bind_port: 0,
        ..Default::default()
    };
    let mut listener = ServerListener::bind(opts, TokioNet::new()).await.unwrap();
    let frpc = Child::spawn("frpc", &frpc_config(listener.local_addr().port(), m));
    let (mut control, _) = timeout(T, listener.accept()).await.unwrap().unwrap();
    let (ty, _) = timeout(T, read_frame(&mut control)).await.unwrap();
    assert_eq!(ty, b'o');
    // LoginResp (plaintext), then ReqWorkConn must be encrypted, which we do not do
    // here; but frpc opens work connections only on ReqWorkConn. Instead, answer with a
    // login error: frpc then closes the control stream (EOF on our side).
    write_frame(
        &mut control,
        b'1',
        &serde_json::json!({"version": "0.65.0", "error": "test refuses login"}),
    )
    .await;
    let mut buf = [0u8; 64];
    let n = timeout(T, control.read(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("frpc kept the stream open:\n{}", frpc.output()))
        .unwrap_or(0);
    assert_eq!(n, 0, "expected EOF after a refused login");
    // frpc (loginFailExit = false) retries with a new session and a new Login.
    let (mut again, _) = timeout(T, listener.accept()).await.unwrap().unwrap();
    let (ty, _) = timeout(T, read_frame(&mut again)).await.unwrap();
    assert_eq!(ty, b'o');
}

fn frps_config(port: u16, tcp_mux: bool) -> String {
    format!(
        r#"
bindAddr = "127.0.0.1"
bindPort = {port}
transport.tcpMux = {tcp_mux}
log.level = "debug"
"#
    )
}

async fn our_connector_logs_in_to_real_frps(m: Mode) {
    let (frps, port, ()) = common::start_frps(|| {
        let port = free_port();
        (port, (), frps_config(port, m.tcp_mux))
    })
    .await;
    let opts = ClientTransportOptions {
        server_addr: "127.0.0.1".into(),
        server_port: port,
        tls: m.tls.then(|| ClientTlsOptions {
            disable_custom_first_byte: !m.head_byte,
            ..Default::default()
        }),
        tcp_mux: m.tcp_mux,
        ..Default::default()
    };
    let connector = Connector::new(opts, TokioNet::new()).unwrap();
    timeout(T, connector.open()).await.unwrap().unwrap();
    let mut control = connector.connect().await.unwrap();
    write_frame(&mut control, b'o', &login_json()).await;
    let (ty, resp) = timeout(T, read_frame(&mut control))
        .await
        .unwrap_or_else(|_| panic!("{m:?}: no LoginResp; frps said:\n{}", frps.output()));
    assert_eq!(ty, b'1', "{m:?}: {resp}");
    assert_eq!(resp["version"], "0.65.0");
    let run_id = resp["run_id"].as_str().expect("run_id").to_owned();
    assert!(resp.get("error").is_none(), "{resp}");

    // A second logical connection: a NewWorkConn with an unknown run_id is closed by
    // frps without a reply (frp-protocol.md §3).
    let mut work = connector.connect().await.unwrap();
    write_frame(
        &mut work,
        b'w',
        &serde_json::json!({"run_id": "0000000000000000"}),
    )
    .await;
    let mut buf = [0u8; 16];
    let n = timeout(T, work.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "frps must close a work conn with an unknown run_id");

    // The control connection is still alive: frps sends the 16-byte IV and an encrypted
    // ReqWorkConn (pool_count = 1) after the LoginResp.
    let mut iv_and_more = [0u8; 17];
    timeout(T, control.read_exact(&mut iv_and_more))
        .await
        .unwrap_or_else(|_| panic!("{m:?}: control went quiet ({run_id})"))
        .unwrap();
    connector.close();
}

#[tokio::test]
async fn our_connector_default_mode_to_real_frps() {
    our_connector_logs_in_to_real_frps(MODES[0]).await;
}

#[tokio::test]
async fn our_connector_other_modes_to_real_frps() {
    for m in &MODES[1..] {
        our_connector_logs_in_to_real_frps(*m).await;
    }
}

/// Real frps with `transport.tls.force`: our TLS connector gets in, plaintext does not.
#[tokio::test]
async fn real_frps_forced_tls() {
    let (_frps, port, ()) = common::start_frps(|| {
        let port = free_port();
        let cfg = format!("{}transport.tls.force = true\n", frps_config(port, true));
        (port, (), cfg)
    })
    .await;
    let tls = ClientTransportOptions {
        server_addr: "127.0.0.1".into(),
        server_port: port,
        ..Default::default()
    };
    let connector = Connector::new(tls.clone(), TokioNet::new()).unwrap();
    connector.open().await.unwrap();
    let mut control = connector.connect().await.unwrap();
    write_frame(&mut control, b'o', &login_json()).await;
    let (ty, _) = timeout(T, read_frame(&mut control)).await.unwrap();
    assert_eq!(ty, b'1');

    let plain = ClientTransportOptions { tls: None, ..tls };
    let connector = Connector::new(plain, TokioNet::new()).unwrap();
    connector.open().await.unwrap();
    let mut control = connector.connect().await.unwrap();
    write_frame(&mut control, b'o', &login_json()).await;
    let mut buf = [0u8; 9];
    let res = timeout(T, control.read(&mut buf)).await.unwrap();
    assert!(
        matches!(res, Ok(0) | Err(_)),
        "plaintext must be refused: {res:?}"
    );
    timeout(T, connector.closed()).await.unwrap();
}

/// Real frps's own TLS certificate (RSA, empty subject, no SAN) is accepted by our
/// non-verifying client, and a CA-verifying client rejects it.
#[tokio::test]
async fn real_frps_certificate_verification() {
    let (_frps, port, ()) = common::start_frps(|| {
        let port = free_port();
        (port, (), frps_config(port, true))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let ca_path = dir.path().join("ca.crt");
    std::fs::write(&ca_path, ca.cert.pem()).unwrap();
    let opts = ClientTransportOptions {
        server_addr: "127.0.0.1".into(),
        server_port: port,
        tls: Some(ClientTlsOptions {
            trusted_ca_file: Some(ca_path),
            ..Default::default()
        }),
        ..Default::default()
    };
    let connector = Connector::new(opts, TokioNet::new()).unwrap();
    let err = timeout(T, connector.open()).await.unwrap().unwrap_err();
    assert!(err.to_string().contains("TLS handshake"), "{err}");
}

/// Bytes moved each way through Go yamux in the proxy tests (beyond the 6 MiB window).
const BIG: usize = 8 * 1024 * 1024;

/// Our Connector (yamux client) ↔ real frps (Go yamux server): log in, register a tcp
/// proxy, serve a work connection and echo 8 MiB each way for a real TCP user of frps.
#[tokio::test]
async fn our_connector_proxies_mibs_through_real_frps() {
    let (frps, port, ()) = common::start_frps(|| {
        let port = free_port();
        (port, (), frps_config(port, true))
    })
    .await;
    let remote_port = free_port();
    let opts = ClientTransportOptions {
        server_addr: "127.0.0.1".into(),
        server_port: port,
        ..Default::default()
    };
    let connector = Connector::new(opts, TokioNet::new()).unwrap();
    connector.open().await.unwrap();
    let mut control = connector.connect().await.unwrap();
    write_frame(&mut control, b'o', &login_json()).await;
    let (ty, resp) = timeout(T, read_frame(&mut control)).await.unwrap();
    assert_eq!(ty, b'1', "{resp}");
    let run_id = resp["run_id"].as_str().unwrap().to_owned();

    common::register_big_proxy(&mut control, remote_port, || frps.output()).await;
    let mut work = connector.connect().await.unwrap();
    write_frame(&mut work, b'w', &serde_json::json!({ "run_id": run_id })).await;

    let user = tokio::net::TcpStream::connect(("127.0.0.1", remote_port))
        .await
        .unwrap();
    let (ty, start) = timeout(T, read_frame(&mut work)).await.unwrap();
    assert_eq!(ty, b's', "{start}");
    assert_eq!(start["proxy_name"], "big");
    let echo = tokio::spawn(common::echo(work));
    timeout(Duration::from_secs(60), common::check_echo(user, BIG))
        .await
        .expect("8 MiB echo through frps timed out");
    echo.abort();
    connector.close();
}

/// Real frpc (Go yamux client) ↔ our ServerListener (yamux server): we play frps just
/// enough to start frpc's tcp proxy, then push 8 MiB each way through a work
/// connection that frpc joins with a local echo service.
#[tokio::test]
async fn real_frpc_proxies_mibs_through_our_listener() {
    let echo_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local_port = echo_listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = echo_listener.accept().await {
            tokio::spawn(common::echo(s));
        }
    });
    let opts = ServerTransportOptions {
        bind_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        bind_port: 0,
        ..Default::default()
    };
    let mut listener = ServerListener::bind(opts, TokioNet::new()).await.unwrap();
    let config = frpc_config(listener.local_addr().port(), MODES[0])
        .replace("localPort = 1", &format!("localPort = {local_port}"));
    let frpc = Child::spawn("frpc", &config);
    let (mut control, _) = timeout(T, listener.accept()).await.unwrap().unwrap();
    let (ty, _) = timeout(T, read_frame(&mut control)).await.unwrap();
    assert_eq!(ty, b'o');
    let run_id = "0123456789abcdef";
    write_frame(
        &mut control,
        b'1',
        &serde_json::json!({"version": "0.65.0", "run_id": run_id}),
    )
    .await;
    let mut enc = common::EncWriter::new();
    let mut dec = common::DecReader::new();
    let (ty, new_proxy) = timeout(T, dec.read_frame(&mut control))
        .await
        .unwrap_or_else(|_| panic!("no NewProxy; frpc said:\n{}", frpc.output()));
    assert_eq!(ty, b'p', "{new_proxy}");
    assert_eq!(new_proxy["proxy_name"], "t1");
    let resp = serde_json::json!({"proxy_name": "t1", "remote_addr": ":6000"});
    enc.write_frame(&mut control, b'2', &resp).await;
    enc.write_frame(&mut control, b'r', &serde_json::json!({}))
        .await;

    let (mut work, _) = timeout(T, listener.accept()).await.unwrap().unwrap();
    let (ty, nwc) = timeout(T, read_frame(&mut work)).await.unwrap();
    assert_eq!(ty, b'w', "{nwc}");
    assert_eq!(nwc["run_id"], run_id);
    // Let frpc's control loop mark the proxy running before the work conn starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = serde_json::json!({
        "proxy_name": "t1", "src_addr": "127.0.0.1", "dst_addr": "127.0.0.1",
        "src_port": 50000, "dst_port": 6000,
    });
    write_frame(&mut work, b's', &start).await;
    timeout(Duration::from_secs(60), common::check_echo(work, BIG))
        .await
        .unwrap_or_else(|_| panic!("8 MiB echo through frpc timed out:\n{}", frpc.output()));
    drop(control);
}

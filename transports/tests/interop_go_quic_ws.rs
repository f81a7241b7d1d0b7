//! QUIC, websocket and wss interop with the real Go frp 0.65.0 binaries (they must be
//! present: these tests fail, not skip, when `$FRP_BIN_DIR` /
//! `<workspace>/.cache/frp-0.65.0` lacks them).
//!
//! * real frpc (`quic`, `websocket`, `wss` through a TLS-terminating proxy) → our
//!   [`ServerListener`]: the first logical connection carries a Login; for quic and
//!   websocket, MiBs go through a work connection both ways.
//! * our [`Connector`] (`Quic`, `Websocket`, `Wss` through the proxy) → real frps: a
//!   hand-built Login gets a LoginResp; for quic and websocket, MiBs go through a tcp
//!   proxy of real frps both ways.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::{free_port, free_udp_port, login_json, read_frame, write_frame, Child};
use tokio::io::AsyncReadExt;
use tokio::time::timeout;
use transports::{
    ClientTlsOptions, ClientTransportOptions, Connector, Protocol, ServerListener,
    ServerTransportOptions, TokioNet,
};

const T: Duration = Duration::from_secs(20);
/// Bytes moved each way in the proxy tests (beyond the 6 MiB stream windows).
const BIG: usize = 8 * 1024 * 1024;

#[derive(Clone, Copy, Debug)]
struct Mode {
    tcp_mux: bool,
    tls: bool,
    head_byte: bool,
}

const WS_MODES: [Mode; 4] = [
    Mode {
        tcp_mux: true,
        tls: true,
        head_byte: false,
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
const DEFAULT_MODE: Mode = WS_MODES[0];

fn frpc_config(protocol: &str, port: u16, m: Mode, local_port: u16) -> String {
    format!(
        r#"
serverAddr = "127.0.0.1"
serverPort = {port}
loginFailExit = false
log.level = "debug"
transport.protocol = "{protocol}"
transport.tcpMux = {mux}
transport.tls.enable = {tls}
transport.tls.disableCustomTLSFirstByte = {disable}

[[proxies]]
name = "t1"
type = "tcp"
localPort = {local_port}
remotePort = 0
"#,
        mux = m.tcp_mux,
        tls = m.tls,
        disable = !m.head_byte,
    )
}

fn listener_opts(m: Mode, quic_bind_port: u16) -> ServerTransportOptions {
    ServerTransportOptions {
        bind_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        bind_port: 0,
        tcp_mux: m.tcp_mux,
        quic_bind_port,
        ..Default::default()
    }
}

/// Waits for real frpc's first logical connection and checks it carries a Login.
async fn expect_login(listener: &mut ServerListener, frpc: &Child, what: &str) {
    let (mut conn, peer) = timeout(T, listener.accept())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{what}: no logical connection; frpc said:\n{}",
                frpc.output()
            )
        })
        .unwrap();
    assert!(peer.ip().is_loopback());
    let (ty, login) = timeout(T, read_frame(&mut conn)).await.unwrap();
    assert_eq!(ty, b'o', "{what}: first frame must be Login");
    assert_eq!(login["version"], "0.65.0", "{login}");
    assert_eq!(login["pool_count"], 1, "{login}");
}

#[tokio::test]
async fn real_frpc_quic_logs_in_to_our_listener() {
    let mut listener = ServerListener::bind(
        listener_opts(DEFAULT_MODE, free_udp_port()),
        TokioNet::new(),
    )
    .await
    .unwrap();
    let port = listener.quic_local_addr().unwrap().port();
    let frpc = Child::spawn("frpc", &frpc_config("quic", port, DEFAULT_MODE, 1));
    expect_login(&mut listener, &frpc, "quic").await;
}

#[tokio::test]
async fn real_frpc_websocket_modes_log_in_to_our_listener() {
    for m in WS_MODES {
        let mut listener = ServerListener::bind(listener_opts(m, 0), TokioNet::new())
            .await
            .unwrap();
        let port = listener.local_addr().port();
        let frpc = Child::spawn("frpc", &frpc_config("websocket", port, m, 1));
        expect_login(&mut listener, &frpc, &format!("websocket {m:?}")).await;
    }
}

/// Real frpc `wss` → our TLS-terminating proxy → our listener (plain ws behind it).
#[tokio::test]
async fn real_frpc_wss_through_proxy_logs_in_to_our_listener() {
    let pki = common::make_pki();
    for m in [DEFAULT_MODE, WS_MODES[3]] {
        let mut listener = ServerListener::bind(listener_opts(m, 0), TokioNet::new())
            .await
            .unwrap();
        let proxy = common::spawn_tls_terminator(&pki, listener.local_addr().port()).await;
        let frpc = Child::spawn("frpc", &frpc_config("wss", proxy, m, 1));
        expect_login(&mut listener, &frpc, &format!("wss {m:?}")).await;
    }
}

/// We play frps just enough to start real frpc's tcp proxy, then push [`BIG`] bytes
/// each way through a work connection that frpc joins with a local echo service.
async fn real_frpc_proxies_mibs_through_our_listener(protocol: &str) {
    let echo_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local_port = echo_listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = echo_listener.accept().await {
            tokio::spawn(common::echo(s));
        }
    });
    let quic = if protocol == "quic" {
        free_udp_port()
    } else {
        0
    };
    let mut listener = ServerListener::bind(listener_opts(DEFAULT_MODE, quic), TokioNet::new())
        .await
        .unwrap();
    let port = match listener.quic_local_addr() {
        Some(a) => a.port(),
        None => listener.local_addr().port(),
    };
    let frpc = Child::spawn(
        "frpc",
        &frpc_config(protocol, port, DEFAULT_MODE, local_port),
    );
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
        .unwrap_or_else(|_| panic!("{protocol}: no NewProxy; frpc said:\n{}", frpc.output()));
    assert_eq!(ty, b'p', "{new_proxy}");
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
        .unwrap_or_else(|_| {
            panic!(
                "{protocol}: echo through frpc timed out:\n{}",
                frpc.output()
            )
        });
    drop(control);
}

#[tokio::test]
async fn real_frpc_quic_proxies_mibs_through_our_listener() {
    real_frpc_proxies_mibs_through_our_listener("quic").await;
}

#[tokio::test]
async fn real_frpc_websocket_proxies_mibs_through_our_listener() {
    real_frpc_proxies_mibs_through_our_listener("websocket").await;
}

fn frps_config(port: u16, quic_port: u16, tcp_mux: bool) -> String {
    format!(
        r#"
bindAddr = "127.0.0.1"
bindPort = {port}
quicBindPort = {quic_port}
transport.tcpMux = {tcp_mux}
log.level = "debug"
"#
    )
}

fn client_opts(protocol: Protocol, port: u16, m: Mode) -> ClientTransportOptions {
    ClientTransportOptions {
        server_addr: "127.0.0.1".into(),
        server_port: port,
        protocol,
        tls: m.tls.then(|| ClientTlsOptions {
            disable_custom_first_byte: !m.head_byte,
            ..Default::default()
        }),
        tcp_mux: m.tcp_mux,
        ..Default::default()
    }
}

/// Logs in with a hand-built Login, checks the LoginResp and that a second logical
/// connection is independent; returns the run id and the control connection.
async fn login(connector: &Connector<TokioNet>, frps: &Child, what: &str) -> String {
    timeout(T, connector.open())
        .await
        .unwrap_or_else(|_| panic!("{what}: open timed out"))
        .unwrap_or_else(|e| panic!("{what}: {e}; frps said:\n{}", frps.output()));
    let mut control = connector.connect().await.unwrap();
    write_frame(&mut control, b'o', &login_json()).await;
    let (ty, resp) = timeout(T, read_frame(&mut control))
        .await
        .unwrap_or_else(|_| panic!("{what}: no LoginResp; frps said:\n{}", frps.output()));
    assert_eq!(ty, b'1', "{what}: {resp}");
    assert!(resp.get("error").is_none(), "{resp}");
    let run_id = resp["run_id"].as_str().expect("run_id").to_owned();
    // A NewWorkConn with an unknown run_id is closed by frps without a reply.
    let mut work = connector.connect().await.unwrap();
    write_frame(
        &mut work,
        b'w',
        &serde_json::json!({"run_id": "0000000000000000"}),
    )
    .await;
    let mut buf = [0u8; 16];
    let n = timeout(T, work.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(
        n, 0,
        "{what}: frps must close a work conn with an unknown run_id"
    );
    // The control connection is alive: IV + encrypted ReqWorkConn follow.
    let mut iv_and_more = [0u8; 17];
    timeout(T, control.read_exact(&mut iv_and_more))
        .await
        .unwrap_or_else(|_| panic!("{what}: control went quiet"))
        .unwrap();
    run_id
}

#[tokio::test]
async fn our_quic_connector_logs_in_to_real_frps() {
    let (frps, _port, quic_port) = common::start_frps(|| {
        let (port, quic_port) = (free_port(), free_udp_port());
        (port, quic_port, frps_config(port, quic_port, true))
    })
    .await;
    for tls in [true, false] {
        let m = Mode {
            tls,
            ..DEFAULT_MODE
        };
        let connector =
            Connector::new(client_opts(Protocol::Quic, quic_port, m), TokioNet::new()).unwrap();
        login(&connector, &frps, &format!("quic tls={tls}")).await;
        connector.close();
    }
}

#[tokio::test]
async fn our_websocket_connector_logs_in_to_real_frps() {
    for m in WS_MODES {
        let (frps, port, ()) = common::start_frps(|| {
            let port = free_port();
            (port, (), frps_config(port, 0, m.tcp_mux))
        })
        .await;
        let connector =
            Connector::new(client_opts(Protocol::Websocket, port, m), TokioNet::new()).unwrap();
        login(&connector, &frps, &format!("websocket {m:?}")).await;
        connector.close();
    }
}

#[tokio::test]
async fn our_wss_connector_logs_in_to_real_frps_through_proxy() {
    let pki = common::make_pki();
    for m in [DEFAULT_MODE, WS_MODES[3]] {
        let (frps, port, ()) = common::start_frps(|| {
            let port = free_port();
            (port, (), frps_config(port, 0, m.tcp_mux))
        })
        .await;
        let proxy = common::spawn_tls_terminator(&pki, port).await;
        let opts = ClientTransportOptions {
            tls: Some(ClientTlsOptions {
                trusted_ca_file: Some(pki.ca.clone()),
                server_name: Some("localhost".into()),
                ..Default::default()
            }),
            ..client_opts(Protocol::Wss, proxy, m)
        };
        let connector = Connector::new(opts, TokioNet::new()).unwrap();
        login(&connector, &frps, &format!("wss {m:?}")).await;
        connector.close();
    }
}

/// Our Connector → real frps: register a tcp proxy, serve a work connection and echo
/// [`BIG`] bytes each way for a real TCP user of frps.
async fn our_connector_proxies_mibs_through_real_frps(protocol: Protocol) {
    let (frps, port, quic_port) = common::start_frps(|| {
        let (port, quic_port) = (free_port(), free_udp_port());
        (port, quic_port, frps_config(port, quic_port, true))
    })
    .await;
    let remote_port = free_port();
    let server_port = if protocol == Protocol::Quic {
        quic_port
    } else {
        port
    };
    let connector = Connector::new(
        client_opts(protocol, server_port, DEFAULT_MODE),
        TokioNet::new(),
    )
    .unwrap();
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
    let echo = tokio::spawn(common::echo(work));
    timeout(Duration::from_secs(60), common::check_echo(user, BIG))
        .await
        .unwrap_or_else(|_| panic!("{protocol:?}: echo through frps timed out"));
    echo.abort();
    connector.close();
}

#[tokio::test]
async fn our_quic_connector_proxies_mibs_through_real_frps() {
    our_connector_proxies_mibs_through_real_frps(Protocol::Quic).await;
}

#[tokio::test]
async fn our_websocket_connector_proxies_mibs_through_real_frps() {
    our_connector_proxies_mibs_through_real_frps(Protocol::Websocket).await;
}

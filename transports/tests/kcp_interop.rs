//! KCP interop with the real Go frp 0.65.0 binaries (kcp-go v5.6.13). These tests fail,
//! not skip, when `$FRP_BIN_DIR` / `<workspace>/.cache/frp-0.65.0` lacks the binaries.
//!
//! * real frpc (`transport.protocol = "kcp"`, TLS off, tcpMux on) → our [`KcpListener`]:
//!   the stream starts with Go yamux's SYN window update and a Login; then a tcp proxy
//!   moves MiBs both ways through a work connection on the same KCP session.
//! * our [`dial`] → real frps `kcpBindPort`: yamux over KCP, a Login gets a LoginResp,
//!   and a tcp proxy moves MiBs both ways for a real TCP user of frps.

mod common;

use std::time::Duration;

use common::{login_json, read_frame, write_frame, Child};
use tokio::io::AsyncReadExt;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use transports::kcp::{dial, KcpConfig, KcpListener};
use transports::mux::{self, MuxConfig, Role};
use transports::TokioNet;

const T: Duration = Duration::from_secs(20);
/// Bytes echoed each way through the proxies.
const BIG: usize = 3 * 1024 * 1024;

/// A port free for both TCP and UDP on 127.0.0.1 (frps's bindPort and kcpBindPort).
fn free_tcp_udp_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn frpc_kcp_config(port: u16, local_port: u16) -> String {
    format!(
        r#"
serverAddr = "127.0.0.1"
serverPort = {port}
loginFailExit = false
log.level = "debug"
transport.protocol = "kcp"
transport.tls.enable = false
transport.tcpMux = true

[[proxies]]
name = "t1"
type = "tcp"
localIP = "127.0.0.1"
localPort = {local_port}
remotePort = 0
"#
    )
}

async fn our_listener() -> KcpListener {
    KcpListener::bind(
        &TokioNet::new(),
        "127.0.0.1:0".parse().unwrap(),
        KcpConfig::frp_server(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn real_frpc_sends_yamux_syn_and_login_over_kcp() {
    let mut listener = our_listener().await;
    let frpc = Child::spawn("frpc", &frpc_kcp_config(listener.local_addr().port(), 1));
    let (mut kcp, peer) = timeout(T, listener.accept())
        .await
        .unwrap_or_else(|_| panic!("no KCP session; frpc said:\n{}", frpc.output()))
        .unwrap();
    assert!(peer.ip().is_loopback());
    // Go yamux: window update (type 1) with SYN (flag 1) for stream 1.
    let mut hdr = [0u8; 12];
    timeout(T, kcp.read_exact(&mut hdr)).await.unwrap().unwrap();
    assert_eq!(&hdr[..8], &[0, 1, 0, 1, 0, 0, 0, 1], "{hdr:02x?}");
    // Then a data frame on stream 1 carrying the Login message.
    timeout(T, kcp.read_exact(&mut hdr)).await.unwrap().unwrap();
    assert_eq!(&hdr[..8], &[0, 0, 0, 0, 0, 0, 0, 1], "{hdr:02x?}");
    let (ty, login) = timeout(T, read_frame(&mut kcp)).await.unwrap();
    assert_eq!(ty, b'o', "first frame must be Login: {login}");
    assert_eq!(login["version"], "0.65.0");
}

/// We play frps over our KCP listener and yamux: log frpc in, start its tcp proxy and
/// echo MiBs through a work connection that frpc joins with a local echo service.
#[tokio::test]
async fn real_frpc_proxies_mibs_over_our_kcp_listener() {
    let echo_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local_port = echo_listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = echo_listener.accept().await {
            tokio::spawn(common::echo(s));
        }
    });
    let mut listener = our_listener().await;
    let frpc = Child::spawn(
        "frpc",
        &frpc_kcp_config(listener.local_addr().port(), local_port),
    );
    let (kcp, _) = timeout(T, listener.accept()).await.unwrap().unwrap();
    let cancel = CancellationToken::new();
    let (_mux, mut incoming) = mux::spawn(
        kcp,
        Role::Server,
        MuxConfig::frp(Duration::from_secs(30)),
        &cancel,
    );
    let mut control = timeout(T, incoming.accept()).await.unwrap().unwrap();
    let (ty, _) = timeout(T, read_frame(&mut control)).await.unwrap();
    assert_eq!(ty, b'o');
    let run_id = "0123456789abcdef";
    let resp = serde_json::json!({"version": "0.65.0", "run_id": run_id});
    write_frame(&mut control, b'1', &resp).await;
    let mut enc = common::EncWriter::new();
    let mut dec = common::DecReader::new();
    let (ty, new_proxy) = timeout(T, dec.read_frame(&mut control))
        .await
        .unwrap_or_else(|_| panic!("no NewProxy; frpc said:\n{}", frpc.output()));
    assert_eq!(ty, b'p', "{new_proxy}");
    let resp = serde_json::json!({"proxy_name": "t1", "remote_addr": ":6000"});
    enc.write_frame(&mut control, b'2', &resp).await;
    enc.write_frame(&mut control, b'r', &serde_json::json!({}))
        .await;

    let mut work = timeout(T, incoming.accept()).await.unwrap().unwrap();
    let (ty, nwc) = timeout(T, read_frame(&mut work)).await.unwrap();
    assert_eq!(ty, b'w', "{nwc}");
    assert_eq!(nwc["run_id"], run_id);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = serde_json::json!({
        "proxy_name": "t1", "src_addr": "127.0.0.1", "dst_addr": "127.0.0.1",
        "src_port": 50000, "dst_port": 6000,
    });
    write_frame(&mut work, b's', &start).await;
    timeout(Duration::from_secs(90), common::check_echo(work, BIG))
        .await
        .unwrap_or_else(|_| panic!("echo through frpc over KCP timed out:\n{}", frpc.output()));
    drop(control);
    cancel.cancel();
}

fn frps_kcp_config(port: u16) -> String {
    format!(
        r#"
bindAddr = "127.0.0.1"
bindPort = {port}
kcpBindPort = {port}
log.level = "debug"
"#
    )
}

/// Our dialer (frp client tuning) + our yamux client → real frps over KCP: Login gets a
/// LoginResp, then a tcp proxy echoes MiBs for a real TCP user of frps.
#[tokio::test]
async fn our_kcp_dial_logs_in_and_proxies_through_real_frps() {
    let (frps, port, ()) = common::start_frps(|| {
        let port = free_tcp_udp_port();
        (port, (), frps_kcp_config(port))
    })
    .await;
    let remote_port = common::free_port();
    let kcp = dial(&TokioNet::new(), "127.0.0.1", port, KcpConfig::frp_client())
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let (mux, _incoming) = mux::spawn(
        kcp,
        Role::Client,
        MuxConfig::frp(Duration::from_secs(30)),
        &cancel,
    );
    let mut control = mux.open_stream().unwrap();
    write_frame(&mut control, b'o', &login_json()).await;
    let (ty, resp) = timeout(T, read_frame(&mut control))
        .await
        .unwrap_or_else(|_| panic!("no LoginResp over KCP; frps said:\n{}", frps.output()));
    assert_eq!(ty, b'1', "{resp}");
    assert!(resp.get("error").is_none(), "{resp}");
    let run_id = resp["run_id"].as_str().expect("run_id").to_owned();

    common::register_big_proxy(&mut control, remote_port, || frps.output()).await;
    let mut work = mux.open_stream().unwrap();
    write_frame(&mut work, b'w', &serde_json::json!({ "run_id": run_id })).await;
    let user = tokio::net::TcpStream::connect(("127.0.0.1", remote_port))
        .await
        .unwrap();
    let (ty, start) = timeout(T, read_frame(&mut work)).await.unwrap();
    assert_eq!(ty, b's', "{start}");
    let echo = tokio::spawn(common::echo(work));
    timeout(Duration::from_secs(90), common::check_echo(user, BIG))
        .await
        .unwrap_or_else(|_| panic!("echo through frps over KCP timed out:\n{}", frps.output()));
    echo.abort();
    cancel.cancel();
}

/// The fast tuning (raw KCP, big windows) also talks to kcp-go.
#[tokio::test]
async fn our_fast_kcp_dial_logs_in_to_real_frps() {
    let (frps, port, ()) = common::start_frps(|| {
        let port = free_tcp_udp_port();
        (port, (), frps_kcp_config(port))
    })
    .await;
    let kcp = dial(&TokioNet::new(), "127.0.0.1", port, KcpConfig::fast())
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let (mux, _incoming) = mux::spawn(
        kcp,
        Role::Client,
        MuxConfig::frp(Duration::from_secs(30)),
        &cancel,
    );
    let mut control = mux.open_stream().unwrap();
    write_frame(&mut control, b'o', &login_json()).await;
    let (ty, resp) = timeout(T, read_frame(&mut control))
        .await
        .unwrap_or_else(|_| panic!("no LoginResp; frps said:\n{}", frps.output()));
    assert_eq!(ty, b'1', "{resp}");
    // The IV and an encrypted ReqWorkConn follow.
    let mut more = [0u8; 17];
    timeout(T, control.read_exact(&mut more))
        .await
        .unwrap()
        .unwrap();
    cancel.cancel();
}

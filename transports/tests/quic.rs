//! QUIC transport, ours ↔ ours on 127.0.0.1: bulk data, many streams, stream close,
//! mutual TLS, certificate errors, an unreachable port, every congestion controller.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::{echo_roundtrip, make_pki, pattern, spawn_echo_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use transports::{
    ClientTlsOptions, ClientTransportOptions, Congestion, Connector, Net, Protocol, QuicOptions,
    ServerListener, ServerTlsOptions, ServerTransportOptions, TokioNet, TransportError,
};

const T: Duration = Duration::from_secs(60);

async fn quic_listener(tls: ServerTlsOptions, quic: QuicOptions) -> ServerListener {
    let opts = ServerTransportOptions {
        bind_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        bind_port: 0,
        quic_bind_port: common::free_udp_port(),
        tls,
        quic,
        ..Default::default()
    };
    ServerListener::bind(opts, TokioNet::new()).await.unwrap()
}

fn quic_client(port: u16, tls: Option<ClientTlsOptions>, quic: QuicOptions) -> Connector<TokioNet> {
    let opts = ClientTransportOptions {
        server_addr: "127.0.0.1".into(),
        server_port: port,
        protocol: Protocol::Quic,
        tls,
        quic,
        dial_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    Connector::new(opts, TokioNet::new()).unwrap()
}

#[tokio::test]
async fn bulk_data_and_many_concurrent_streams() {
    let listener = quic_listener(Default::default(), Default::default()).await;
    let port = listener.quic_local_addr().unwrap().port();
    let _server = spawn_echo_server(listener);
    let connector = quic_client(port, Some(Default::default()), Default::default());
    timeout(T, connector.open()).await.unwrap().unwrap();
    // 8 MiB each way on one stream (beyond the 6 MiB stream window), plus 24 streams.
    let mut tasks = vec![tokio::spawn(echo_roundtrip(
        connector.connect().await.unwrap(),
        pattern(8 * 1024 * 1024, 9),
    ))];
    for i in 0..24u8 {
        let conn = connector.connect().await.unwrap();
        tasks.push(tokio::spawn(echo_roundtrip(conn, pattern(200_000, i))));
    }
    for t in tasks {
        timeout(T, t).await.unwrap().unwrap();
    }
    connector.close();
    timeout(T, connector.closed()).await.unwrap();
    assert!(connector.connect().await.is_err());
}

#[tokio::test]
async fn streams_are_logical_connections_with_fin_semantics() {
    let mut listener = quic_listener(Default::default(), Default::default()).await;
    let port = listener.quic_local_addr().unwrap().port();
    // TLS disabled in frpc still means QUIC's own TLS (frp builds an insecure config).
    let connector = quic_client(port, None, Default::default());
    connector.open().await.unwrap();
    let mut a = connector.connect().await.unwrap();
    a.write_all(b"first").await.unwrap();
    a.shutdown().await.unwrap();
    let (mut sa, peer) = timeout(T, listener.accept()).await.unwrap().unwrap();
    assert!(peer.ip().is_loopback());
    let mut got = Vec::new();
    timeout(T, sa.read_to_end(&mut got)).await.unwrap().unwrap();
    assert_eq!(got, b"first", "FIN after the data");
    // The server can still answer on a half-closed stream, then drop it (FIN).
    sa.write_all(b"reply").await.unwrap();
    drop(sa);
    let mut got = Vec::new();
    timeout(T, a.read_to_end(&mut got)).await.unwrap().unwrap();
    assert_eq!(got, b"reply");

    // A second logical connection from the same peer.
    let mut b = connector.connect().await.unwrap();
    b.write_all(b"second").await.unwrap();
    let (mut sb, peer_b) = timeout(T, listener.accept()).await.unwrap().unwrap();
    assert_eq!(peer_b, peer, "same QUIC connection, same UDP peer");
    let mut buf = [0u8; 6];
    sb.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"second");

    // Closing the listener closes the connection; the client notices.
    drop(listener);
    timeout(T, connector.closed()).await.unwrap();
}

#[tokio::test]
async fn every_congestion_controller_moves_data() {
    for congestion in [Congestion::Bbr, Congestion::Cubic, Congestion::NewReno] {
        let quic = QuicOptions {
            congestion,
            ..Default::default()
        };
        let listener = quic_listener(Default::default(), quic).await;
        let port = listener.quic_local_addr().unwrap().port();
        let _server = spawn_echo_server(listener);
        let connector = quic_client(port, None, quic);
        connector.open().await.unwrap();
        let conn = connector.connect().await.unwrap();
        timeout(T, echo_roundtrip(conn, pattern(1024 * 1024, 1)))
            .await
            .unwrap_or_else(|_| panic!("{congestion:?} stalled"));
    }
}

/// The server limits concurrent streams (`maxIncomingStreams`); extra ones wait.
#[tokio::test]
async fn max_incoming_streams_is_enforced() {
    let quic = QuicOptions {
        max_incoming_streams: 2,
        ..Default::default()
    };
    let mut listener = quic_listener(Default::default(), quic).await;
    let port = listener.quic_local_addr().unwrap().port();
    let connector = quic_client(port, None, Default::default());
    connector.open().await.unwrap();
    let mut s1 = connector.connect().await.unwrap();
    let mut s2 = connector.connect().await.unwrap();
    s1.write_all(b"1").await.unwrap();
    s2.write_all(b"2").await.unwrap();
    let third = timeout(Duration::from_millis(500), connector.connect()).await;
    assert!(third.is_err(), "a third stream must wait for the limit");
    let (a, _) = listener.accept().await.unwrap();
    drop(a);
    drop(s1);
    let mut s3 = timeout(T, connector.connect()).await.unwrap().unwrap();
    s3.write_all(b"3").await.unwrap();
}

#[tokio::test]
async fn mutual_tls_wrong_ca_and_wrong_name() {
    let pki = make_pki();
    let other = make_pki();
    let server_tls = ServerTlsOptions {
        cert_file: Some(pki.server_cert.clone()),
        key_file: Some(pki.server_key.clone()),
        trusted_ca_file: Some(pki.ca.clone()),
        ..Default::default()
    };
    let listener = quic_listener(server_tls, Default::default()).await;
    let port = listener.quic_local_addr().unwrap().port();
    let _server = spawn_echo_server(listener);
    let good = ClientTlsOptions {
        cert_file: Some(pki.client_cert.clone()),
        key_file: Some(pki.client_key.clone()),
        trusted_ca_file: Some(pki.ca.clone()),
        server_name: Some("localhost".into()),
        ..Default::default()
    };
    let connector = quic_client(port, Some(good.clone()), Default::default());
    connector.open().await.unwrap();
    echo_roundtrip(connector.connect().await.unwrap(), pattern(10_000, 2)).await;

    // The client trusts another CA: the server's certificate is refused.
    let wrong_ca = ClientTlsOptions {
        trusted_ca_file: Some(other.ca.clone()),
        ..good.clone()
    };
    let err = quic_client(port, Some(wrong_ca), Default::default())
        .open()
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, TransportError::Quic { .. }), "{err:?}");
    assert!(
        msg.starts_with(&format!("quic 127.0.0.1:{port}: handshake failed")),
        "{msg}"
    );
    assert!(msg.contains("certificate"), "{msg}");

    // A name the certificate does not carry.
    let wrong_name = ClientTlsOptions {
        server_name: Some("elsewhere.example".into()),
        ..good.clone()
    };
    let err = quic_client(port, Some(wrong_name), Default::default())
        .open()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");

    // No client certificate: the server refuses (during or right after the handshake).
    let no_cert = ClientTlsOptions {
        cert_file: None,
        key_file: None,
        ..good.clone()
    };
    let connector = quic_client(port, Some(no_cert), Default::default());
    let refused = match connector.open().await {
        Err(_) => true,
        Ok(()) => {
            let mut conn = connector.connect().await.unwrap();
            let _ = conn.write_all(b"hello").await;
            let mut buf = [0u8; 5];
            !matches!(timeout(T, conn.read_exact(&mut buf)).await, Ok(Ok(_)))
        }
    };
    assert!(refused, "a client without certificate must be refused");
}

#[tokio::test]
async fn unreachable_port_fails_within_the_dial_timeout() {
    let port = common::free_udp_port();
    let opts = ClientTransportOptions {
        server_addr: "127.0.0.1".into(),
        server_port: port,
        protocol: Protocol::Quic,
        dial_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let connector = Connector::new(opts, TokioNet::new()).unwrap();
    let started = tokio::time::Instant::now();
    let err = timeout(T, connector.open()).await.unwrap().unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("quic 127.0.0.1:{port}: ")) && msg.contains("timed out"),
        "{msg}"
    );
    assert!(matches!(
        connector.connect().await,
        Err(TransportError::Closed)
    ));
}

#[tokio::test]
async fn tcp_still_works_next_to_quic() {
    let listener = quic_listener(Default::default(), Default::default()).await;
    let tcp_port = listener.local_addr().port();
    let _server = spawn_echo_server(listener);
    let opts = ClientTransportOptions {
        server_addr: "127.0.0.1".into(),
        server_port: tcp_port,
        ..Default::default()
    };
    let connector = Connector::new(opts, TokioNet::new()).unwrap();
    connector.open().await.unwrap();
    echo_roundtrip(connector.connect().await.unwrap(), pattern(50_000, 5)).await;
}

/// A [`Net`] whose UDP sockets are not OS sockets (like the simulator's).
#[derive(Clone)]
struct NoOsUdpNet;

struct FakeUdp(tokio::net::UdpSocket);

impl transports::DatagramSocket for FakeUdp {
    async fn send_to(&self, buf: &[u8], target: std::net::SocketAddr) -> std::io::Result<usize> {
        self.0.send_to(buf, target).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, std::net::SocketAddr)> {
        self.0.recv_from(buf).await
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.local_addr()
    }
}

impl Net for NoOsUdpNet {
    type Tcp = <TokioNet as Net>::Tcp;
    type Listener = <TokioNet as Net>::Listener;
    type Udp = FakeUdp;

    async fn connect_tcp(&self, host: &str, port: u16) -> std::io::Result<Self::Tcp> {
        TokioNet.connect_tcp(host, port).await
    }

    async fn bind_tcp(&self, addr: std::net::SocketAddr) -> std::io::Result<Self::Listener> {
        TokioNet.bind_tcp(addr).await
    }

    async fn bind_udp(&self, addr: std::net::SocketAddr) -> std::io::Result<Self::Udp> {
        Ok(FakeUdp(tokio::net::UdpSocket::bind(addr).await?))
    }
}

#[tokio::test]
async fn a_net_without_os_udp_sockets_gives_a_clear_error() {
    let opts = ClientTransportOptions {
        server_addr: "127.0.0.1".into(),
        server_port: 7000,
        protocol: Protocol::Quic,
        ..Default::default()
    };
    let err = Connector::new(opts, NoOsUdpNet)
        .unwrap()
        .open()
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("quic 127.0.0.1:7000: QUIC needs an OS UDP socket"),
        "{msg}"
    );
    let opts = ServerTransportOptions {
        bind_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        bind_port: 0,
        quic_bind_port: common::free_udp_port(),
        ..Default::default()
    };
    let err = ServerListener::bind(opts, NoOsUdpNet).await.unwrap_err();
    assert!(
        err.to_string().contains("QUIC needs an OS UDP socket"),
        "{err}"
    );
}

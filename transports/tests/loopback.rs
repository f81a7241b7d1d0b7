//! Our `Connector` against our `ServerListener` on 127.0.0.1, in every combination.

mod common;

use common::{echo, echo_roundtrip, make_pki, pattern, spawn_echo_server};

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use transports::{
    ClientTlsOptions, ClientTransportOptions, Connector, ServerListener, ServerTlsOptions,
    ServerTransportOptions, TokioNet, TransportError,
};

const T: Duration = Duration::from_secs(30);

fn server_opts(tcp_mux: bool, tls: ServerTlsOptions) -> ServerTransportOptions {
    ServerTransportOptions {
        bind_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        bind_port: 0,
        tls,
        tcp_mux,
        ..Default::default()
    }
}

fn client_opts(port: u16, tcp_mux: bool, tls: Option<ClientTlsOptions>) -> ClientTransportOptions {
    ClientTransportOptions {
        server_addr: "127.0.0.1".into(),
        server_port: port,
        tls,
        tcp_mux,
        ..Default::default()
    }
}

#[tokio::test]
async fn every_combination_roundtrips() {
    for tcp_mux in [true, false] {
        for (tls, head_byte) in [(false, false), (true, false), (true, true)] {
            let server_tls = ServerTlsOptions {
                force: tls,
                ..Default::default()
            };
            let listener = ServerListener::bind(server_opts(tcp_mux, server_tls), TokioNet::new())
                .await
                .unwrap();
            let port = listener.local_addr().port();
            let server = spawn_echo_server(listener);
            let client_tls = tls.then(|| ClientTlsOptions {
                disable_custom_first_byte: !head_byte,
                ..Default::default()
            });
            let connector =
                Connector::new(client_opts(port, tcp_mux, client_tls), TokioNet::new()).unwrap();
            connector.open().await.unwrap();
            let mut tasks = Vec::new();
            for i in 0..4u8 {
                let conn = connector.connect().await.unwrap();
                tasks.push(tokio::spawn(echo_roundtrip(conn, pattern(100_000, i))));
            }
            for t in tasks {
                t.await.unwrap();
            }
            connector.close();
            server.abort();
        }
    }
}

#[tokio::test]
async fn several_mib_each_way_and_many_streams_over_tls_mux() {
    let listener = ServerListener::bind(server_opts(true, Default::default()), TokioNet::new())
        .await
        .unwrap();
    let port = listener.local_addr().port();
    let _server = spawn_echo_server(listener);
    let connector = Connector::new(
        client_opts(port, true, Some(Default::default())),
        TokioNet::new(),
    )
    .unwrap();
    connector.open().await.unwrap();
    // 8 MiB each way on one stream (beyond the 6 MiB window), plus 24 concurrent streams.
    let mut tasks = vec![tokio::spawn(echo_roundtrip(
        connector.connect().await.unwrap(),
        pattern(8 * 1024 * 1024, 7),
    ))];
    for i in 0..24u8 {
        let conn = connector.connect().await.unwrap();
        tasks.push(tokio::spawn(echo_roundtrip(conn, pattern(300_000, i))));
    }
    for t in tasks {
        timeout(T, t).await.unwrap().unwrap();
    }
}

/// A stream whose reader stalls must not block the other streams of the session.
#[tokio::test]
async fn a_stalled_stream_does_not_block_others() {
    let mut listener = ServerListener::bind(server_opts(true, Default::default()), TokioNet::new())
        .await
        .unwrap();
    let port = listener.local_addr().port();
    let connector = Connector::new(client_opts(port, true, None), TokioNet::new()).unwrap();
    connector.open().await.unwrap();
    let mut stalled = connector.connect().await.unwrap();
    stalled.write_all(b"x").await.unwrap();
    let (mut stalled_server, _) = listener.accept().await.unwrap();
    // The server pushes a full window (6 MiB) that nobody reads on the client.
    let flood = tokio::spawn(async move {
        let chunk = vec![1u8; 64 * 1024];
        for _ in 0..96 {
            stalled_server.write_all(&chunk).await.unwrap();
        }
        stalled_server
    });
    let _flood_done = timeout(T, flood).await.unwrap().unwrap();
    // Another stream still works both ways.
    let mut other = connector.connect().await.unwrap();
    other.write_all(b"ping").await.unwrap();
    let (mut other_server, _) = timeout(T, listener.accept()).await.unwrap().unwrap();
    let mut buf = [0u8; 4];
    timeout(T, other_server.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    other_server.write_all(b"pong").await.unwrap();
    timeout(T, other.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"pong");
    // And the stalled data is all there.
    let mut first = [0u8; 1];
    stalled.read_exact(&mut first).await.unwrap();
}

/// frps must ACK a client-opened stream at once, before anybody accepts or writes on it
/// (Go frpc closes the whole session if a stream stays un-ACKed for 75 s).
#[tokio::test]
async fn server_acks_new_stream_before_any_data() {
    let listener = ServerListener::bind(server_opts(true, Default::default()), TokioNet::new())
        .await
        .unwrap();
    let mut raw = TcpStream::connect(listener.local_addr()).await.unwrap();
    // Exactly Go frpc's first frame: WindowUpdate, SYN, stream 1, delta 6 MiB - 256 KiB.
    raw.write_all(&[0, 1, 0, 1, 0, 0, 0, 1, 0, 0x5c, 0, 0])
        .await
        .unwrap();
    let mut reply = [0u8; 12];
    timeout(Duration::from_secs(5), raw.read_exact(&mut reply))
        .await
        .unwrap()
        .unwrap();
    // WindowUpdate, ACK, stream 1, same delta: byte-identical to Go frps (§6).
    assert_eq!(reply, [0, 1, 0, 2, 0, 0, 0, 1, 0, 0x5c, 0, 0]);
    drop(listener);
}

#[tokio::test]
async fn forced_tls_rejects_plaintext_and_bad_websocket_upgrades() {
    let tls = ServerTlsOptions {
        force: true,
        ..Default::default()
    };
    let listener = ServerListener::bind(server_opts(false, tls), TokioNet::new())
        .await
        .unwrap();
    let port = listener.local_addr().port();
    let _server = spawn_echo_server(listener);
    let mut raw = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    raw.write_all(b"o\0\0\0\0\0\0\0\x02{}").await.unwrap();
    let mut buf = [0u8; 16];
    let n = timeout(T, raw.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "connection must be closed without a reply");
    // A broken websocket upgrade gets an HTTP error, then the connection is closed.
    let mut raw = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    raw.write_all(b"GET /~!frp HTTP/1.1\r\n\r\n").await.unwrap();
    let mut reply = Vec::new();
    timeout(T, raw.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(reply.starts_with(b"HTTP/1.1 400 "), "{reply:?}");
    // A TLS client is still served.
    let connector = Connector::new(
        client_opts(port, false, Some(Default::default())),
        TokioNet::new(),
    )
    .unwrap();
    echo_roundtrip(connector.connect().await.unwrap(), pattern(1000, 1)).await;
}

/// Garbage, TLS junk and silent peers do not disturb a concurrent good session.
#[tokio::test]
async fn junk_connections_do_not_disturb_good_ones() {
    let opts = ServerTransportOptions {
        handshake_timeout: Duration::from_millis(500),
        ..server_opts(true, Default::default())
    };
    let listener = ServerListener::bind(opts, TokioNet::new()).await.unwrap();
    let port = listener.local_addr().port();
    let _server = spawn_echo_server(listener);
    let connector = Connector::new(
        client_opts(port, true, Some(Default::default())),
        TokioNet::new(),
    )
    .unwrap();
    connector.open().await.unwrap();
    let good = connector.connect().await.unwrap();

    let mut junk = Vec::new();
    for payload in [
        &[0x16, 3, 1, 0, 5, 0xde, 0xad, 0xbe, 0xef, 0][..], // broken ClientHello
        &[0x17, 0xff, 0xff, 0xff][..],                      // head byte + junk
        &[9; 40][..],                                       // yamux version 9
        &[][..],                                            // silent until timeout
    ] {
        let mut raw = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        raw.write_all(payload).await.unwrap();
        junk.push(raw);
    }
    echo_roundtrip(good, pattern(2 * 1024 * 1024, 3)).await;
    for mut raw in junk {
        let mut buf = [0u8; 64];
        // Each junk connection is closed (possibly after a TLS alert).
        let res = timeout(T, async {
            loop {
                match raw.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(res.is_ok(), "junk connection left open");
    }
    // New sessions still work.
    let connector = Connector::new(
        client_opts(port, true, Some(Default::default())),
        TokioNet::new(),
    )
    .unwrap();
    connector.open().await.unwrap();
    echo_roundtrip(connector.connect().await.unwrap(), pattern(1000, 4)).await;
}

async fn try_session(port: u16, tls: ClientTlsOptions) -> Result<(), TransportError> {
    let connector = Connector::new(client_opts(port, true, Some(tls)), TokioNet::new())?;
    connector.open().await?;
    let mut conn = connector.connect().await?;
    conn.write_all(b"hello")
        .await
        .map_err(|_| TransportError::Closed)?;
    let mut buf = [0u8; 5];
    match timeout(Duration::from_secs(5), conn.read_exact(&mut buf)).await {
        Ok(Ok(_)) if &buf == b"hello" => Ok(()),
        _ => Err(TransportError::Closed),
    }
}

#[tokio::test]
async fn mutual_tls_and_wrong_ca() {
    let pki = make_pki();
    let other = make_pki();
    let server_tls = ServerTlsOptions {
        force: false,
        cert_file: Some(pki.server_cert.clone()),
        key_file: Some(pki.server_key.clone()),
        trusted_ca_file: Some(pki.ca.clone()),
    };
    let listener = ServerListener::bind(server_opts(true, server_tls), TokioNet::new())
        .await
        .unwrap();
    let port = listener.local_addr().port();
    let _server = spawn_echo_server(listener);
    let good = ClientTlsOptions {
        cert_file: Some(pki.client_cert.clone()),
        key_file: Some(pki.client_key.clone()),
        trusted_ca_file: Some(pki.ca.clone()),
        ..Default::default()
    };
    try_session(port, good.clone()).await.unwrap();
    // Name from serverName instead of the IP.
    let named = ClientTlsOptions {
        server_name: Some("localhost".into()),
        ..good.clone()
    };
    try_session(port, named).await.unwrap();
    // Without verification of the server it also works (Go's InsecureSkipVerify).
    let insecure = ClientTlsOptions {
        trusted_ca_file: None,
        ..good.clone()
    };
    try_session(port, insecure).await.unwrap();

    // Client trusts a different CA: the server certificate is rejected.
    let wrong_ca = ClientTlsOptions {
        trusted_ca_file: Some(other.ca.clone()),
        ..good.clone()
    };
    let err = try_session(port, wrong_ca).await.unwrap_err();
    assert!(err.to_string().contains("TLS handshake"), "{err}");
    // Wrong server name.
    let wrong_name = ClientTlsOptions {
        server_name: Some("elsewhere.example".into()),
        ..good.clone()
    };
    assert!(try_session(port, wrong_name).await.is_err());
    // No client certificate, or one from another CA: refused by the server.
    let no_cert = ClientTlsOptions {
        cert_file: None,
        key_file: None,
        ..good.clone()
    };
    assert!(try_session(port, no_cert).await.is_err());
    let foreign_cert = ClientTlsOptions {
        cert_file: Some(other.client_cert.clone()),
        key_file: Some(other.client_key.clone()),
        ..good.clone()
    };
    assert!(try_session(port, foreign_cert).await.is_err());
    // Plaintext is refused: trustedCaFile implies force.
    let plain = Connector::new(client_opts(port, true, None), TokioNet::new()).unwrap();
    plain.open().await.unwrap();
    timeout(T, plain.closed()).await.unwrap();
}

#[tokio::test]
async fn connector_errors_name_the_address_and_mux_death_is_observable() {
    // Nothing listens on this port.
    let port = common::free_port();
    let connector = Connector::new(client_opts(port, true, None), TokioNet::new()).unwrap();
    let err = connector.open().await.unwrap_err();
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(matches!(
        connector.connect().await,
        Err(TransportError::Closed)
    ));

    let listener = ServerListener::bind(server_opts(true, Default::default()), TokioNet::new())
        .await
        .unwrap();
    let port = listener.local_addr().port();
    let connector = Connector::new(client_opts(port, true, None), TokioNet::new()).unwrap();
    connector.open().await.unwrap();
    let _conn = connector.connect().await.unwrap();
    // Closing the server side ends the session; the client learns it.
    drop(listener);
    timeout(T, connector.closed()).await.unwrap();
    assert!(connector.connect().await.is_err());
}

/// With `dispatch_here`, every logical connection (yamux streams, or whole connections without
/// tcpMux) is handed to the callback on the task of the connection it came in on, and none is
/// queued for `accept`.
#[tokio::test]
async fn dispatch_here_serves_logical_connections_without_accept() {
    for tcp_mux in [true, false] {
        let mut listener =
            ServerListener::bind(server_opts(tcp_mux, Default::default()), TokioNet::new())
                .await
                .unwrap();
        let port = listener.local_addr().port();
        let dispatched = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = dispatched.clone();
        listener.dispatch_here(Box::new(move |conn, peer| {
            assert!(peer.ip().is_loopback());
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(echo(conn));
        }));
        let connector = Connector::new(client_opts(port, tcp_mux, None), TokioNet::new()).unwrap();
        connector.open().await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..3u8 {
            let conn = connector.connect().await.unwrap();
            tasks.push(tokio::spawn(echo_roundtrip(conn, pattern(50_000, i))));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            dispatched.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "tcp_mux {tcp_mux}"
        );
        let queued = timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(
            queued.is_err(),
            "nothing is queued for accept (tcp_mux {tcp_mux})"
        );
        connector.close();
    }
}

//! websocket and wss transports, ours ↔ ours on 127.0.0.1, plus raw frames against our
//! listener (text frames with binary payloads, absurd lengths, a missing Origin).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::{echo_roundtrip, make_pki, pattern, spawn_echo_server, spawn_tls_terminator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use transports::{
    ClientTlsOptions, ClientTransportOptions, Connector, Protocol, ServerListener,
    ServerTlsOptions, ServerTransportOptions, TokioNet, TransportError,
};

const T: Duration = Duration::from_secs(60);

fn server_opts(tcp_mux: bool, tls: ServerTlsOptions) -> ServerTransportOptions {
    ServerTransportOptions {
        bind_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        bind_port: 0,
        tls,
        tcp_mux,
        handshake_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

fn client_opts(
    protocol: Protocol,
    port: u16,
    tcp_mux: bool,
    tls: Option<ClientTlsOptions>,
) -> ClientTransportOptions {
    ClientTransportOptions {
        server_addr: "127.0.0.1".into(),
        server_port: port,
        protocol,
        tls,
        tcp_mux,
        dial_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

#[tokio::test]
async fn websocket_every_combination_roundtrips() {
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
            let opts = client_opts(Protocol::Websocket, port, tcp_mux, client_tls);
            let connector = Connector::new(opts, TokioNet::new()).unwrap();
            connector.open().await.unwrap();
            let mut tasks = Vec::new();
            for i in 0..4u8 {
                let conn = connector.connect().await.unwrap();
                tasks.push(tokio::spawn(echo_roundtrip(conn, pattern(300_000, i))));
            }
            for t in tasks {
                timeout(T, t).await.unwrap().unwrap();
            }
            connector.close();
            server.abort();
        }
    }
}

#[tokio::test]
async fn websocket_mibs_each_way_over_tls_and_mux() {
    let listener = ServerListener::bind(server_opts(true, Default::default()), TokioNet::new())
        .await
        .unwrap();
    let port = listener.local_addr().port();
    let _server = spawn_echo_server(listener);
    let opts = client_opts(Protocol::Websocket, port, true, Some(Default::default()));
    let connector = Connector::new(opts, TokioNet::new()).unwrap();
    connector.open().await.unwrap();
    let mut tasks = vec![tokio::spawn(echo_roundtrip(
        connector.connect().await.unwrap(),
        pattern(8 * 1024 * 1024, 3),
    ))];
    for i in 0..16u8 {
        let conn = connector.connect().await.unwrap();
        tasks.push(tokio::spawn(echo_roundtrip(conn, pattern(100_000, i))));
    }
    for t in tasks {
        timeout(T, t).await.unwrap().unwrap();
    }
}

/// wss: our connector → TLS-terminating proxy → our listener (which sees plain ws).
#[tokio::test]
async fn wss_through_a_tls_terminating_proxy() {
    let pki = make_pki();
    let other = make_pki();
    for tcp_mux in [true, false] {
        let listener =
            ServerListener::bind(server_opts(tcp_mux, Default::default()), TokioNet::new())
                .await
                .unwrap();
        let proxy = spawn_tls_terminator(&pki, listener.local_addr().port()).await;
        let _server = spawn_echo_server(listener);
        let tls = ClientTlsOptions {
            trusted_ca_file: Some(pki.ca.clone()),
            server_name: Some("localhost".into()),
            ..Default::default()
        };
        let opts = client_opts(Protocol::Wss, proxy, tcp_mux, Some(tls.clone()));
        let connector = Connector::new(opts, TokioNet::new()).unwrap();
        connector.open().await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..4u8 {
            let conn = connector.connect().await.unwrap();
            tasks.push(tokio::spawn(echo_roundtrip(conn, pattern(1024 * 1024, i))));
        }
        for t in tasks {
            timeout(T, t).await.unwrap().unwrap();
        }
        // wss with TLS "disabled" still uses TLS (without verification), as frp does.
        let opts = client_opts(Protocol::Wss, proxy, tcp_mux, None);
        let connector = Connector::new(opts, TokioNet::new()).unwrap();
        connector.open().await.unwrap();
        echo_roundtrip(connector.connect().await.unwrap(), pattern(1000, 9)).await;

        // A certificate mismatch names the transport, the address and the cause.
        let wrong = ClientTlsOptions {
            trusted_ca_file: Some(other.ca.clone()),
            ..tls
        };
        let opts = client_opts(Protocol::Wss, proxy, true, Some(wrong));
        let err = Connector::new(opts, TokioNet::new())
            .unwrap()
            .open()
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("wss 127.0.0.1:{proxy}: TLS handshake: ")),
            "{msg}"
        );
    }
}

/// A server that answers every upgrade with `status`.
async fn refusing_server(status: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                .await;
        }
    });
    port
}

#[tokio::test]
async fn failed_upgrades_and_dials_name_the_transport() {
    let port = refusing_server("404 Not Found").await;
    let opts = client_opts(Protocol::Websocket, port, true, None);
    let err = Connector::new(opts, TokioNet::new())
        .unwrap()
        .open()
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Websocket { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("websocket 127.0.0.1:{port}: upgrade: upgrade refused: HTTP/1.1 404 Not Found")
    );
    let dead = common::free_port();
    let opts = client_opts(Protocol::Websocket, dead, false, None);
    let connector = Connector::new(opts, TokioNet::new()).unwrap();
    connector.open().await.unwrap();
    let err = connector.connect().await.err().unwrap();
    assert!(
        err.to_string()
            .starts_with(&format!("websocket 127.0.0.1:{dead}: dial: ")),
        "{err}"
    );
}

/// Go's x/net client request, by hand.
async fn raw_upgrade(port: u16, origin: bool) -> (TcpStream, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let origin = if origin {
        format!("Origin: http://127.0.0.1:{port}\r\n")
    } else {
        String::new()
    };
    let req = format!(
        "GET /~!frp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{origin}\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if timeout(T, s.read(&mut byte)).await.unwrap().unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    (s, String::from_utf8(head).unwrap())
}

fn masked_frame(opcode_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![opcode_byte, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[tokio::test]
async fn raw_text_frames_with_binary_payload_are_accepted() {
    let mut listener =
        ServerListener::bind(server_opts(false, Default::default()), TokioNet::new())
            .await
            .unwrap();
    let port = listener.local_addr().port();
    let (mut raw, head) = raw_upgrade(port, true).await;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(
        head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    // Not UTF-8, in a TEXT frame split over a fragment (text + continuation), as bytes
    // a plaintext frp client would send ('o' = Login type byte first).
    let payload: Vec<u8> = b"o\0\0\0\0\0\0\0\x02\xff\xfe".to_vec();
    raw.write_all(&masked_frame(0x01, &payload[..5]))
        .await
        .unwrap();
    raw.write_all(&masked_frame(0x80, &payload[5..]))
        .await
        .unwrap();
    let (mut conn, peer) = timeout(T, listener.accept()).await.unwrap().unwrap();
    assert!(peer.ip().is_loopback());
    let mut got = vec![0u8; payload.len()];
    timeout(T, conn.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, payload);
    // Our answer is one unmasked binary frame.
    conn.write_all(b"\x00\xffok").await.unwrap();
    conn.flush().await.unwrap();
    let mut frame = [0u8; 6];
    timeout(T, raw.read_exact(&mut frame))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frame, [0x82, 4, 0, 0xff, b'o', b'k']);
    // While the logical connection is being read (frp always reads: yamux driver or
    // relay), a ping is answered with a pong and a close frame ends it.
    let reader = tokio::spawn(async move {
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).await.map(|_| rest)
    });
    raw.write_all(&masked_frame(0x89, b"hb")).await.unwrap();
    let mut pong = [0u8; 4];
    timeout(T, raw.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pong, [0x8A, 2, b'h', b'b']);
    raw.write_all(&masked_frame(0x88, &1000u16.to_be_bytes()))
        .await
        .unwrap();
    let rest = timeout(T, reader).await.unwrap().unwrap().unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn absurd_frame_length_and_missing_origin_are_refused() {
    let mut listener =
        ServerListener::bind(server_opts(false, Default::default()), TokioNet::new())
            .await
            .unwrap();
    let port = listener.local_addr().port();
    let (mut raw, head) = raw_upgrade(port, true).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    // Binary frame claiming 2^62 bytes.
    let mut frame = vec![0x82, 0xFF];
    frame.extend_from_slice(&(1u64 << 62).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4, b'o']);
    raw.write_all(&frame).await.unwrap();
    let mut buf = [0u8; 64];
    let closed = timeout(T, async {
        loop {
            match raw.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "connection must be closed");
    assert!(
        timeout(Duration::from_millis(300), listener.accept())
            .await
            .is_err(),
        "no logical connection may come out of it"
    );

    let (mut raw, head) = raw_upgrade(port, false).await;
    assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{head}");
    let mut rest = Vec::new();
    let _ = timeout(T, raw.read_to_end(&mut rest)).await.unwrap();
}

/// Forced TLS applies inside the websocket, as frp's TLS check runs on ws connections.
#[tokio::test]
async fn forced_tls_inside_websocket() {
    let tls = ServerTlsOptions {
        force: true,
        ..Default::default()
    };
    let listener = ServerListener::bind(server_opts(true, tls), TokioNet::new())
        .await
        .unwrap();
    let port = listener.local_addr().port();
    let _server = spawn_echo_server(listener);
    let plain = Connector::new(
        client_opts(Protocol::Websocket, port, true, None),
        TokioNet::new(),
    )
    .unwrap();
    plain.open().await.unwrap();
    let _ = plain.connect().await.unwrap().write_all(b"x").await;
    timeout(T, plain.closed())
        .await
        .expect("plaintext ws session must be closed");
    let tls = Connector::new(
        client_opts(Protocol::Websocket, port, true, Some(Default::default())),
        TokioNet::new(),
    )
    .unwrap();
    tls.open().await.unwrap();
    echo_roundtrip(tls.connect().await.unwrap(), pattern(1000, 1)).await;
}

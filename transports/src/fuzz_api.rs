//! Entry points for the fuzz targets of the `fuzzing` crate (`fuzz/` runs them under
//! libFuzzer): thin wrappers over crate-private decoders that have no public API of their
//! own. Hidden from the docs and not a stable API; nothing in frp-rs calls them.

use crate::mux::frame::{FrameType, Header};

/// A yamux frame header as plain numbers (see `mux::frame`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct YamuxHeader {
    /// Wire type byte: 0 data, 1 window update, 2 ping, 3 go away.
    pub ty: u8,
    /// Flag bits (SYN 1, ACK 2, FIN 4, RST 8; others are carried as is).
    pub flags: u16,
    /// Stream id.
    pub stream_id: u32,
    /// Payload length, window delta, ping id or GoAway code, depending on the type.
    pub length: u32,
}

/// Decodes 12 header bytes as the session reader does; `None` when the reader would end
/// the session with a protocol error (bad version or type).
pub fn yamux_decode_header(bytes: &[u8; 12]) -> Option<YamuxHeader> {
    let h = Header::decode(bytes).ok()?;
    let ty = match h.ty {
        FrameType::Data => 0,
        FrameType::WindowUpdate => 1,
        FrameType::Ping => 2,
        FrameType::GoAway => 3,
    };
    Some(YamuxHeader {
        ty,
        flags: h.flags,
        stream_id: h.stream_id,
        length: h.length,
    })
}

/// Encodes a header as the session writer does; `None` for a type byte above 3.
pub fn yamux_encode_header(h: YamuxHeader) -> Option<[u8; 12]> {
    let ty = match h.ty {
        0 => FrameType::Data,
        1 => FrameType::WindowUpdate,
        2 => FrameType::Ping,
        3 => FrameType::GoAway,
        _ => return None,
    };
    Some(Header::new(ty, h.flags, h.stream_id, h.length).encode())
}

/// What the peer does in the `tls_records` fuzz target: the client side of a TLS 1.3
/// connection, after the handshake, towards a server that uses our record layer
/// ([`crate::tls_records`]).
#[derive(Clone, Debug)]
pub enum RecordOp {
    /// One record sealed with the client's current key: TLSInnerPlaintext `data ‖ kind`
    /// (RFC 8446 §5.2: the content type is the last non-zero byte, zeros after it are
    /// padding), any length the 16-bit record length can carry.
    Sealed { kind: u8, data: Vec<u8> },
    /// A well-formed KeyUpdate; the client switches to its next key after sending it.
    KeyUpdate { request: bool },
    /// Bytes written to the connection as they are, outside any record.
    Raw(Vec<u8>),
}

/// What [`records_exchange`]'s server saw.
#[derive(Debug)]
pub struct RecordsOutcome {
    /// The application data the server read, in order.
    pub read: Vec<u8>,
    /// How its reading ended: `Ok` at the client's close_notify, else the error.
    pub end: Result<(), String>,
    /// Whether one more read after the end gave the same kind of result (EOF again after
    /// close_notify, an error again after an error).
    pub end_repeats: bool,
    /// After a clean end the server writes [`RECORDS_ECHO`] and its close_notify; what the
    /// client then read to its end (`None` when reading did not end cleanly).
    pub echo: Option<Result<Vec<u8>, String>>,
}

/// What the server sends back after a clean end (see [`RecordsOutcome::echo`]).
pub const RECORDS_ECHO: &[u8] = b"the server's answer";

/// Runs `ops` from a client using our record layer against a server using it too, over an
/// in-memory connection after a real TLS 1.3 handshake; the server reads with reads of at
/// most `read_size` bytes. Panics only if the handshake itself fails.
pub async fn records_exchange(ops: &[RecordOp], read_size: usize) -> RecordsOutcome {
    use std::sync::OnceLock;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::tls::{self, TlsConn};

    static CONFIGS: OnceLock<(
        std::sync::Arc<rustls::ServerConfig>,
        std::sync::Arc<rustls::ClientConfig>,
    )> = OnceLock::new();
    let (server_cfg, client_cfg) = CONFIGS.get_or_init(|| {
        let server = tls::server_config(&crate::ServerTlsOptions::default()).expect("server");
        let client = tls::client_config(&crate::ClientTlsOptions::default()).expect("client");
        (server, client)
    });
    let name = tls::server_name(&crate::ClientTlsOptions::default(), "127.0.0.1").expect("name");
    let (a, b) = tokio::io::duplex(8 << 20);
    let (c, s) = tokio::join!(
        tls::connect(client_cfg.clone(), name, false, a, tls::SEND_BUFFER, true),
        tls::accept(server_cfg.clone(), b, tls::SEND_BUFFER)
    );
    let (Ok(TlsConn::Records(mut client)), Ok(TlsConn::Records(mut server))) = (c, s) else {
        panic!("the TLS 1.3 handshake failed or left rustls's records");
    };
    // The client writes everything first (the pipe holds it), then ends its side.
    let mut sent = Ok(());
    for op in ops {
        let step = match op {
            RecordOp::Sealed { kind, data } => match client.seal_unchecked(*kind, data) {
                Ok(()) => client.flush().await,
                Err(e) => Err(e),
            },
            RecordOp::KeyUpdate { request } => match client.seal_key_update_requesting(*request) {
                Ok(()) => client.flush().await,
                Err(e) => Err(e),
            },
            RecordOp::Raw(bytes) => client.io_mut().write_all(bytes).await,
        };
        if let Err(e) = step {
            sent = Err(e);
            break;
        }
    }
    sent.expect("the pipe takes everything");
    client.io_mut().shutdown().await.expect("half-close");

    let mut read = Vec::new();
    let mut buf = vec![0u8; read_size.max(1)];
    let end = loop {
        match server.read(&mut buf).await {
            Ok(0) => break Ok(()),
            Ok(n) => read.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e.to_string()),
        }
    };
    let again = server.read(&mut buf).await;
    let end_repeats = matches!((&end, &again), (Ok(()), Ok(0)) | (Err(_), Err(_)));
    let echo = if end.is_ok() {
        let answer = async {
            server.write_all(RECORDS_ECHO).await?;
            server.shutdown().await
        };
        let mut got = Vec::new();
        let (written, got_end) = tokio::join!(answer, client.read_to_end(&mut got));
        written.expect("the pipe takes the answer");
        Some(got_end.map(|_| got).map_err(|e| e.to_string()))
    } else {
        None
    };
    RecordsOutcome {
        read,
        end,
        end_repeats,
        echo,
    }
}

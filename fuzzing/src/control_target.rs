//! `control_sequence`: the real frps (`frps::Server`) fed a login and arbitrary control
//! traffic over plain TCP (tcpMux off, no TLS) on 127.0.0.1.
//!
//! One server runs for the whole process (a `static` runtime with one worker), so each
//! iteration costs a few loopback connections. Panics in the server's tasks, which tokio
//! would otherwise swallow, are caught by a panic hook and fail the iteration.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use control::{AuthScope, Login, Message, NewWorkConn, Ping, TokenAuth};
use futures::StreamExt;
use proxies::crypto_stream::CryptoStream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use transports::{ServerTransportOptions, TokioNet};

use crate::records::records;
use crate::rt::HANG;

const TOKEN: &str = "fuzz-token";
const TIMESTAMP: i64 = 1_700_000_000;
/// Ports tcp proxies may take: below Linux's ephemeral range (32768+), so they never
/// collide with the port-0 sockets of tests running beside the fuzzer.
const PORT_LO: u16 = 20_100;
const PORT_HI: u16 = 20_109;
const PROXY_NAMES: [&str; 4] = ["p0", "p1", "p2", "p3"];

struct Harness {
    rt: Runtime,
    addr: SocketAddr,
    _shutdown: CancellationToken,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();
static PANICKED: AtomicBool = AtomicBool::new(false);

fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            previous(info);
        }));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let shutdown = CancellationToken::new();
        let settings = frps::ServerSettings {
            listener: ServerTransportOptions {
                bind_addr: [127, 0, 0, 1].into(),
                bind_port: 0,
                tcp_mux: false,
                ..ServerTransportOptions::default()
            },
            proxy_bind_addr: "127.0.0.1".into(),
            token: TOKEN.into(),
            auth: TokenAuth::new(TOKEN, &[AuthScope::HeartBeats, AuthScope::NewWorkConns]),
            max_pool_count: 5,
            heartbeat_timeout: None,
            user_conn_timeout: Duration::from_millis(200),
            max_ports_per_client: 4,
            allow_ports: vec![(PORT_LO, PORT_HI)],
            detailed_errors_to_client: true,
        };
        let server = rt
            .block_on(frps::Server::bind(settings, TokioNet, shutdown.clone()))
            .expect("frps binds 127.0.0.1:0");
        let addr = server.local_addr();
        rt.spawn(server.serve());
        Harness {
            rt,
            addr,
            _shutdown: shutdown,
        }
    })
}

/// Input: byte 0 login options (bit 0 a wrong privilege key, bits 1-2 the run id, bits
/// 3-7 `pool_count`; a set bit 7 makes it negative), then records (see `records`) whose
/// tag % 9 selects:
///
/// 0. raw bytes on the (encrypted) control connection; a seed holds real frames here;
/// 1. one frame: type byte `body[0]`, JSON body `body[1..]`;
/// 2. a `NewProxy` with body as JSON, waiting for its `NewProxyResp`;
/// 3. a tcp `NewProxy` built from the record (name, port in or out of `allowPorts`,
///    encryption and compression flags), waiting for its `NewProxyResp`;
/// 4. `CloseProxy` of one of the names tag 3 uses;
/// 5. `Ping` with a right or wrong key;
/// 6. a work connection (`NewWorkConn` for this session, then the body);
/// 7. a user connection to a proxy that started, sending the body;
/// 8. a new connection whose first bytes are the body.
///
/// Properties: frps never panics; it answers every decodable `NewProxy`; everything it
/// writes on the control connection decodes; it closes the control connection when the
/// client does; and afterwards a fresh, well-formed login still gets a `LoginResp`.
pub fn control_sequence(data: &[u8]) {
    run(data);
}

/// [`control_sequence`], returning what the sequence reached.
fn run(data: &[u8]) -> Reached {
    let Some((&opts, rest)) = data.split_first() else {
        return Reached::default();
    };
    let h = harness();
    let reached = h.rt.block_on(async {
        let reached = match tokio::time::timeout(HANG, run_sequence(h.addr, opts, rest)).await {
            Ok(r) => r,
            Err(_) => panic!("hang: control sequence did not finish within {HANG:?}"),
        };
        match tokio::time::timeout(HANG, fresh_login(h.addr)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("frps stopped serving: {e}"),
            Err(_) => panic!("hang: a fresh login got no answer within {HANG:?}"),
        }
        reached
    });
    assert!(!PANICKED.load(Ordering::SeqCst), "a task panicked");
    reached
}

/// How far a sequence got (for the harness's own tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Reached {
    logged_in: bool,
    proxy_answers: usize,
    proxies_started: usize,
}

fn login(run_id: &str, pool_count: i64, good_key: bool) -> Message {
    let key = if good_key { TOKEN } else { "wrong" };
    Message::Login(Login {
        version: control::FRP_VERSION.into(),
        os: "linux".into(),
        arch: "amd64".into(),
        privilege_key: control::privilege_key(key, TIMESTAMP),
        timestamp: TIMESTAMP,
        run_id: run_id.into(),
        pool_count,
        ..Default::default()
    })
}

async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, m: &Message) -> std::io::Result<()> {
    let bytes = control::encode_to_vec(m).map_err(std::io::Error::other)?;
    w.write_all(&bytes).await?;
    w.flush().await
}

/// Logs in with a plain, well-formed Login; the answer must be a LoginResp without error.
async fn fresh_login(addr: SocketAddr) -> Result<(), String> {
    let mut conn = connect(addr).await.map_err(|e| e.to_string())?;
    write_frame(&mut conn, &login("", 0, true))
        .await
        .map_err(|e| e.to_string())?;
    match control::read_msg(&mut conn).await {
        Ok(Message::LoginResp(r)) if r.error.is_empty() && !r.run_id.is_empty() => Ok(()),
        other => Err(format!("unexpected answer to a fresh login: {other:?}")),
    }
}

/// What the control reader reports.
enum Event {
    /// A `NewProxyResp`: the remote address, empty on error.
    ProxyResp(String),
}

async fn run_sequence(addr: SocketAddr, opts: u8, data: &[u8]) -> Reached {
    let mut reached = Reached::default();
    let run_id = ["", "fuzz-a", "fuzz-b", "fuzz-c"][usize::from((opts >> 1) & 3)];
    let pool = i64::from((opts >> 3) & 0x0F) * if opts & 0x80 != 0 { -1 } else { 1 };
    let good_key = opts & 1 == 0;
    let Ok(mut conn) = connect(addr).await else {
        panic!("frps refused a connection");
    };
    if write_frame(&mut conn, &login(run_id, pool, good_key))
        .await
        .is_err()
    {
        return reached;
    }
    let resp = match control::read_msg(&mut conn).await {
        Ok(Message::LoginResp(r)) => r,
        other => panic!("answer to Login: {other:?}"),
    };
    assert_eq!(resp.error.is_empty(), good_key, "login outcome: {resp:?}");
    if !good_key {
        return reached;
    }
    reached.logged_in = true;
    let session_run_id = resp.run_id;
    let key = control::crypto::derive_key(TOKEN.as_bytes());
    let (rd, mut wr) = tokio::io::split(CryptoStream::with_iv(conn, &key, [7; 16]));
    let (tx, mut events) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        let mut frames = FramedRead::new(rd, control::MsgCodec);
        while let Some(frame) = frames.next().await {
            match frame {
                Ok(Message::NewProxyResp(r)) => {
                    let _ = tx.send(Event::ProxyResp(r.remote_addr));
                }
                Ok(_) => {}
                Err(control::ProtocolError::Io(_)) => break,
                Err(e) => panic!("frps sent an undecodable control frame: {e}"),
            }
        }
    });
    let mut remote_addrs: Vec<String> = Vec::new();
    let mut extra: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    let mut open = true;
    let mut mirror = BytesMut::new();
    let mut mirror_ok = true;
    let (mut expected, mut answered) = (0usize, 0usize);
    for r in records(data) {
        if !open {
            break;
        }
        let mut frame = BytesMut::new();
        match r.tag % 9 {
            0 => frame.put_slice(r.body),
            1 | 2 => {
                let (ty, json) = match (r.tag % 9, r.body.split_first()) {
                    (2, _) => (b'p', r.body),
                    (_, Some((&ty, json))) => (ty, json),
                    (_, None) => continue,
                };
                frame.put_u8(ty);
                frame.put_i64(json.len() as i64);
                frame.put_slice(json);
            }
            3 => {
                let name = PROXY_NAMES[usize::from(r.len) % PROXY_NAMES.len()];
                // Ports PORT_LO-1 ..= PORT_HI+1 (the ends outside allowPorts); 0 lets frps pick.
                let port = match r.len % 13 {
                    0 => 0,
                    n => i64::from(PORT_LO) - 2 + i64::from(n),
                };
                let flags = r.body.first().copied().unwrap_or(0);
                let m = Message::NewProxy(control::NewProxy {
                    proxy_name: name.into(),
                    proxy_type: "tcp".into(),
                    remote_port: port,
                    use_encryption: flags & 1 != 0,
                    use_compression: flags & 2 != 0,
                    group: if flags & 4 != 0 {
                        "g".into()
                    } else {
                        String::new()
                    },
                    group_key: if flags & 8 != 0 {
                        "k".into()
                    } else {
                        String::new()
                    },
                    ..Default::default()
                });
                control::encode(&m, &mut frame).expect("a small NewProxy encodes");
            }
            4 => {
                let name = PROXY_NAMES[usize::from(r.len) % PROXY_NAMES.len()];
                let m = Message::CloseProxy(control::CloseProxy {
                    proxy_name: name.into(),
                });
                control::encode(&m, &mut frame).expect("CloseProxy encodes");
            }
            5 => {
                let key = if r.len % 2 == 0 { TOKEN } else { "wrong" };
                let m = Message::Ping(Ping {
                    privilege_key: control::privilege_key(key, TIMESTAMP),
                    timestamp: TIMESTAMP,
                });
                control::encode(&m, &mut frame).expect("Ping encodes");
            }
            6 => {
                let m = Message::NewWorkConn(NewWorkConn {
                    run_id: session_run_id.clone(),
                    privilege_key: control::privilege_key(TOKEN, TIMESTAMP),
                    timestamp: TIMESTAMP,
                });
                let mut first = control::encode_to_vec(&m).expect("NewWorkConn encodes");
                first.extend_from_slice(r.body);
                extra.push(side_connection(addr, first));
                continue;
            }
            7 => {
                let Some(target) = (!remote_addrs.is_empty())
                    .then(|| &remote_addrs[usize::from(r.len) % remote_addrs.len()])
                else {
                    continue;
                };
                let port = target
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .unwrap_or_else(|| panic!("NewProxyResp remote_addr {target:?}"));
                extra.push(side_connection(
                    SocketAddr::from(([127, 0, 0, 1], port)),
                    r.body.to_vec(),
                ));
                continue;
            }
            _ => {
                extra.push(side_connection(addr, r.body.to_vec()));
                continue;
            }
        }
        if wr.write_all(&frame).await.is_err() || wr.flush().await.is_err() {
            open = false;
            continue;
        }
        // Decode what we sent as the server does, to know how many answers are due.
        mirror.put_slice(&frame);
        while mirror_ok {
            match control::decode(&mut mirror) {
                Ok(Some(Message::NewProxy(_))) => expected += 1,
                Ok(Some(_)) => {}
                Ok(None) => break,
                // The server fails the same way and ends the session.
                Err(_) => mirror_ok = false,
            }
        }
        while answered < expected {
            match events.recv().await {
                Some(Event::ProxyResp(a)) => {
                    answered += 1;
                    reached.proxy_answers += 1;
                    if !a.is_empty() {
                        reached.proxies_started += 1;
                        remote_addrs.push(a);
                    }
                }
                // The session ended: on an undecodable frame, or a side connection's
                // login with this run id replaced it.
                None => {
                    open = false;
                    break;
                }
            }
        }
    }
    // Our EOF must end the session and close the connection.
    let _ = wr.shutdown().await;
    drop(events);
    if let Err(e) = reader.await {
        std::panic::resume_unwind(e.into_panic());
    }
    drop(wr);
    for t in extra {
        t.abort();
        let _ = t.await;
    }
    reached
}

/// A connection that sends `first` and then reads (and discards) whatever comes back
/// until the server closes it or the task is aborted.
fn side_connection(addr: SocketAddr, first: Vec<u8>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(mut c) = connect(addr).await else {
            return;
        };
        if c.write_all(&first).await.is_err() {
            return;
        }
        drain(&mut c).await;
    })
}

/// A loopback connection without Nagle's delay (the cipher writes its IV separately, and
/// a delayed ACK would stall every iteration by 40 ms).
async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let c = TcpStream::connect(addr).await?;
    c.set_nodelay(true)?;
    Ok(c)
}

async fn drain<R: AsyncRead + Unpin>(r: &mut R) {
    let mut buf = [0u8; 4096];
    while let Ok(1..) = r.read(&mut buf).await {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record whose body is `body` zero-padded to `len` (which doubles as a parameter).
    fn rec(tag: u8, len: u16, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(body);
        v.resize(3 + usize::from(len).max(body.len()), 0);
        v
    }

    /// The harness really drives frps: a tcp proxy inside allowPorts starts, one outside
    /// is refused, a user connection and a work connection go through, and a wrong key
    /// does not log in.
    #[test]
    fn reaches_proxies() {
        let mut input = vec![0x08];
        input.extend(rec(3, 2, b"\x01")); // p2 on PORT_LO, encrypted
        input.extend(rec(6, 0, b""));
        input.extend(rec(7, 5, b"hello"));
        input.extend(rec(5, 0, b""));
        input.extend(rec(3, 12, b"")); // p0 on PORT_LO - 2 + 12 = PORT_HI + 1: refused
        let r = run(&input);
        assert_eq!(
            r,
            Reached {
                logged_in: true,
                proxy_answers: 2,
                proxies_started: 1
            }
        );
        assert!(!run(&[0x09]).logged_in);
    }
}

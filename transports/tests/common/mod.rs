//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use transports::{BoxStream, ServerListener};

/// Bound on one echo round trip in the loopback tests.
const ECHO_TIMEOUT: Duration = Duration::from_secs(60);

/// Directory of the real frp 0.65.0 binaries: `$FRP_BIN_DIR` or `<workspace>/.cache/frp-0.65.0`.
pub fn frp_bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("FRP_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/frp-0.65.0"));
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "real frp binary {} is missing: run scripts/fetch-frp.sh or set FRP_BIN_DIR",
        path.display()
    );
    path
}

/// A child process killed when dropped.
pub struct Child {
    child: tokio::process::Child,
    pub dir: tempfile::TempDir,
}

impl Child {
    /// Starts `bin -c <dir>/config.toml` with the given config text.
    pub fn spawn(bin: &str, config: &str) -> Child {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("out.log")).unwrap();
        let child = tokio::process::Command::new(frp_bin(bin))
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Child { child, dir }
    }

    /// The process output so far (for assertion messages).
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("out.log")).unwrap_or_default()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A currently free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on 127.0.0.1:port.
///
/// A connection whose local and peer addresses are equal is Linux's TCP self-connect (the
/// kernel picked the target port as the source port while nothing listened): it proves
/// nothing and is retried.
pub async fn wait_listening(port: u16) {
    for _ in 0..200 {
        if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            if s.local_addr().ok() != s.peer_addr().ok() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on port {port}");
}

/// Starts the real frps with the config `make` builds for fresh ports and waits until it
/// logs that it listens on the TCP port `make` returned. A start that lost the race for a
/// port (another process bound it between our probe and frps's bind) is retried with new
/// ports; any other early exit fails with frps's output.
pub async fn start_frps<T: Copy>(mut make: impl FnMut() -> (u16, T, String)) -> (Child, u16, T) {
    let mut last = String::new();
    for _ in 0..5 {
        let (port, extra, config) = make();
        let mut frps = Child::spawn("frps", &config);
        let needle = format!("listen on 127.0.0.1:{port}");
        for _ in 0..400 {
            let out = frps.output();
            if out.contains(&needle) && out.contains("frps started successfully") {
                wait_listening(port).await;
                return (frps, port, extra);
            }
            if let Ok(Some(status)) = frps.child.try_wait() {
                last = format!("frps exited ({status}):\n{out}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if !last.contains("address already in use") {
            panic!(
                "frps did not start listening on {port}: {last}\n{}",
                frps.output()
            );
        }
    }
    panic!("frps lost the port race five times: {last}");
}

/// Reads one frp message frame: (type byte, JSON body).
pub async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> (u8, serde_json::Value) {
    let mut hdr = [0u8; 9];
    s.read_exact(&mut hdr).await.unwrap();
    let len = i64::from_be_bytes(hdr[1..9].try_into().unwrap());
    assert!((0..=10240).contains(&len), "bad frame length {len}");
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body).await.unwrap();
    (hdr[0], serde_json::from_slice(&body).unwrap())
}

/// Writes one frp message frame.
pub async fn write_frame<S: tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    ty: u8,
    body: &serde_json::Value,
) {
    let body = serde_json::to_vec(body).unwrap();
    let mut frame = vec![ty];
    frame.extend_from_slice(&(body.len() as i64).to_be_bytes());
    frame.extend_from_slice(&body);
    s.write_all(&frame).await.unwrap();
    s.flush().await.unwrap();
}

/// A Login message as Go frpc builds it, with an empty token.
pub fn login_json() -> serde_json::Value {
    use md5::Digest;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let key = hex::encode(md5::Md5::digest(ts.to_string().as_bytes()));
    serde_json::json!({
        "version": "0.65.0",
        "os": "linux",
        "arch": "amd64",
        "privilege_key": key,
        "timestamp": ts,
        "client_spec": {},
        "pool_count": 1,
    })
}

/// frp's control-connection cipher for an empty token: AES-128-CFB keyed with
/// PBKDF2-HMAC-SHA1("", "frp", 64, 16) (frp-protocol.md §4).
pub fn control_key() -> [u8; 16] {
    let mut key = [0u8; 16];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(b"", b"frp", 64, &mut key);
    key
}

/// The encrypting half of a control connection (our IV is sent on first use).
pub struct EncWriter {
    enc: cfb_mode::BufEncryptor<aes::Aes128>,
    iv: Option<[u8; 16]>,
}

impl EncWriter {
    pub fn new() -> Self {
        use cfb_mode::cipher::KeyIvInit;
        let iv = [7u8; 16];
        EncWriter {
            enc: cfb_mode::BufEncryptor::new_from_slices(&control_key(), &iv).unwrap(),
            iv: Some(iv),
        }
    }

    pub async fn write_frame<S: tokio::io::AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        ty: u8,
        body: &serde_json::Value,
    ) {
        let body = serde_json::to_vec(body).unwrap();
        let mut frame = vec![ty];
        frame.extend_from_slice(&(body.len() as i64).to_be_bytes());
        frame.extend_from_slice(&body);
        self.enc.encrypt(&mut frame);
        if let Some(iv) = self.iv.take() {
            s.write_all(&iv).await.unwrap();
        }
        s.write_all(&frame).await.unwrap();
        s.flush().await.unwrap();
    }
}

/// The decrypting half of a control connection (reads the peer's IV first).
pub struct DecReader {
    dec: Option<cfb_mode::BufDecryptor<aes::Aes128>>,
}

impl DecReader {
    pub fn new() -> Self {
        DecReader { dec: None }
    }

    pub async fn read_frame<S: AsyncRead + Unpin>(&mut self, s: &mut S) -> (u8, serde_json::Value) {
        use cfb_mode::cipher::KeyIvInit;
        if self.dec.is_none() {
            let mut iv = [0u8; 16];
            s.read_exact(&mut iv).await.unwrap();
            self.dec = Some(cfb_mode::BufDecryptor::new_from_slices(&control_key(), &iv).unwrap());
        }
        let dec = self.dec.as_mut().unwrap();
        let mut hdr = [0u8; 9];
        s.read_exact(&mut hdr).await.unwrap();
        dec.decrypt(&mut hdr);
        let len = i64::from_be_bytes(hdr[1..9].try_into().unwrap());
        assert!((0..=10240).contains(&len), "bad frame length {len}");
        let mut body = vec![0u8; len as usize];
        s.read_exact(&mut body).await.unwrap();
        dec.decrypt(&mut body);
        (hdr[0], serde_json::from_slice(&body).unwrap())
    }
}

/// Echoes everything read from `s` back to it until EOF.
/// Registers a tcp proxy named `big` on `remote_port` over an encrypted control connection
/// right after LoginResp, and waits for its NewProxyResp (skipping the `ReqWorkConn`s frps
/// sends first). `frps_output` is printed if no answer comes.
pub async fn register_big_proxy<S>(
    control: &mut S,
    remote_port: u16,
    frps_output: impl Fn() -> String,
) where
    S: AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut enc = EncWriter::new();
    let mut dec = DecReader::new();
    let new_proxy = serde_json::json!({
        "proxy_name": "big", "proxy_type": "tcp", "remote_port": remote_port,
    });
    enc.write_frame(control, b'p', &new_proxy).await;
    loop {
        let (ty, msg) = timeout(Duration::from_secs(20), dec.read_frame(control))
            .await
            .unwrap_or_else(|_| panic!("no NewProxyResp; frps said:\n{}", frps_output()));
        if ty == b'2' {
            assert!(msg.get("error").is_none(), "{msg}");
            break;
        }
        assert_eq!(ty, b'r', "unexpected message {msg}");
    }
}

pub async fn echo<S: AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = s.shutdown().await;
}

/// Writes `len` patterned bytes to `s` while reading them back; checks the echo.
pub async fn check_echo<S: AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static>(
    s: S,
    len: usize,
) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(5))
        .collect();
    let (mut r, mut w) = tokio::io::split(s);
    let expected = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.flush().await.unwrap();
        w
    });
    let mut got = vec![0u8; len];
    r.read_exact(&mut got).await.unwrap();
    assert!(got == expected, "echoed bytes differ");
    writer.await.unwrap();
}

/// Spawns a task echoing every logical connection of `listener`.
pub fn spawn_echo_server(mut listener: ServerListener) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(echo(conn));
        }
    })
}

pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Writes `data` and reads the echo concurrently; checks it byte for byte.
pub async fn echo_roundtrip(conn: BoxStream, data: Vec<u8>) {
    let (mut r, mut w) = tokio::io::split(conn);
    let expected = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut got = Vec::with_capacity(expected.len());
    timeout(ECHO_TIMEOUT, r.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    writer.await.unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "echoed bytes differ");
}

pub struct Pki {
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

pub fn write(dir: &Path, name: &str, text: String) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A CA with a server certificate (localhost, 127.0.0.1) and a client certificate.
pub fn make_pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()]);
    let (client_cert, client_key) = leaf(vec!["client.example".into()]);
    let d = dir.path();
    Pki {
        ca: write(d, "ca.crt", ca.pem()),
        server_cert: write(d, "server.crt", server_cert),
        server_key: write(d, "server.key", server_key),
        client_cert: write(d, "client.crt", client_cert),
        client_key: write(d, "client.key", client_key),
        _dir: dir,
    }
}

/// A currently free UDP port on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TLS-terminating proxy (what nginx does in front of frps for wss): accepts TLS on
/// 127.0.0.1 with the PKI's server certificate and forwards the plain bytes to
/// `127.0.0.1:target`. Returns its port; the task ends when the runtime does.
pub async fn spawn_tls_terminator(pki: &Pki, target: u16) -> u16 {
    use tokio_rustls::rustls;
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(&pki.server_cert).unwrap(),
    ))
    .collect::<Result<Vec<_>, _>>()
    .unwrap();
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(&pki.server_key).unwrap(),
    ))
    .unwrap()
    .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

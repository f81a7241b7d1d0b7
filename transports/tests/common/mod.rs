//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

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
pub async fn wait_listening(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on port {port}");
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

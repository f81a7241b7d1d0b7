//! The HTTP/1.1 upgrade that starts frp's websocket transport (RFC 6455 §4), both ends.
//!
//! Mirrors what golang.org/x/net/websocket does for frp 0.65.0
//! (`pkg/util/net/websocket.go`, `pkg/util/net/dial.go`):
//!
//! * client: `GET /~!frp HTTP/1.1` with `Host` = `serverAddr:serverPort` (websocket) or
//!   the TLS server name without port (wss), and `Origin: http://<host>`;
//! * server: only the path `/~!frp`; a request without `Origin` is refused with
//!   `403 Forbidden` (x/net's default origin check), a wrong version with `400`.
//!
//! Heads are read with a size limit; bytes past the head are handed to the
//! [`WsStream`].

use std::io;

use base64::Engine as _;
use bytes::BytesMut;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::stream::{Role, WsStream};

/// frp's websocket path (`FrpWebsocketPath`).
pub const WEBSOCKET_PATH: &str = "/~!frp";
/// Largest HTTP head we read (request or response).
pub const MAX_HEAD_LEN: usize = 16 * 1024;
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Performs the client side of the upgrade over `io` (already connected, TLS for wss).
///
/// `host` is the `Host` header value; `Origin` is `http://<host>`, as x/net builds it.
pub async fn client_handshake<S>(mut io: S, host: &str) -> io::Result<WsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    let request = format!(
        "GET {WEBSOCKET_PATH} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nOrigin: http://{host}\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    io.write_all(request.as_bytes()).await?;
    io.flush().await?;
    let (head, leftover) = read_head(&mut io).await?;
    let head = Head::parse(&head)?;
    let status = head.start_line.split(' ').nth(1).unwrap_or_default();
    if !head.start_line.starts_with("HTTP/1.") || status != "101" {
        return Err(invalid(format!("upgrade refused: {}", head.start_line)));
    }
    let expected = accept_key(&key);
    let ok = head
        .value("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && head.has_token("connection", "upgrade")
        && head.value("sec-websocket-accept") == Some(expected.as_str());
    if !ok {
        return Err(invalid("invalid upgrade response headers".to_owned()));
    }
    Ok(WsStream::new(io, Role::Client, leftover))
}

/// Performs the server side of the upgrade over `io` (whose first bytes were sniffed as
/// `GET /~!frp`). Refusals are answered with an HTTP error status before failing.
pub async fn server_handshake<S>(mut io: S) -> io::Result<WsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (head, leftover) = read_head(&mut io).await?;
    let key = match check_request(&head) {
        Ok(key) => key,
        Err(refusal) => {
            let response = format!("HTTP/1.1 {}\r\n{}\r\n", refusal.status, refusal.headers);
            // Best effort: the peer may already be gone.
            let _ = io.write_all(response.as_bytes()).await;
            let _ = io.shutdown().await;
            return Err(invalid(format!(
                "upgrade refused ({}): {}",
                refusal.status, refusal.reason
            )));
        }
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(&key)
    );
    io.write_all(response.as_bytes()).await?;
    io.flush().await?;
    Ok(WsStream::new(io, Role::Server, leftover))
}

/// Why an upgrade request is refused.
#[derive(Debug)]
struct Refusal {
    status: &'static str,
    headers: &'static str,
    reason: String,
}

fn refuse(status: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        headers: "",
        reason: reason.into(),
    }
}

/// Validates an upgrade request head; returns its `Sec-WebSocket-Key`.
fn check_request(raw: &[u8]) -> Result<String, Refusal> {
    const BAD: &str = "400 Bad Request";
    let head = Head::parse(raw).map_err(|e| refuse(BAD, e.to_string()))?;
    let mut parts = head.start_line.split(' ');
    let (method, path, version) = (parts.next(), parts.next(), parts.next());
    if version != Some("HTTP/1.1") || parts.next().is_some() {
        return Err(refuse(
            BAD,
            format!("bad request line {:?}", head.start_line),
        ));
    }
    if path != Some(WEBSOCKET_PATH) {
        return Err(refuse("404 Not Found", format!("path {path:?}")));
    }
    if method != Some("GET") {
        return Err(refuse(
            "405 Method Not Allowed",
            format!("method {method:?}"),
        ));
    }
    if head.value("host").is_none() {
        return Err(refuse(BAD, "missing Host header"));
    }
    let upgrade = head.value("upgrade").unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") || !head.has_token("connection", "upgrade") {
        return Err(refuse(BAD, "not a websocket upgrade"));
    }
    if head.value("sec-websocket-version") != Some("13") {
        return Err(Refusal {
            headers: "Sec-WebSocket-Version: 13\r\n",
            ..refuse(BAD, "unsupported Sec-WebSocket-Version")
        });
    }
    let key = match head.value("sec-websocket-key") {
        Some(k) if !k.is_empty() => k.to_owned(),
        _ => return Err(refuse(BAD, "missing Sec-WebSocket-Key")),
    };
    // x/net's default handshake rejects a missing Origin ("null origin") with 403.
    if head.value("origin").is_none_or(str::is_empty) {
        return Err(refuse("403 Forbidden", "missing Origin header"));
    }
    Ok(key)
}

/// `Sec-WebSocket-Accept` for `key`.
fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads up to and including the blank line ending an HTTP head. Returns the head and
/// the bytes read past it.
async fn read_head<S: AsyncRead + Unpin>(io: &mut S) -> io::Result<(Vec<u8>, BytesMut)> {
    let mut buf = BytesMut::with_capacity(1024);
    let mut searched = 0;
    loop {
        if let Some(pos) = find_head_end(&buf[searched..]) {
            let end = searched + pos + 4;
            let head = buf.split_to(end).to_vec();
            return Ok((head, buf));
        }
        searched = buf.len().saturating_sub(3);
        if buf.len() >= MAX_HEAD_LEN {
            return Err(invalid(format!(
                "HTTP head longer than {MAX_HEAD_LEN} bytes"
            )));
        }
        buf.reserve(MAX_HEAD_LEN - buf.len());
        if io.read_buf(&mut buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed during the websocket upgrade",
            ));
        }
    }
}

fn find_head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n")
}

/// A parsed HTTP head: the first line and the header fields.
struct Head {
    start_line: String,
    fields: Vec<(String, String)>,
}

impl Head {
    fn parse(raw: &[u8]) -> io::Result<Head> {
        let text =
            std::str::from_utf8(raw).map_err(|_| invalid("HTTP head is not UTF-8".into()))?;
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        let start_line = lines.next().unwrap_or_default().to_owned();
        let mut fields = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("malformed header line {line:?}")))?;
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        Ok(Head { start_line, fields })
    }

    /// The first value of header `name` (lower case).
    fn value(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether any `name` header lists `token` (comma-separated, case-insensitive).
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.fields
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GO_REQUEST: &str =
        "GET /~!frp HTTP/1.1\r\nHost: 127.0.0.1:17204\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://127.0.0.1:17204\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn rfc_accept_key() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn go_request_is_accepted() {
        assert_eq!(
            check_request(GO_REQUEST.as_bytes()).unwrap(),
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
    }

    #[test]
    fn refusals() {
        let no_origin = GO_REQUEST.replace("Origin: http://127.0.0.1:17204\r\n", "");
        assert_eq!(
            check_request(no_origin.as_bytes()).unwrap_err().status,
            "403 Forbidden"
        );
        let path = GO_REQUEST.replace("/~!frp ", "/~!frpx ");
        assert_eq!(
            check_request(path.as_bytes()).unwrap_err().status,
            "404 Not Found"
        );
        let version = GO_REQUEST.replace("Version: 13", "Version: 8");
        let r = check_request(version.as_bytes()).unwrap_err();
        assert_eq!(r.status, "400 Bad Request");
        assert!(r.headers.contains("13"));
        let no_key = GO_REQUEST.replace("Sec-WebSocket-Key", "X-Key");
        assert!(check_request(no_key.as_bytes()).is_err());
        assert!(check_request(b"GET /~!frp\r\n\r\n").is_err());
        assert!(check_request(b"\xff\xfe\r\n\r\n").is_err());
    }

    #[tokio::test]
    async fn head_limit_and_leftover() {
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        a.write_all(b"HTTP/1.1 101 OK\r\nX: y\r\n\r\nextra")
            .await
            .unwrap();
        let (head, leftover) = read_head(&mut b).await.unwrap();
        assert!(head.ends_with(b"\r\n\r\n"));
        assert_eq!(&leftover[..], b"extra");

        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        a.write_all(&vec![b'a'; MAX_HEAD_LEN + 10]).await.unwrap();
        let err = read_head(&mut b).await.unwrap_err();
        assert!(err.to_string().contains("longer"), "{err}");
    }
}

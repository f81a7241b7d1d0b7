//! First-bytes classification of a connection accepted by frps, and a stream that
//! replays the bytes that were peeked.
//!
//! Mirrors frp v0.65.0 `server/service.go` (`handleConnection` and the listener muxing
//! through golib `net/mux`) and `pkg/util/net/tls.go` (`CheckAndEnableTLSServerConnWithTimeout`):
//!
//! * `0x17` (frp's custom TLS head byte) → the byte is consumed and TLS follows;
//! * `0x16` (a TLS handshake record) → TLS, the byte is replayed into the TLS server;
//! * `GET /~!frp` → websocket transport;
//! * anything else → plaintext frp, unless `transport.tls.force` is set (→ rejected).
//!
//! golib reads up to 10 bytes; a plaintext frp client always sends at least 10 bytes at
//! once (a yamux header is 12 bytes, a message header 9 + body), but we never wait for
//! more bytes than needed to decide: only a leading `G` needs more than one byte.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// frp's custom first byte sent before a TLS ClientHello (`FRPTLSHeadByte`).
pub const FRP_TLS_HEAD_BYTE: u8 = 0x17;
/// First byte of a TLS handshake record.
pub const TLS_HANDSHAKE_BYTE: u8 = 0x16;
/// Prefix of frp's websocket upgrade request (`GET /~!frp`).
pub const WEBSOCKET_PREFIX: &[u8] = b"GET /~!frp";
/// How many bytes golib's listener muxer peeks at most.
pub const MAX_SNIFF_LEN: usize = 10;
/// frps's timeout for the first bytes of a new connection.
pub const SNIFF_TIMEOUT: Duration = Duration::from_secs(10);

/// What the first bytes of a connection say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sniffed {
    /// Not enough bytes yet to decide.
    NeedMore,
    /// TLS. `skip_head_byte` is true when the first byte was frp's `0x17` marker, which
    /// must be consumed; otherwise the bytes are replayed into the TLS server.
    Tls {
        /// Whether the first byte is the `0x17` marker.
        skip_head_byte: bool,
    },
    /// frp's websocket transport (`GET /~!frp`).
    Websocket,
    /// Plaintext frp (a message frame, or a yamux header when tcpMux is on).
    Plain,
    /// Plaintext while `transport.tls.force` is set: the connection must be closed.
    PlainRejected,
}

/// Classifies the first bytes of a server-accepted connection.
///
/// `prefix` holds the bytes read so far (it may be longer than needed); `tls_force`
/// is frps's `transport.tls.force`. Pure and total: never panics.
pub fn classify(prefix: &[u8], tls_force: bool) -> Sniffed {
    let Some(&first) = prefix.first() else {
        return Sniffed::NeedMore;
    };
    match first {
        FRP_TLS_HEAD_BYTE => {
            return Sniffed::Tls {
                skip_head_byte: true,
            }
        }
        TLS_HANDSHAKE_BYTE => {
            return Sniffed::Tls {
                skip_head_byte: false,
            }
        }
        _ => {}
    }
    let n = prefix.len().min(WEBSOCKET_PREFIX.len());
    if prefix[..n] == WEBSOCKET_PREFIX[..n] {
        if n == WEBSOCKET_PREFIX.len() {
            return Sniffed::Websocket;
        }
        return Sniffed::NeedMore;
    }
    plain(tls_force)
}

/// Classification once the peer has stopped sending (EOF or no more bytes in time):
/// an unfinished websocket prefix is plain frp.
pub fn classify_final(prefix: &[u8], tls_force: bool) -> Sniffed {
    match classify(prefix, tls_force) {
        Sniffed::NeedMore => plain(tls_force),
        other => other,
    }
}

fn plain(tls_force: bool) -> Sniffed {
    if tls_force {
        Sniffed::PlainRejected
    } else {
        Sniffed::Plain
    }
}

/// Reads just enough of `io` to classify it (at most [`MAX_SNIFF_LEN`] bytes).
///
/// Returns the classification and the bytes read (to be replayed with [`Rewind`]).
/// Fails with `UnexpectedEof` if the peer closes before sending anything. The caller
/// applies the timeout (frp: 10 s).
pub async fn sniff<S: AsyncRead + Unpin>(
    io: &mut S,
    tls_force: bool,
) -> io::Result<(Sniffed, Vec<u8>)> {
    let mut buf = [0u8; MAX_SNIFF_LEN];
    let mut filled = 0;
    loop {
        let n = io.read(&mut buf[filled..]).await?;
        if n == 0 {
            if filled == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before sending any byte",
                ));
            }
            return Ok((
                classify_final(&buf[..filled], tls_force),
                buf[..filled].to_vec(),
            ));
        }
        filled += n;
        let verdict = if filled == MAX_SNIFF_LEN {
            classify_final(&buf[..filled], tls_force)
        } else {
            classify(&buf[..filled], tls_force)
        };
        if verdict != Sniffed::NeedMore {
            return Ok((verdict, buf[..filled].to_vec()));
        }
    }
}

/// frp's TLS check (`pkg/util/net/tls.go` `CheckAndEnableTLSServerConnWithTimeout`):
/// reads exactly one byte, `0x17` or `0x16` is TLS, anything else plaintext (refused
/// when `tls_force`). Used where no websocket can follow: inside a websocket and on KCP
/// sessions. Returns the classification and the byte read.
pub async fn sniff_tls<S: AsyncRead + Unpin>(
    io: &mut S,
    tls_force: bool,
) -> io::Result<(Sniffed, Vec<u8>)> {
    let mut byte = [0u8; 1];
    if io.read(&mut byte).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before sending any byte",
        ));
    }
    // `classify_final` never answers `Websocket` for a single byte.
    Ok((classify_final(&byte, tls_force), byte.to_vec()))
}

/// A stream that first yields `prefix` and then reads from `inner`; writes go straight
/// to `inner`. Used to replay the bytes consumed by [`sniff`].
#[derive(Debug)]
pub struct Rewind<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Rewind<S> {
    /// Wraps `inner`, replaying `prefix` before its own bytes.
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Rewind {
            prefix,
            pos: 0,
            inner,
        }
    }

    /// The wrapped stream (any unreplayed prefix bytes are lost).
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let rest = &this.prefix[this.pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn classifies_frp_first_bytes() {
        assert_eq!(classify(&[], false), Sniffed::NeedMore);
        assert_eq!(
            classify(&[0x17], false),
            Sniffed::Tls {
                skip_head_byte: true
            }
        );
        assert_eq!(
            classify(&[0x16, 3, 1], true),
            Sniffed::Tls {
                skip_head_byte: false
            }
        );
        assert_eq!(classify(b"GET /~!frp", false), Sniffed::Websocket);
        assert_eq!(classify(b"GET /~", false), Sniffed::NeedMore);
        assert_eq!(classify(b"GET /index", false), Sniffed::Plain);
        // yamux window update (tcpMux on) and a Login frame (tcpMux off).
        assert_eq!(classify(&[0, 1, 0, 1], false), Sniffed::Plain);
        assert_eq!(classify(b"o\0\0\0", false), Sniffed::Plain);
        assert_eq!(classify(b"o\0\0\0", true), Sniffed::PlainRejected);
        assert_eq!(classify_final(b"GE", false), Sniffed::Plain);
        assert_eq!(classify_final(b"GE", true), Sniffed::PlainRejected);
    }

    proptest! {
        #[test]
        fn classify_never_panics_and_final_decides(bytes in proptest::collection::vec(any::<u8>(), 0..32), force: bool) {
            let v = classify(&bytes, force);
            if bytes.len() >= MAX_SNIFF_LEN {
                prop_assert_ne!(v, Sniffed::NeedMore);
            }
            if !bytes.is_empty() {
                prop_assert_ne!(classify_final(&bytes, force), Sniffed::NeedMore);
            }
        }
    }

    #[tokio::test]
    async fn sniff_does_not_wait_for_ten_bytes() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0x16, 3]).await.unwrap();
        // The peer sends nothing more; sniff must still return.
        let (v, prefix) = sniff(&mut b, false).await.unwrap();
        assert_eq!(
            v,
            Sniffed::Tls {
                skip_head_byte: false
            }
        );
        assert_eq!(prefix, vec![0x16, 3]);
        let mut r = Rewind::new(prefix, b);
        a.write_all(&[1]).await.unwrap();
        let mut out = [0u8; 3];
        r.read_exact(&mut out).await.unwrap();
        assert_eq!(out, [0x16, 3, 1]);
    }

    #[tokio::test]
    async fn sniff_tls_reads_one_byte() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(b"GE\x17\x16rest").await.unwrap();
        drop(a);
        let (v, prefix) = sniff_tls(&mut b, false).await.unwrap();
        assert_eq!((v, prefix), (Sniffed::Plain, b"G".to_vec()));
        let (v, _) = sniff_tls(&mut b, true).await.unwrap();
        assert_eq!(v, Sniffed::PlainRejected);
        let (v, _) = sniff_tls(&mut b, true).await.unwrap();
        assert_eq!(
            v,
            Sniffed::Tls {
                skip_head_byte: true
            }
        );
        let (v, _) = sniff_tls(&mut b, true).await.unwrap();
        assert_eq!(
            v,
            Sniffed::Tls {
                skip_head_byte: false
            }
        );
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"rest");
        assert!(sniff_tls(&mut b, false).await.is_err());
    }

    #[tokio::test]
    async fn sniff_websocket_in_pieces_and_eof() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let t = tokio::spawn(async move {
            a.write_all(b"GET ").await.unwrap();
            tokio::task::yield_now().await;
            a.write_all(b"/~!frp HTTP/1.1\r\n").await.unwrap();
        });
        let (v, prefix) = sniff(&mut b, false).await.unwrap();
        assert_eq!(v, Sniffed::Websocket);
        assert!(prefix.starts_with(b"GET "));
        t.await.unwrap();

        let (a, mut b) = tokio::io::duplex(64);
        drop(a);
        let err = sniff(&mut b, false).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}

//! `CryptoStream`: frp's AES-128-CFB byte-stream encryption as a tokio stream wrapper.
//!
//! Mirrors golib v0.5.1 `crypto/encode.go` + `crypto/decode.go` (wrapped by `io.WithEncryption`):
//! each direction's writer sends a random 16-byte IV raw, lazily, right before its first
//! ciphertext byte, then one continuous CFB keystream follows for the life of the stream. The
//! reader consumes exactly 16 IV bytes first (they may arrive split over several reads).
//!
//! Used for the control connection (key from `auth.token`, after `LoginResp`) and for work and
//! visitor connections of proxies with `transport.useEncryption` (frp-protocol.md §4, §9). The
//! cipher itself lives in `control::crypto`; this module only does the IO framing.
//!
//! Partial writes: tokio's `poll_write` may accept fewer bytes than offered. Plaintext accepted
//! from the caller is encrypted exactly once into `pending` and the keystream advances exactly
//! once; whatever the inner stream does not take yet stays in `pending` and is written out
//! before any new data (and by `poll_flush`/`poll_shutdown`). Bytes are never re-encrypted.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use control::crypto::{Decryptor, Encryptor, Key, IV_LEN};
use rand::RngCore;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most plaintext accepted by one `poll_write`; bounds the pending buffer at
/// `IV_LEN + MAX_WRITE_CHUNK` bytes for the life of the stream.
const MAX_WRITE_CHUNK: usize = 64 * 1024;

/// An AsyncRead + AsyncWrite wrapper that encrypts what is written and decrypts what is read,
/// wire-compatible with frp's `libio.WithEncryption`.
pub struct CryptoStream<S> {
    inner: S,
    key: Key,
    /// Read half: IV bytes collected so far, then the keystream once all 16 arrived.
    read_iv: [u8; IV_LEN],
    read_iv_len: usize,
    decryptor: Option<Decryptor>,
    /// Write half: the keystream (its IV goes out in front of the first ciphertext byte).
    encryptor: Encryptor,
    write_iv: Option<[u8; IV_LEN]>,
    /// Encrypted bytes accepted from the caller but not yet taken by `inner`.
    pending: Vec<u8>,
    pending_pos: usize,
}

impl<S> CryptoStream<S> {
    /// Wraps `inner`; the write direction uses a fresh random IV.
    pub fn new(inner: S, key: &Key) -> Self {
        let mut iv = [0u8; IV_LEN];
        rand::thread_rng().fill_bytes(&mut iv);
        Self::with_iv(inner, key, iv)
    }

    /// Wraps `inner` with a caller-chosen write IV. Only for tests and golden vectors: a fixed
    /// IV reused with the same key leaks plaintext.
    pub fn with_iv(inner: S, key: &Key, iv: [u8; IV_LEN]) -> Self {
        Self {
            inner,
            key: *key,
            read_iv: [0u8; IV_LEN],
            read_iv_len: 0,
            decryptor: None,
            encryptor: Encryptor::new(key, &iv),
            write_iv: Some(iv),
            pending: Vec::new(),
            pending_pos: 0,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream, mutably. Writing to it directly corrupts the ciphertext stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner stream. Encrypted bytes not yet written out are lost; flush first.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncWrite + Unpin> CryptoStream<S> {
    /// Writes `pending` to `inner` until it is empty.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending_pos < self.pending.len() {
            let n = ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.pending_pos..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending_pos += n;
        }
        self.pending.clear();
        self.pending_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CryptoStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        // The peer's IV comes first; collect all 16 bytes before anything is decrypted.
        while this.decryptor.is_none() {
            let mut iv_buf = ReadBuf::new(&mut this.read_iv[this.read_iv_len..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut iv_buf))?;
            let got = iv_buf.filled().len();
            if got == 0 {
                if this.read_iv_len == 0 {
                    // Clean EOF: the peer never wrote anything.
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stream ended inside the 16-byte encryption IV",
                )));
            }
            this.read_iv_len += got;
            if this.read_iv_len == IV_LEN {
                this.decryptor = Some(Decryptor::new(&this.key, &this.read_iv));
            }
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if let Some(dec) = this.decryptor.as_mut() {
            dec.apply(&mut buf.filled_mut()[before..]);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CryptoStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Earlier accepted bytes go out first so ciphertext order equals keystream order.
        ready!(this.poll_drain(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = buf.len().min(MAX_WRITE_CHUNK);
        if let Some(iv) = this.write_iv.take() {
            // golib `crypto.Writer.Write`: the IV is sent on the first Write, not at creation.
            this.pending.extend_from_slice(&iv);
        }
        let start = this.pending.len();
        this.pending.extend_from_slice(&buf[..n]);
        this.encryptor.apply(&mut this.pending[start..]);
        // The bytes are accepted now (the keystream has moved); a pending inner write is
        // finished by the next write, flush or shutdown.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<S> std::fmt::Debug for CryptoStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoStream")
            .field("iv_received", &(self.read_iv_len == IV_LEN))
            .field("iv_sent", &self.write_iv.is_none())
            .field("pending", &(self.pending.len() - self.pending_pos))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use control::crypto::derive_key;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn iv_is_sent_lazily_then_ciphertext() {
        let key = derive_key(b"abc");
        let (a, mut b) = tokio::io::duplex(1024);
        let mut s = CryptoStream::with_iv(a, &key, [9u8; IV_LEN]);
        s.flush().await.unwrap();
        s.write_all(b"hello").await.unwrap();
        s.flush().await.unwrap();
        let mut got = [0u8; IV_LEN + 5];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..IV_LEN], &[9u8; IV_LEN]);
        let mut expect = *b"hello";
        Encryptor::new(&key, &[9u8; IV_LEN]).apply(&mut expect);
        assert_eq!(&got[IV_LEN..], &expect);
    }

    #[tokio::test]
    async fn eof_before_iv_is_clean_and_inside_iv_is_error() {
        let key = derive_key(b"abc");
        let mut s = CryptoStream::new(&b""[..], &key);
        let mut out = Vec::new();
        assert_eq!(s.read_to_end(&mut out).await.unwrap(), 0);
        let mut s = CryptoStream::new(&[1u8, 2, 3][..], &key);
        let err = s.read_to_end(&mut out).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn two_wrappers_talk() {
        let key = derive_key(b"token");
        let (a, b) = tokio::io::duplex(64);
        let mut a = CryptoStream::new(a, &key);
        let mut b = CryptoStream::new(b, &key);
        let msg: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let send = msg.clone();
        let w = tokio::spawn(async move {
            a.write_all(&send).await.unwrap();
            a.shutdown().await.unwrap();
            a
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        w.await.unwrap();
        assert_eq!(got, msg);
    }
}

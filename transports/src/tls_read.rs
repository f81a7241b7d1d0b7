//! The read buffer under rustls, lent only while bytes wait in it.
//!
//! rustls reads the socket 4 KiB at a time (its deframer grows by `READ_SIZE = 4096`), four
//! `recvfrom` per 16 KiB record; a large buffer below it turns that into one read per wakeup.
//! A fixed `tokio::io::BufReader` would pin that buffer to every TLS connection for its whole
//! life (64 KiB per held idle work connection with tcpMux off), so this reader takes a buffer
//! from a small per-thread pool for one socket read and gives it back as soon as rustls has
//! consumed what it holds, or the read would block.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Size of one socket read under rustls.
pub const TLS_SOCKET_READ_BUF: usize = 64 * 1024;
/// Free buffers kept per thread.
const POOL_CAP: usize = 8;

thread_local! {
    static POOL: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// A [`TLS_SOCKET_READ_BUF`]-byte buffer from this thread's pool; back to the pool on drop.
#[derive(Debug)]
pub(crate) struct Lent(Option<Box<[u8]>>);

impl Lent {
    pub(crate) fn take() -> Self {
        Lent(Some(POOL.with(|p| p.borrow_mut().pop()).unwrap_or_else(
            || vec![0u8; TLS_SOCKET_READ_BUF].into_boxed_slice(),
        )))
    }
}

impl std::ops::Deref for Lent {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl std::ops::DerefMut for Lent {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.0.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(buf) = self.0.take() {
            POOL.with(|p| {
                let mut p = p.borrow_mut();
                if p.len() < POOL_CAP {
                    p.push(buf);
                }
            });
        }
    }
}

/// Free buffers in this thread's pool (for tests).
#[cfg(test)]
pub(crate) fn pooled() -> usize {
    POOL.with(|p| p.borrow().len())
}

/// Largest ciphertext a TLS record may carry (RFC 5246 §6.2.3: 2^14 + 2048).
const MAX_TLS_CIPHERTEXT: usize = (1 << 14) + 2048;

/// Length of the TLS record that starts `buf` (header included), once its header is there.
pub(crate) fn record_len(buf: &[u8]) -> Option<usize> {
    (buf.len() >= 5).then(|| 5 + usize::from(u16::from_be_bytes([buf[3], buf[4]])))
}

/// A buffered reader that holds no buffer while idle (see the module doc). Writes pass through.
///
/// In whole-record mode (for a TLS handshake whose connection is then handed to
/// [`crate::tls_records`]) a read never returns bytes past the end of the TLS record it
/// starts in, and never starts a record that is not completely buffered: rustls then stops
/// between records, so nothing it has read is left half-parsed when the handshake ends, and
/// the bytes after it stay here for [`LentBufReader::into_parts`].
#[derive(Debug)]
pub struct LentBufReader<S> {
    inner: S,
    buf: Option<Lent>,
    pos: usize,
    filled: usize,
    whole_records: bool,
    /// Whole-record mode: bytes of the record being handed out that are still to go (all
    /// of them buffered).
    record_left: usize,
}

impl<S> LentBufReader<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        LentBufReader {
            inner,
            buf: None,
            pos: 0,
            filled: 0,
            whole_records: false,
            record_left: 0,
        }
    }

    /// Wraps `inner`, handing out whole TLS records only (see the type's doc).
    pub(crate) fn whole_records(inner: S) -> Self {
        LentBufReader {
            whole_records: true,
            ..LentBufReader::new(inner)
        }
    }

    /// Back to plain buffering (rustls keeps the records after all).
    pub(crate) fn stop_whole_records(&mut self) {
        self.whole_records = false;
        self.record_left = 0;
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Whether a buffer is held (bytes read from the socket and not yet consumed).
    pub fn holds_buffer(&self) -> bool {
        self.buf.is_some()
    }

    /// The stream, and the bytes read from it and not yet consumed (as the buffer and the
    /// range of it that holds them).
    pub(crate) fn into_parts(self) -> (S, Option<(Lent, usize, usize)>) {
        let rest = self.buf.map(|b| (b, self.pos, self.filled));
        (self.inner, rest)
    }

    fn release(&mut self) {
        self.buf = None;
        self.pos = 0;
        self.filled = 0;
    }

    /// Copies up to `limit` buffered bytes to `out`, releasing the buffer once it is drained.
    fn drain_into(&mut self, out: &mut ReadBuf<'_>, limit: usize) -> usize {
        let mut n = 0;
        if let Some(b) = &self.buf {
            n = (self.filled - self.pos).min(out.remaining()).min(limit);
            out.put_slice(&b[self.pos..self.pos + n]);
            self.pos += n;
        }
        if self.pos >= self.filled {
            self.release();
        }
        n
    }

    /// Whole-record mode: bytes that may be handed out now, up to the end of the record at
    /// `pos`; 0 while that record is not completely buffered.
    fn record_ready(&mut self) -> usize {
        if self.record_left > 0 {
            return self.record_left;
        }
        let Some(b) = &self.buf else { return 0 };
        let avail = &b[self.pos..self.filled];
        match record_len(avail) {
            // Not a TLS record header (a content type other than 20..=23, a major version
            // other than 3, or a length beyond any record): hand the bytes on as they come,
            // so rustls rejects them at once instead of this reader waiting for a "record"
            // that may never complete.
            Some(len)
                if !(20..=23).contains(&avail[0])
                    || avail[1] != 3
                    || len > 5 + MAX_TLS_CIPHERTEXT =>
            {
                avail.len()
            }
            Some(len) if len <= avail.len() => {
                self.record_left = len;
                len
            }
            _ => 0,
        }
    }
}

impl<S: AsyncRead + Unpin> LentBufReader<S> {
    /// Whole-record mode: reads until the record at `pos` is complete (or EOF), then hands
    /// out up to its end.
    fn poll_read_record(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let ready = self.record_ready();
            if ready > 0 {
                let n = self.drain_into(out, ready);
                self.record_left = self.record_left.saturating_sub(n);
                return Poll::Ready(Ok(()));
            }
            let buf = self.buf.get_or_insert_with(Lent::take);
            if self.pos > 0 {
                buf.copy_within(self.pos..self.filled, 0);
                self.filled -= self.pos;
                self.pos = 0;
            }
            let mut rb = ReadBuf::new(&mut buf[self.filled..]);
            match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        // EOF: hand on what is left (a truncated record) and let rustls judge.
                        self.drain_into(out, usize::MAX);
                        return Poll::Ready(Ok(()));
                    }
                    self.filled += n;
                }
                other => {
                    if self.filled == 0 {
                        self.release();
                    }
                    return other;
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LentBufReader<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.whole_records {
            return this.poll_read_record(cx, out);
        }
        if this.buf.is_some() {
            this.drain_into(out, usize::MAX);
            return Poll::Ready(Ok(()));
        }
        if out.remaining() >= TLS_SOCKET_READ_BUF {
            return Pin::new(&mut this.inner).poll_read(cx, out);
        }
        let mut buf = Lent::take();
        let mut rb = ReadBuf::new(&mut buf);
        match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n == 0 {
                    return Poll::Ready(Ok(()));
                }
                this.buf = Some(buf);
                this.pos = 0;
                this.filled = n;
                this.drain_into(out, usize::MAX);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LentBufReader<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(flavor = "current_thread")]
    async fn small_reads_see_every_byte_and_an_idle_reader_holds_nothing() {
        let (a, mut b) = tokio::io::duplex(256 * 1024);
        let mut r = LentBufReader::new(a);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        b.write_all(&data).await.unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while got.len() < data.len() {
            let n = r.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(got, data);
        // Everything consumed: the buffer went back to the pool.
        assert!(!r.holds_buffer());
        assert!(pooled() >= 1);
        // A read that would block does not keep a buffer either.
        let pending = futures_poll_once(&mut r).await;
        assert!(pending);
        assert!(!r.holds_buffer());
        // EOF passes through.
        drop(b);
        assert_eq!(r.read(&mut chunk).await.unwrap(), 0);
        assert!(!r.holds_buffer());
    }

    /// Polls one read once; true when it was pending.
    async fn futures_poll_once(r: &mut LentBufReader<tokio::io::DuplexStream>) -> bool {
        let mut chunk = [0u8; 16];
        std::future::poll_fn(|cx| {
            let mut rb = ReadBuf::new(&mut chunk);
            Poll::Ready(Pin::new(&mut *r).poll_read(cx, &mut rb).is_pending())
        })
        .await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn partial_drain_keeps_the_rest() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut r = LentBufReader::new(a);
        b.write_all(b"hello world").await.unwrap();
        let mut five = [0u8; 5];
        r.read_exact(&mut five).await.unwrap();
        assert_eq!(&five, b"hello");
        assert!(r.holds_buffer());
        let mut rest = [0u8; 6];
        r.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b" world");
        assert!(!r.holds_buffer());
    }

    fn record(kind: u8, body_len: usize, fill: u8) -> Vec<u8> {
        let mut r = vec![kind, 3, 3, (body_len >> 8) as u8, body_len as u8];
        r.resize(5 + body_len, fill);
        r
    }

    /// Whole-record mode hands out one record at a time, never past its end, withholds a
    /// record until it is complete, and leaves the rest for `into_parts`.
    #[tokio::test(flavor = "current_thread")]
    async fn whole_record_mode_stops_at_record_boundaries() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut r = LentBufReader::whole_records(a);
        let first = record(22, 300, 1);
        let second = record(23, 5000, 2);
        let mut wire = first.clone();
        wire.extend_from_slice(&second[..2000]);
        b.write_all(&wire).await.unwrap();
        let mut out = vec![0u8; 64 * 1024];
        let n = r.read(&mut out).await.unwrap();
        assert_eq!(&out[..n], &first[..], "exactly the first record");
        // The second is incomplete: nothing is handed out.
        let mut chunk = [0u8; 16];
        let pending = std::future::poll_fn(|cx| {
            let mut rb = ReadBuf::new(&mut chunk);
            Poll::Ready(Pin::new(&mut r).poll_read(cx, &mut rb).is_pending())
        })
        .await;
        assert!(pending);
        b.write_all(&second[2000..]).await.unwrap();
        b.write_all(&record(23, 10, 3)).await.unwrap();
        // A small reader gets the second record in pieces, still not past its end.
        let mut got = Vec::new();
        while got.len() < second.len() {
            let mut small = [0u8; 1000];
            let n = r.read(&mut small).await.unwrap();
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(got, second);
        let (_, rest) = r.into_parts();
        let (buf, pos, filled) = rest.expect("the third record stays buffered");
        assert_eq!(&buf[pos..filled], &record(23, 10, 3)[..]);
    }

    /// Bytes that are not a TLS record header are handed on at once, not waited on.
    #[tokio::test(flavor = "current_thread")]
    async fn whole_record_mode_passes_garbage_through() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut r = LentBufReader::whole_records(a);
        // Content type 0x61 ('a'), claiming 0x6262 bytes.
        b.write_all(b"abbbbbbb").await.unwrap();
        let mut out = [0u8; 64];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), r.read(&mut out))
            .await
            .expect("not waited on")
            .unwrap();
        assert_eq!(&out[..n], b"abbbbbbb");
    }
}

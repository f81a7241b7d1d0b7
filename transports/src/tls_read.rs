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

fn take() -> Box<[u8]> {
    POOL.with(|p| p.borrow_mut().pop())
        .unwrap_or_else(|| vec![0u8; TLS_SOCKET_READ_BUF].into_boxed_slice())
}

fn give_back(buf: Box<[u8]>) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_CAP {
            p.push(buf);
        }
    });
}

/// Free buffers in this thread's pool (for tests).
#[cfg(test)]
fn pooled() -> usize {
    POOL.with(|p| p.borrow().len())
}

/// A buffered reader that holds no buffer while idle (see the module doc). Writes pass through.
#[derive(Debug)]
pub struct LentBufReader<S> {
    inner: S,
    buf: Option<Box<[u8]>>,
    pos: usize,
    filled: usize,
}

impl<S> LentBufReader<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        LentBufReader {
            inner,
            buf: None,
            pos: 0,
            filled: 0,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Whether a buffer is held (bytes read from the socket and not yet consumed).
    pub fn holds_buffer(&self) -> bool {
        self.buf.is_some()
    }

    fn release(&mut self) {
        if let Some(b) = self.buf.take() {
            give_back(b);
        }
        self.pos = 0;
        self.filled = 0;
    }

    /// Copies buffered bytes to `out`, releasing the buffer once it is drained.
    fn drain_into(&mut self, out: &mut ReadBuf<'_>) {
        if let Some(b) = &self.buf {
            let n = (self.filled - self.pos).min(out.remaining());
            out.put_slice(&b[self.pos..self.pos + n]);
            self.pos += n;
        }
        if self.pos >= self.filled {
            self.release();
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
        if this.buf.is_some() {
            this.drain_into(out);
            return Poll::Ready(Ok(()));
        }
        if out.remaining() >= TLS_SOCKET_READ_BUF {
            return Pin::new(&mut this.inner).poll_read(cx, out);
        }
        let mut buf = take();
        let mut rb = ReadBuf::new(&mut buf);
        match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n == 0 {
                    give_back(buf);
                    return Poll::Ready(Ok(()));
                }
                this.buf = Some(buf);
                this.pos = 0;
                this.filled = n;
                this.drain_into(out);
                Poll::Ready(Ok(()))
            }
            other => {
                give_back(buf);
                other
            }
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

impl<S> Drop for LentBufReader<S> {
    fn drop(&mut self) {
        self.release();
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
}

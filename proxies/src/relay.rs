//! Moving bytes between a user connection and a work connection.
//!
//! * [`pump`] / [`pump_report`]: the bidirectional copy frp does with golib `io.Join`, with a
//!   16 KiB buffer per direction that is held only while that direction moves data: it comes
//!   from [`crate::pool`] right before a read and goes back when the read would block with
//!   nothing left to write, so an idle joined connection holds no copy buffer at all (golib
//!   holds its pooled 16 KiB buffer per direction for the whole connection).
//!   Unlike `io.Join`, which closes both connections as soon as either direction ends, EOF on
//!   one side only shuts down the *write* half of the other side; the opposite direction keeps
//!   flowing until it ends too. Callers that want frp's "first EOF ends all" or an idle timeout
//!   wrap the future in their own `select!`/`timeout`.
//! * [`wrap_stream`]: applies a proxy's `useEncryption` / `useCompression` in frp's order
//!   (encryption on the raw conn, compression on top: `SnappyStream<CryptoStream<S>>`,
//!   frp `server/proxy/proxy.go` `HandleUserTCPConnection`, `client/proxy/proxy.go`).
//!   Bandwidth limiting is not part of it because frp puts it at different layers per side
//!   (client: on the raw work conn; server: on top of compression); see [`crate::limit`].

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use control::crypto::Key;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::compress_stream::SnappyStream;
use crate::crypto_stream::CryptoStream;
use crate::pool::RelayBuf;

/// How long the remaining direction of a half-closed relay may sit idle before the relay ends
/// (see [`join_report`]).
pub const HALF_CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(10);

/// Per-direction copy buffer size (golib `io.Join` uses 16 KiB pooled buffers).
pub use crate::pool::RELAY_BUF_SIZE;

/// What a finished (or failed) [`pump_report`] moved.
#[derive(Debug)]
pub struct PumpReport {
    /// Bytes read from `a` and written to `b`.
    pub a_to_b: u64,
    /// Bytes read from `b` and written to `a`.
    pub b_to_a: u64,
    /// The first IO error, if the copy stopped because of one.
    pub error: Option<io::Error>,
}

/// Copies `a` → `b` and `b` → `a` until both directions reached EOF, propagating each EOF as a
/// write shutdown on the other side. Returns `(a_to_b, b_to_a)` byte counts; with
/// `a` = user conn and `b` = work conn these are frp's traffic-in and traffic-out
/// (`server/proxy/proxy.go` `HandleUserTCPConnection` + golib `io.Join`).
pub async fn pump<A, B>(a: &mut A, b: &mut B) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let report = pump_report(a, b).await;
    match report.error {
        Some(e) => Err(e),
        None => Ok((report.a_to_b, report.b_to_a)),
    }
}

/// Like [`pump`], but keeps the byte counts when the copy ends with an error, so traffic
/// accounting (frp's `metrics.Server.AddTrafficIn/Out`) sees what actually moved.
pub async fn pump_report<A, B>(a: &mut A, b: &mut B) -> PumpReport
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let (mut ab, mut ba) = (Direction::new(), Direction::new());
    drive_join(None, |cx| {
        let done = (|| {
            let ab_done = ab.poll_copy(cx, &mut *a, &mut *b)?.is_ready();
            Ok((ab_done, ba.poll_copy(cx, &mut *b, &mut *a)?.is_ready()))
        })();
        (done, ab.total, ba.total)
    })
    .await
}

/// Like [`pump_report`], but once one direction has ended (its EOF passed on as a write
/// shutdown), the other may continue only while it keeps moving data: after `linger` without
/// progress the join ends. frp's `io.Join` closes both connections at the first EOF; we keep
/// half-closed exchanges working (a request whose sender shut down its write side still gets
/// its response) without letting a peer that went silent — a black-holed work connection, a
/// lost FIN — hold the relay, its buffers and both sockets forever.
pub async fn join_report<A, B>(a: &mut A, b: &mut B, linger: std::time::Duration) -> PumpReport
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let (mut ab, mut ba) = (Direction::new(), Direction::new());
    drive_join(Some(linger), |cx| {
        let done = (|| {
            let ab_done = ab.poll_copy(cx, &mut *a, &mut *b)?.is_ready();
            Ok((ab_done, ba.poll_copy(cx, &mut *b, &mut *a)?.is_ready()))
        })();
        (done, ab.total, ba.total)
    })
    .await
}

/// The loop shared by every join (this buffered relay, `crate::splice`, `crate::mux_relay`):
/// `step` advances both directions and returns whether each is done (or the first error),
/// with the bytes moved a → b and b → a so far. Ends when both are done, at the first error,
/// or, with a `linger`, once one is done and the other has not moved for that long
/// ([`join_report`]).
pub(crate) async fn drive_join(
    linger: Option<std::time::Duration>,
    mut step: impl FnMut(&mut Context<'_>) -> (io::Result<(bool, bool)>, u64, u64),
) -> PumpReport {
    let mut idle = linger.map(Linger::new);
    let (mut a_to_b, mut b_to_a) = (0, 0);
    let result = poll_fn(|cx| {
        let (done, ab, ba) = step(cx);
        (a_to_b, b_to_a) = (ab, ba);
        let (ab_done, ba_done) = done?;
        match &mut idle {
            Some(idle) => idle.poll_end(cx, ab_done, ba_done, ab + ba).map(Ok),
            None if ab_done && ba_done => Poll::Ready(Ok(())),
            None => Poll::Pending,
        }
    })
    .await;
    PumpReport {
        a_to_b,
        b_to_a,
        error: result.err(),
    }
}

/// [`join_report`]'s end condition ([`drive_join`]): both directions done, or one done and the
/// other without progress for `linger`.
struct Linger {
    linger: std::time::Duration,
    /// Armed at the first half-close; boxed because most joins never need it.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    moved: u64,
}

impl Linger {
    fn new(linger: std::time::Duration) -> Self {
        Self {
            linger,
            timer: None,
            moved: 0,
        }
    }

    /// Ready when the join should end, given which directions are done and the bytes moved so
    /// far in both directions together.
    fn poll_end(
        &mut self,
        cx: &mut Context<'_>,
        ab_done: bool,
        ba_done: bool,
        total: u64,
    ) -> Poll<()> {
        if ab_done && ba_done {
            return Poll::Ready(());
        }
        if !(ab_done || ba_done) {
            return Poll::Pending;
        }
        // Half-closed: restart the idle timer whenever the remaining direction moves.
        let linger = self.linger;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(linger)));
        if total != self.moved {
            self.moved = total;
            timer.as_mut().reset(tokio::time::Instant::now() + linger);
        }
        timer.as_mut().poll(cx)
    }
}

/// One copy direction: its (borrowed) buffer and progress.
pub(crate) struct Direction {
    /// Held only while bytes are in flight or a read is being attempted; `None` while the
    /// direction waits for its reader (an idle direction costs no buffer).
    buf: Option<RelayBuf>,
    /// Unwritten data is `buf[pos..cap]`.
    pos: usize,
    cap: usize,
    pub(crate) total: u64,
    read_eof: bool,
    /// Data was written since the last flush.
    need_flush: bool,
    done: bool,
    /// A read filled the whole buffer ([`Direction::poll_copy_until_full`]).
    filled: bool,
}

impl Direction {
    pub(crate) fn new() -> Self {
        Self {
            buf: None,
            pos: 0,
            cap: 0,
            total: 0,
            read_eof: false,
            need_flush: false,
            done: false,
            filled: false,
        }
    }

    pub(crate) fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
        writer: &mut W,
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        self.poll_copy_with(cx, reader, writer, false)
            .map_ok(|_| ())
    }

    /// Like [`Direction::poll_copy`], but also returns once a read has filled the whole buffer
    /// and those bytes are written (the buffer released): `Ready(Ok(true))` then, so that the
    /// caller can move bulk data another way (`crate::splice`); `Ready(Ok(false))` when the
    /// direction is done.
    pub(crate) fn poll_copy_until_full<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
        writer: &mut W,
    ) -> Poll<io::Result<bool>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        self.poll_copy_with(cx, reader, writer, true)
    }

    fn poll_copy_with<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
        writer: &mut W,
        stop_when_full: bool,
    ) -> Poll<io::Result<bool>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        if self.done {
            return Poll::Ready(Ok(false));
        }
        loop {
            if self.pos == self.cap && !self.read_eof {
                let buf = self.buf.get_or_insert_with(RelayBuf::take);
                let mut rb = ReadBuf::new(buf);
                match Pin::new(&mut *reader).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => {
                        self.buf = None;
                        return Poll::Ready(Err(e));
                    }
                    Poll::Pending => {
                        // A pending read consumed nothing and everything read before is
                        // written: the buffer holds no data, so it goes back to the pool.
                        self.buf = None;
                        // Nothing more to send right now: make sure what was written leaves
                        // any buffering wrapper (crypto/snappy keep accepted bytes pending).
                        ready!(poll_flush_written(cx, &mut *writer, &mut self.need_flush))?;
                        return Poll::Pending;
                    }
                }
                let n = rb.filled().len();
                if n == 0 {
                    self.read_eof = true;
                    self.buf = None;
                } else {
                    self.pos = 0;
                    self.cap = n;
                    self.filled |= n == rb.capacity();
                }
            }
            if let Some(buf) = &self.buf {
                while self.pos < self.cap {
                    let n =
                        ready!(Pin::new(&mut *writer).poll_write(cx, &buf[self.pos..self.cap]))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    self.pos += n;
                    self.total += n as u64;
                    self.need_flush = true;
                }
            }
            if self.read_eof {
                // Half-close: the reader is done, so end the writer's send side.
                ready!(poll_half_close(cx, &mut *writer, &mut self.need_flush))?;
                self.done = true;
                return Poll::Ready(Ok(false));
            }
            if stop_when_full && self.filled {
                ready!(poll_flush_written(cx, &mut *writer, &mut self.need_flush))?;
                self.buf = None;
                return Poll::Ready(Ok(true));
            }
        }
    }
}

/// Flushes `writer` if anything was written since the last flush (`need_flush`): what a
/// direction does when its reader runs dry, so buffering wrappers (crypto, snappy) let go.
pub(crate) fn poll_flush_written<W>(
    cx: &mut Context<'_>,
    writer: &mut W,
    need_flush: &mut bool,
) -> Poll<io::Result<()>>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    if *need_flush {
        ready!(Pin::new(writer).poll_flush(cx))?;
        *need_flush = false;
    }
    Poll::Ready(Ok(()))
}

/// After the reader's EOF: flushes `writer`, then shuts its send side down.
pub(crate) fn poll_half_close<W>(
    cx: &mut Context<'_>,
    writer: &mut W,
    need_flush: &mut bool,
) -> Poll<io::Result<()>>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    ready!(Pin::new(&mut *writer).poll_flush(cx))?;
    *need_flush = false;
    Pin::new(writer).poll_shutdown(cx)
}

/// A stream with a proxy's optional encryption and compression applied (see [`wrap_stream`]).
/// The wrapper states are boxed: cipher and snappy state take KiBs, a plain conn takes none.
#[derive(Debug)]
pub enum WrappedStream<S> {
    /// Neither flag set.
    Plain(S),
    /// `useEncryption` only.
    Encrypted(Box<CryptoStream<S>>),
    /// `useCompression` only.
    Compressed(Box<SnappyStream<S>>),
    /// Both: compression over encryption, as frp.
    EncryptedCompressed(Box<SnappyStream<CryptoStream<S>>>),
}

/// Applies `useEncryption` (when `key` is given: the derived `auth.token`, or a visitor's
/// `secretKey`) and `useCompression` to `s` in frp's order.
pub fn wrap_stream<S>(s: S, key: Option<&Key>, compress: bool) -> WrappedStream<S> {
    match (key, compress) {
        (None, false) => WrappedStream::Plain(s),
        (Some(k), false) => WrappedStream::Encrypted(Box::new(CryptoStream::new(s, k))),
        (None, true) => WrappedStream::Compressed(Box::new(SnappyStream::new(s))),
        (Some(k), true) => {
            WrappedStream::EncryptedCompressed(Box::new(SnappyStream::new(CryptoStream::new(s, k))))
        }
    }
}

/// Forwards a poll method to whichever variant is active.
macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            WrappedStream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            WrappedStream::Encrypted($s) => {
                let $s = Pin::new($s);
                $e
            }
            WrappedStream::Compressed($s) => {
                let $s = Pin::new($s);
                $e
            }
            WrappedStream::EncryptedCompressed($s) => {
                let $s = Pin::new($s);
                $e
            }
        }
    };
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WrappedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        dispatch!(self, s => s.poll_read(cx, buf))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WrappedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        dispatch!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        dispatch!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        dispatch!(self, s => s.poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// Two real TCP pairs on 127.0.0.1: the client half-closes, the far end still answers.
    #[tokio::test]
    async fn tcp_half_close_propagates() {
        let l1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (a1, a2) = (l1.local_addr().unwrap(), l2.local_addr().unwrap());
        let relay = tokio::spawn(async move {
            let (mut user, _) = l1.accept().await.unwrap();
            let mut upstream = TcpStream::connect(a2).await.unwrap();
            pump(&mut user, &mut upstream).await
        });
        let backend = tokio::spawn(async move {
            let (mut s, _) = l2.accept().await.unwrap();
            let mut req = Vec::new();
            s.read_to_end(&mut req).await.unwrap();
            s.write_all(format!("got {} bytes", req.len()).as_bytes())
                .await
                .unwrap();
        });
        let client = async {
            let mut c = TcpStream::connect(a1).await.unwrap();
            c.write_all(&[5u8; 100_000]).await.unwrap();
            c.shutdown().await.unwrap();
            let mut resp = String::new();
            c.read_to_string(&mut resp).await.unwrap();
            resp
        };
        let resp = tokio::time::timeout(Duration::from_secs(10), client)
            .await
            .unwrap();
        assert_eq!(resp, "got 100000 bytes");
        backend.await.unwrap();
        let counts = relay.await.unwrap().unwrap();
        assert_eq!(counts, (100_000, 16));
    }

    #[test]
    fn wrap_stream_picks_frp_order() {
        let k = [1u8; 16];
        assert!(matches!(
            wrap_stream((), None, false),
            WrappedStream::Plain(())
        ));
        assert!(matches!(
            wrap_stream((), Some(&k), false),
            WrappedStream::Encrypted(_)
        ));
        assert!(matches!(
            wrap_stream((), None, true),
            WrappedStream::Compressed(_)
        ));
        assert!(matches!(
            wrap_stream((), Some(&k), true),
            WrappedStream::EncryptedCompressed(_)
        ));
    }
}

#[cfg(test)]
mod join_tests {
    use std::time::Duration;

    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

    use super::join_report;

    /// A half-closed exchange still gets its answer; a side that goes silent after the other
    /// closed ends the join after `linger` (paused clock, so no real waiting).
    #[tokio::test(start_paused = true)]
    async fn half_close_answered_then_silence_ends_the_join() {
        let (mut user, mut user_far) = duplex(1024);
        let (mut work, mut work_far) = duplex(1024);
        let join = tokio::spawn(async move {
            join_report(&mut user_far, &mut work_far, Duration::from_secs(10)).await
        });
        user.write_all(b"request").await.expect("write");
        user.shutdown().await.expect("shutdown");
        let mut req = [0u8; 7];
        work.read_exact(&mut req).await.expect("request through");
        assert_eq!(&req, b"request");
        let mut eof = [0u8; 1];
        assert_eq!(work.read(&mut eof).await.expect("eof"), 0, "EOF passed on");
        tokio::time::sleep(Duration::from_secs(5)).await;
        work.write_all(b"response").await.expect("write");
        let mut resp = [0u8; 8];
        user.read_exact(&mut resp)
            .await
            .expect("response after 5 s");
        assert_eq!(&resp, b"response");
        // The work side never closes: the join ends 10 s after the last byte moved.
        let report = tokio::time::timeout(Duration::from_secs(11), join)
            .await
            .expect("join ended by linger")
            .expect("task");
        assert_eq!((report.a_to_b, report.b_to_a), (7, 8));
        assert!(report.error.is_none());
    }
}

#[cfg(test)]
mod pool_tests {
    use std::time::Duration;

    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

    use super::join_report;
    use crate::pool::{free_on_this_thread, lent_on_this_thread};

    /// Lets the spawned relay run until it waits on its streams (current-thread runtime).
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    /// A joined connection holds copy buffers only while bytes wait to be written; idle, it
    /// holds none, and the buffers it used are back on the free list.
    #[tokio::test]
    async fn idle_join_holds_no_buffer() {
        let (mut user, user_far) = duplex(64 * 1024);
        let (mut work, work_far) = duplex(1024);
        let join = tokio::spawn(async move {
            let (mut a, mut b) = (user_far, work_far);
            join_report(&mut a, &mut b, Duration::from_secs(10)).await
        });
        // A hundred more idle joins: reading found nothing, so none keeps a buffer, and the
        // pool holds the one buffer each of them tried a read with, in turn.
        let mut idle = Vec::new();
        for _ in 0..100 {
            let ((near_a, mut a), (near_b, mut b)) = (duplex(1024), duplex(1024));
            let task =
                tokio::spawn(
                    async move { join_report(&mut a, &mut b, Duration::from_secs(10)).await },
                );
            idle.push((near_a, near_b, task));
        }
        settle().await;
        assert!(
            idle.iter().all(|(_, _, t)| !t.is_finished()),
            "still joined"
        );
        assert_eq!(lent_on_this_thread(), 0, "idle joins hold nothing");
        assert_eq!(free_on_this_thread(), 1);

        // 8 KiB into a 1 KiB pipe that nobody reads: the user→work direction must keep its
        // buffer (it holds unwritten bytes).
        user.write_all(&[7u8; 8192]).await.expect("write");
        settle().await;
        assert_eq!(
            lent_on_this_thread(),
            1,
            "a blocked writer keeps its buffer"
        );

        let mut got = vec![0u8; 8192];
        work.read_exact(&mut got).await.expect("drain");
        work.write_all(b"pong").await.expect("write back");
        let mut pong = [0u8; 4];
        user.read_exact(&mut pong).await.expect("read back");
        assert_eq!(&pong, b"pong");
        settle().await;
        assert_eq!(lent_on_this_thread(), 0, "idle again: no buffer held");
        let free = free_on_this_thread();
        assert!(
            (1..=2).contains(&free),
            "buffers went back to the pool ({free})"
        );

        drop((user, work));
        let report = join.await.expect("join");
        assert_eq!((report.a_to_b, report.b_to_a), (8192, 4));
        assert_eq!(lent_on_this_thread(), 0);
    }
}

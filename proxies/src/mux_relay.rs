//! The relay between a yamux stream and another connection (normally the user's or the local
//! service's TCP socket), without copying what the stream received.
//!
//! The mux reader already holds each received frame as a `Bytes` slice of its read chunk
//! (`transports::mux`). The buffered relay ([`crate::relay`]) copied those bytes into its 16 KiB
//! buffer and wrote them out 16 KiB at a time; here the stream's queued slices are taken as
//! they are ([`MuxStream::poll_read_chunks`]) and written with one vectored write, up to
//! [`MAX_BATCH`] per call. The other direction (socket → stream) reads the socket straight
//! into the session's outbound buffer as one frame of up to [`MAX_READ`] bytes
//! ([`MuxStream::poll_write_from`]): no relay buffer, no copy out of it.
//!
//! When the other side is a bare TCP socket, [`join_mux_tcp`] also lends it to the session
//! ([`MuxStream::attach_sink`]), which then writes what arrives for a waiting relay itself: a
//! keep-alive request or response reaches its socket without a wake-up and a poll of the
//! relay's task (−10 to −12 % user-space instructions per request and side; bench/NOTES.md,
//! "Writing through").
//!
//! Profiled on one iperf3 stream through the default transport, the stream → socket copy
//! removed here was 2 % of frpc's and frps's samples together, and the 16 KiB writes to the
//! local socket cost a wake-up of the receiving end each; the socket → stream copy was 2.4 %
//! of the samples with 8 streams, all of it in frps, the busiest thread of that run.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, Interest};
use tokio::net::TcpStream;
use transports::mux::lent::{self, advance};
use transports::mux::MuxStream;

use crate::relay::{drive_join, poll_flush_written, poll_half_close, PumpReport};

/// Most bytes taken from the stream for one write. Bounds what a slow writer holds beyond the
/// stream's window (the window is re-granted as bytes are taken).
pub const MAX_BATCH: usize = 256 * 1024;

/// Most bytes read from the socket into one frame (yamux frames carry up to 64 KiB here).
pub const MAX_READ: usize = 64 * 1024;

/// Slots of the pending queue kept while a direction is idle (32 bytes each).
const IDLE_SLOTS: usize = 4;

/// Most slices per vectored write (Linux takes up to 1024; the frames are ≤ 64 KiB each).
const MAX_IOV: usize = 64;

/// Joins `mux` and `other` until both directions have ended, as
/// [`crate::relay::join_report`] does (same half-close and `linger` rules). In the report,
/// `a_to_b` counts what went from `mux` to `other`. `other` must not be (or wrap) a stream of
/// `mux`'s own session ([`MuxStream::poll_write_from`]).
pub async fn join_mux<S>(mux: &mut MuxStream, other: &mut S, linger: Duration) -> PumpReport
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    join_with(
        mux,
        other,
        |cx, other, mux| mux.poll_write_from(cx, other, MAX_READ),
        None,
        linger,
    )
    .await
}

/// [`join_mux`] for a TCP socket, which the session's reader may write to itself while this
/// relay waits on the stream with nothing left to write ([`MuxStream::attach_sink`]): each
/// message then reaches the socket without a wake-up and a poll of the relay's task.
pub async fn join_mux_tcp(mux: &mut MuxStream, tcp: TcpStream, linger: Duration) -> PumpReport {
    /// Ends the loan however the join ends (also when its future is dropped).
    struct Lent<'a>(&'a mut MuxStream);
    impl Drop for Lent<'_> {
        fn drop(&mut self) {
            self.0.detach_sink();
        }
    }
    let mut tcp = SharedTcp(Arc::new(tcp));
    let through = Arc::new(AtomicU64::new(0));
    mux.attach_sink(tcp.0.clone(), through.clone());
    let loan = Lent(mux);
    join_with(
        &mut *loan.0,
        &mut tcp,
        |cx, tcp, mux| mux.poll_write_from_tcp(cx, &tcp.0, MAX_READ),
        Some(&through),
        linger,
    )
    .await
}

/// The body of [`join_mux`] and [`join_mux_tcp`]: `read_into` reads `other` into a frame of
/// `mux`; `through` counts what the session wrote to `other` itself.
async fn join_with<S>(
    mux: &mut MuxStream,
    other: &mut S,
    mut read_into: impl FnMut(&mut Context<'_>, &mut S, &mut MuxStream) -> Poll<io::Result<usize>>,
    through: Option<&AtomicU64>,
    linger: Duration,
) -> PumpReport
where
    S: AsyncWrite + Unpin + ?Sized,
{
    let (mut down, mut up) = (ChunkDirection::new(), FrameDirection::default());
    let wakes = DirWakes::new();
    drive_join(Some(linger), |cx| {
        let (poll_down, poll_up) = wakes.due(cx.waker());
        let done = (|| {
            if poll_down {
                let mut cx = Context::from_waker(&wakes.down);
                // Ready means done: the direction keeps going until it waits.
                let _ = down.poll_copy(&mut cx, &mut *mux, &mut *other)?;
            }
            if poll_up {
                let mut cx = Context::from_waker(&wakes.up);
                let _ = up.poll_copy(&mut cx, &mut *other, &mut *mux, &mut read_into)?;
            }
            Ok((down.done, up.done))
        })();
        // What the session wrote for us counts as progress too (the linger after a half-close).
        let down_total = down.total + through.map_or(0, |t| t.load(Ordering::Relaxed));
        (done, down_total, up.total)
    })
    .await
}

/// A TCP socket shared between its relay ([`join_mux_tcp`]) and the session's reader, which
/// writes to it through `try_write` while the relay waits. Written to and read through shared
/// references, with tokio's readiness as `TcpStream`'s own `AsyncWrite` uses it.
struct SharedTcp(Arc<TcpStream>);

impl AsyncWrite for SharedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        lent::poll_op(&self.0, cx, Interest::WRITABLE, buf.len(), || {
            self.0.try_write(buf)
        })
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        lent::poll_op(&self.0, cx, Interest::WRITABLE, len, || {
            self.0.try_write_vectored(bufs)
        })
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// `shutdown(SHUT_WR)`, as `TcpStream::poll_shutdown`.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let sock = socket2::SockRef::from(&*self.0);
        Poll::Ready(sock.shutdown(std::net::Shutdown::Write))
    }
}

/// A waker per direction of [`join_mux`], so that a wake-up polls only the direction it was
/// for. Each request of a keep-alive exchange wakes the relay twice (the request arrives on
/// one side, the response on the other); polling both directions every time cost two polls
/// that could only find nothing, each taking the session's lock or the socket's readiness
/// lock (5–6 % of frps's user-space instructions per request, callgrind).
struct DirWakes {
    down_flag: Arc<DirWake>,
    up_flag: Arc<DirWake>,
    down: Waker,
    up: Waker,
}

/// One direction's waker: marks the direction due and wakes the relay's task.
struct DirWake {
    due: AtomicBool,
    task: AtomicWaker,
}

impl Wake for DirWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.due.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl DirWakes {
    fn new() -> Self {
        let flag = || {
            Arc::new(DirWake {
                // Both directions are polled the first time.
                due: AtomicBool::new(true),
                task: AtomicWaker::new(),
            })
        };
        let (down_flag, up_flag) = (flag(), flag());
        Self {
            down: Waker::from(down_flag.clone()),
            up: Waker::from(up_flag.clone()),
            down_flag,
            up_flag,
        }
    }

    /// Which directions to poll now; registers `task` first, so that a wake-up after the
    /// check still reaches the task.
    fn due(&self, task: &Waker) -> (bool, bool) {
        self.down_flag.task.register(task);
        self.up_flag.task.register(task);
        (
            self.down_flag.due.swap(false, Ordering::AcqRel),
            self.up_flag.due.swap(false, Ordering::AcqRel),
        )
    }
}

/// Stream → writer: the stream's received slices, written as they are.
struct ChunkDirection {
    /// Taken from the stream, not yet written (at most [`MAX_BATCH`] bytes).
    pending: VecDeque<Bytes>,
    total: u64,
    read_eof: bool,
    need_flush: bool,
    done: bool,
}

impl ChunkDirection {
    fn new() -> Self {
        Self {
            pending: VecDeque::new(),
            total: 0,
            read_eof: false,
            need_flush: false,
            done: false,
        }
    }

    fn poll_copy<W>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut MuxStream,
        writer: &mut W,
    ) -> Poll<io::Result<()>>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        loop {
            if self.pending.is_empty() && !self.read_eof {
                match reader.poll_read_chunks(cx, MAX_BATCH, &mut self.pending) {
                    Poll::Ready(Ok(0)) => self.read_eof = true,
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        // Idle: a queue that grew during a burst is not kept for the life of
                        // a held connection (a few slots are, to spare small exchanges the
                        // allocator).
                        if self.pending.capacity() > IDLE_SLOTS {
                            self.pending = VecDeque::new();
                        }
                        // Nothing more to send right now: push out what a buffering writer
                        // may still hold.
                        ready!(poll_flush_written(cx, &mut *writer, &mut self.need_flush))?;
                        return Poll::Pending;
                    }
                }
            }
            while !self.pending.is_empty() {
                let n = ready!(poll_write_chunks(cx, &mut *writer, &self.pending))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                advance(&mut self.pending, n);
                self.total += n as u64;
                self.need_flush = true;
            }
            if self.read_eof {
                // Half-close: the stream's peer is done, so end the writer's send side.
                ready!(poll_half_close(cx, &mut *writer, &mut self.need_flush))?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// Reader → stream: each read lands in the session's outbound buffer as a data frame.
#[derive(Default)]
struct FrameDirection {
    total: u64,
    read_eof: bool,
    done: bool,
}

impl FrameDirection {
    fn poll_copy<R: ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
        mux: &mut MuxStream,
        read_into: impl FnMut(&mut Context<'_>, &mut R, &mut MuxStream) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<()>> {
        let mut read_into = read_into;
        if self.done {
            return Poll::Ready(Ok(()));
        }
        while !self.read_eof {
            // Pending: the reader has nothing, or the stream no window (each registered).
            match ready!(read_into(cx, reader, mux))? {
                0 => self.read_eof = true,
                n => self.total += n as u64,
            }
        }
        // Half-close: the reader is done, so end the stream's send side (FIN after the data).
        let mut need_flush = false;
        ready!(poll_half_close(cx, &mut *mux, &mut need_flush))?;
        self.done = true;
        Poll::Ready(Ok(()))
    }
}

/// One write of the front of `chunks`: vectored when the writer supports it.
fn poll_write_chunks<W>(
    cx: &mut Context<'_>,
    writer: &mut W,
    chunks: &VecDeque<Bytes>,
) -> Poll<io::Result<usize>>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    let writer = Pin::new(writer);
    if !writer.is_write_vectored() || chunks.len() == 1 {
        return writer.poll_write(cx, &chunks[0]);
    }
    let mut iov = [IoSlice::new(&[]); MAX_IOV];
    let mut k = 0;
    for (slot, chunk) in iov.iter_mut().zip(chunks) {
        *slot = IoSlice::new(chunk);
        k += 1;
    }
    writer.poll_write_vectored(cx, &iov[..k])
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_util::sync::CancellationToken;
    use transports::mux::{self, MuxConfig, Role};

    use super::*;

    /// A yamux session over an in-memory pipe: (client handle, server's incoming streams).
    fn session_pair() -> (mux::MuxHandle, mux::Incoming) {
        let (a, b) = tokio::io::duplex(4 << 20);
        let cancel = CancellationToken::new();
        // The sessions live as long as their driver tasks, not their handles; the server opens
        // no streams, so the client's `Incoming` is not needed.
        let (client, _) = mux::spawn(a, Role::Client, MuxConfig::default(), &cancel);
        let (_, incoming) = mux::spawn(b, Role::Server, MuxConfig::default(), &cancel);
        (client, incoming)
    }

    /// Records every write call; vectored.
    #[derive(Clone, Default)]
    struct Recorder {
        writes: Arc<Mutex<Vec<usize>>>,
        data: Arc<Mutex<Vec<u8>>>,
        shut: Arc<Mutex<bool>>,
    }

    impl AsyncRead for Recorder {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            _buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            // Never sends anything the other way.
            Poll::Pending
        }
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes.lock().unwrap().push(buf.len());
            self.data.lock().unwrap().extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_write_vectored(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let n = bufs.iter().map(|b| b.len()).sum();
            self.writes.lock().unwrap().push(n);
            let mut data = self.data.lock().unwrap();
            for b in bufs {
                data.extend_from_slice(b);
            }
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            *self.shut.lock().unwrap() = true;
            Poll::Ready(Ok(()))
        }
    }

    /// Frames that arrived before the relay ran leave in one write, in order, and the peer's
    /// FIN becomes the writer's shutdown. The copying relay writes at most 16 KiB per call.
    #[tokio::test(start_paused = true)]
    async fn queued_frames_leave_in_one_vectored_write() {
        let (client, mut incoming) = session_pair();
        let mut sender = client.open_stream().unwrap();
        let mut expected = Vec::new();
        for i in 0..8u8 {
            let frame = vec![i; 16 * 1024];
            sender.write_all(&frame).await.unwrap();
            expected.extend_from_slice(&frame);
        }
        sender.shutdown().await.unwrap();
        let mut receiver = incoming.accept().await.unwrap();
        // Paused clock: this returns once every task is idle, i.e. all frames have crossed.
        tokio::time::sleep(Duration::from_secs(1)).await;

        let mut out = Recorder::default();
        let report = tokio::time::timeout(
            Duration::from_secs(30),
            join_mux(&mut receiver, &mut out, Duration::from_secs(1)),
        )
        .await
        .unwrap();
        assert!(report.error.is_none(), "{:?}", report.error);
        assert_eq!((report.a_to_b, report.b_to_a), (128 * 1024, 0));
        assert_eq!(*out.writes.lock().unwrap(), vec![128 * 1024]);
        assert_eq!(*out.data.lock().unwrap(), expected);
        assert!(*out.shut.lock().unwrap());
    }

    /// A burst of many frames grows the pending queue; once the direction is idle again the
    /// queue gives that memory back (held connections keep no per-burst state).
    #[tokio::test(start_paused = true)]
    async fn idle_direction_keeps_no_grown_queue() {
        let (client, mut incoming) = session_pair();
        let mut sender = client.open_stream().unwrap();
        for i in 0..40u8 {
            sender.write_all(&[i; 1000]).await.unwrap();
        }
        let mut receiver = incoming.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut out = Recorder::default();
        let mut dir = ChunkDirection::new();
        let polled =
            std::future::poll_fn(|cx| Poll::Ready(dir.poll_copy(cx, &mut receiver, &mut out)))
                .await;
        assert!(polled.is_pending(), "the stream is still open");
        assert_eq!(dir.total, 40_000);
        assert_eq!(out.data.lock().unwrap().len(), 40_000);
        assert!(
            dir.pending.capacity() <= IDLE_SLOTS,
            "{}",
            dir.pending.capacity()
        );
        drop(sender);
    }

    /// Data arriving on the stream wakes only the stream → writer direction: the other
    /// direction's reader is polled once at the start (to register its waker) and not again
    /// for each message that comes the other way.
    #[tokio::test(start_paused = true)]
    async fn a_wake_polls_only_its_direction() {
        #[derive(Default)]
        struct Counting {
            reads: usize,
            written: usize,
        }
        impl AsyncRead for Counting {
            fn poll_read(
                self: Pin<&mut Self>,
                _cx: &mut Context<'_>,
                _buf: &mut tokio::io::ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                // Never readable, and it never wakes: any poll after the first is one that
                // could only find nothing.
                self.get_mut().reads += 1;
                Poll::Pending
            }
        }
        impl AsyncWrite for Counting {
            fn poll_write(
                self: Pin<&mut Self>,
                _cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.get_mut().written += buf.len();
                Poll::Ready(Ok(buf.len()))
            }
            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
        }

        let (client, mut incoming) = session_pair();
        let mut sender = client.open_stream().unwrap();
        sender.write_all(b"first").await.unwrap();
        let mut receiver = incoming.accept().await.unwrap();
        let counting = Arc::new(Mutex::new(Counting::default()));
        let relay = {
            let counting = counting.clone();
            tokio::spawn(async move {
                let mut other = Counting::default();
                let report = join_mux(&mut receiver, &mut other, Duration::from_secs(1)).await;
                *counting.lock().unwrap() = other;
                report
            })
        };
        for i in 0..10u8 {
            // Paused clock: each message is relayed before the next is sent.
            tokio::time::sleep(Duration::from_millis(10)).await;
            sender.write_all(&[i; 100]).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        // The stream's FIN ends the down direction; the up direction then lingers 1 s.
        sender.shutdown().await.unwrap();
        let report = tokio::time::timeout(Duration::from_secs(30), relay)
            .await
            .unwrap()
            .unwrap();
        assert!(report.error.is_none(), "{:?}", report.error);
        let other = counting.lock().unwrap();
        assert_eq!(other.written, 5 + 1000);
        // Once at the start, and never again: not for the messages, nor for the linger timer's
        // wake-up at the end.
        assert_eq!(other.reads, 1, "the idle direction was polled again");
    }

    /// Through a real loopback socket, both ways at once, more than a window's worth each way
    /// (the stream must keep re-granting window as the relay takes its slices), and each
    /// side's FIN reaches the other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relays_both_ways_between_a_stream_and_a_socket() {
        relays_both_ways(false).await;
    }

    /// The same with the socket lent to the session ([`join_mux_tcp`]): what the session writes
    /// itself counts in the report, and the window is re-granted for it too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relays_both_ways_with_the_socket_lent_to_the_session() {
        relays_both_ways(true).await;
    }

    async fn relays_both_ways(lend: bool) {
        const LEN: usize = 8 << 20;
        let (client, mut incoming) = session_pair();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The "local service": echoes a pattern back after reading everything.
        let service = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(&pattern(LEN, 7)).await.unwrap();
            s.shutdown().await.unwrap();
            got
        });
        let relay = tokio::spawn(async move {
            let mut work = incoming.accept().await.unwrap();
            let mut local = TcpStream::connect(addr).await.unwrap();
            if lend {
                join_mux_tcp(&mut work, local, Duration::from_secs(10)).await
            } else {
                join_mux(&mut work, &mut local, Duration::from_secs(10)).await
            }
        });
        let user = async {
            let mut s = client.open_stream().unwrap();
            s.write_all(&pattern(LEN, 3)).await.unwrap();
            s.shutdown().await.unwrap();
            let mut back = Vec::new();
            s.read_to_end(&mut back).await.unwrap();
            back
        };
        let back = tokio::time::timeout(Duration::from_secs(60), user)
            .await
            .expect("relay stalled");
        assert!(back == pattern(LEN, 7), "data from the service corrupted");
        let got = service.await.unwrap();
        assert!(got == pattern(LEN, 3), "data to the service corrupted");
        let report = relay.await.unwrap();
        assert!(report.error.is_none(), "{:?}", report.error);
        assert_eq!((report.a_to_b, report.b_to_a), (LEN as u64, LEN as u64));
    }

    /// A connected loopback pair: (ours, the peer's).
    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap());
        let (ours, peer) = tokio::join!(ours, listener.accept());
        (ours.unwrap(), peer.unwrap().0)
    }

    /// Counts the polls of a future.
    struct CountPolls<F> {
        inner: Pin<Box<F>>,
        polls: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl<F: std::future::Future> std::future::Future for CountPolls<F> {
        type Output = F::Output;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            self.inner.as_mut().poll(cx)
        }
    }

    /// With the socket lent to the session, a message reaches the socket without a poll of
    /// the relay (`join_mux` polls it once per message: `a_wake_polls_only_its_direction`).
    #[tokio::test]
    async fn a_lent_socket_gets_messages_without_polling_the_relay() {
        let (client, mut incoming) = session_pair();
        let mut sender = client.open_stream().unwrap();
        sender.write_all(b"first").await.unwrap();
        let mut receiver = incoming.accept().await.unwrap();
        let (ours, mut peer) = tcp_pair().await;
        let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let relay = tokio::spawn(CountPolls {
            inner: Box::pin(async move {
                join_mux_tcp(&mut receiver, ours, Duration::from_secs(10)).await
            }),
            polls: polls.clone(),
        });
        let mut buf = [0u8; 100];
        peer.read_exact(&mut buf[..5]).await.unwrap();
        assert_eq!(&buf[..5], b"first");
        // Let the relay settle (it waits on the stream and on the socket).
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before = polls.load(Ordering::SeqCst);
        for i in 0..10u8 {
            sender.write_all(&[i; 100]).await.unwrap();
            peer.read_exact(&mut buf).await.unwrap();
            assert_eq!(buf, [i; 100]);
        }
        assert_eq!(
            polls.load(Ordering::SeqCst) - before,
            0,
            "the relay was polled for messages the session could write"
        );
        drop(sender);
        // The stream's FIN reaches the socket through the relay (write shutdown); the peer's
        // own FIN then ends the join.
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        peer.shutdown().await.unwrap();
        let report = tokio::time::timeout(Duration::from_secs(30), relay)
            .await
            .unwrap()
            .unwrap();
        assert!(report.error.is_none(), "{:?}", report.error);
        assert_eq!((report.a_to_b, report.b_to_a), (1005, 0));
    }

    /// A lent socket that fills up (its reader is away): the session writes what fits, the
    /// relay takes the rest from the queue and waits for room, and the session writes again
    /// once the relay waits on the stream. Every byte arrives once and in order, in bursts
    /// that leave the socket full again and again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_lent_socket_keeps_the_order() {
        const BURST: usize = 3 << 20;
        const BURSTS: usize = 4;
        let (client, mut incoming) = session_pair();
        let mut sender = client.open_stream().unwrap();
        sender.write_all(b"x").await.unwrap();
        let mut receiver = incoming.accept().await.unwrap();
        let (ours, mut peer) = tcp_pair().await;
        let relay = tokio::spawn(async move {
            join_mux_tcp(&mut receiver, ours, Duration::from_secs(10)).await
        });
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                // Away for a while after each 1 MiB: the socket fills meanwhile.
                if got.len() % (1 << 20) < buf.len() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                match peer.read(&mut buf).await.unwrap() {
                    0 => break,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
            peer.shutdown().await.unwrap();
            got
        });
        let mut expected = b"x".to_vec();
        for k in 0..BURSTS {
            // Small and large writes: small frames, and frames split across reads.
            let burst = pattern(BURST, k as u8);
            for piece in burst.chunks(if k % 2 == 0 { 1000 } else { 100_000 }) {
                sender.write_all(piece).await.unwrap();
            }
            expected.extend_from_slice(&burst);
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        drop(sender);
        let got = tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .expect("relay stalled")
            .unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes lost, repeated or reordered");
        let report = relay.await.unwrap();
        assert!(report.error.is_none(), "{:?}", report.error);
        assert_eq!(report.a_to_b, expected.len() as u64);
    }

    /// After one side's FIN the join lingers only while the other direction moves: bytes the
    /// session writes to a lent socket count as movement, so a response still trickling in
    /// after the request's FIN is not cut off.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bytes_written_by_the_session_keep_the_linger_alive() {
        const LINGER: Duration = Duration::from_millis(500);
        let (client, mut incoming) = session_pair();
        let mut sender = client.open_stream().unwrap();
        sender.write_all(b"start").await.unwrap();
        let mut receiver = incoming.accept().await.unwrap();
        let (ours, mut peer) = tcp_pair().await;
        let relay = tokio::spawn(async move { join_mux_tcp(&mut receiver, ours, LINGER).await });
        let mut buf = [0u8; 5];
        peer.read_exact(&mut buf).await.unwrap();
        // The socket's side is done: from now on the join lingers.
        peer.shutdown().await.unwrap();
        for i in 0..30u8 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            sender.write_all(&[i; 10]).await.unwrap();
        }
        drop(sender);
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), peer.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        let expected: Vec<u8> = (0..30u8).flat_map(|i| [i; 10]).collect();
        assert!(
            rest == expected,
            "got {} of {} bytes",
            rest.len(),
            expected.len()
        );
        let report = relay.await.unwrap();
        assert_eq!((report.a_to_b, report.b_to_a), (305, 0));
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn advance_drops_written_bytes_across_slices() {
        let mut q: VecDeque<Bytes> = [&b"abc"[..], b"de", b"fgh"]
            .into_iter()
            .map(Bytes::from_static)
            .collect();
        advance(&mut q, 4);
        assert_eq!(
            q.iter().map(|b| &b[..]).collect::<Vec<_>>(),
            [&b"e"[..], b"fgh"]
        );
        advance(&mut q, 4);
        assert!(q.is_empty());
    }
}

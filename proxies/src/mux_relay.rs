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
//! Profiled on one iperf3 stream through the default transport, the stream → socket copy
//! removed here was 2 % of frpc's and frps's samples together, and the 16 KiB writes to the
//! local socket cost a wake-up of the receiving end each; the socket → stream copy was 2.4 %
//! of the samples with 8 streams, all of it in frps, the busiest thread of that run.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite};
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
                let _ = up.poll_copy(&mut cx, &mut *other, &mut *mux)?;
            }
            Ok((down.done, up.done))
        })();
        (done, down.total, up.total)
    })
    .await
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
    fn poll_copy<R>(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut R,
        mux: &mut MuxStream,
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin + ?Sized,
    {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        while !self.read_eof {
            // Pending: the reader has nothing, or the stream no window (each registered).
            match ready!(mux.poll_write_from(cx, reader, MAX_READ))? {
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

/// Drops the first `n` written bytes of `chunks`.
fn advance(chunks: &mut VecDeque<Bytes>, mut n: usize) {
    while n > 0 {
        let Some(front) = chunks.front_mut() else {
            return;
        };
        if n < front.len() {
            front.advance(n);
            return;
        }
        n -= front.len();
        chunks.pop_front();
    }
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
            join_mux(&mut work, &mut local, Duration::from_secs(10)).await
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

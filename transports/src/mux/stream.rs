//! One yamux stream as an `AsyncRead + AsyncWrite`.
//!
//! Reads drain the per-stream buffer the driver fills and send window updates with
//! hashicorp's rule (only once at least half the max window can be re-granted). Writes
//! copy into the session's outbound buffer ([`MuxStream::poll_write_from`] reads a socket
//! straight into it), bounded by the peer's window for this stream and by a session-wide
//! high-water mark. `poll_shutdown` sends FIN; dropping the stream
//! without shutdown also sends FIN (Go's `Stream.Close`), never RST, so the peer reads
//! everything we wrote.

use std::io;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use std::collections::VecDeque;

use bytes::buf::Limit;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::Interest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::io::poll_read_buf;

use super::frame::{self, FrameType, Header};
use super::{session_closed, Shared, Sink, StreamSlot, MAX_DATA_FRAME, OUT_HIGH_WATER};

/// A multiplexed logical connection.
#[derive(Debug)]
pub struct MuxStream {
    shared: Arc<Shared>,
    id: u32,
}

impl MuxStream {
    pub(super) fn new(shared: Arc<Shared>, id: u32) -> Self {
        MuxStream { shared, id }
    }

    /// The yamux stream id (odd: opened by the client).
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl MuxStream {
    /// Takes up to `max` received bytes as the reader's own `Bytes` slices, without copying
    /// them, appended to `out` in order: for a relay that writes them to a socket with one
    /// vectored write (`proxies::mux_relay`). Same semantics as `poll_read` otherwise: `Ok(0)`
    /// at the peer's FIN, an error after a reset or the session's end, window updates sent as
    /// the bytes are taken. `max` must be above zero.
    pub fn poll_read_chunks(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
        out: &mut VecDeque<Bytes>,
    ) -> Poll<io::Result<usize>> {
        self.poll_take(cx, |slot| {
            let mut taken = 0;
            while taken < max {
                let Some(chunk) = slot.recv.front_mut() else {
                    break;
                };
                let n = chunk.len().min(max - taken);
                if n == chunk.len() {
                    // The front is non-empty: it was just borrowed.
                    out.extend(slot.recv.pop_front());
                } else {
                    out.push_back(chunk.split_to(n));
                }
                taken += n;
            }
            taken
        })
    }

    /// Waits for data (or the end) in this stream's receive queue, lets `take` consume from
    /// it (returning how much it took), then re-grants window: the common part of
    /// [`AsyncRead::poll_read`] and [`MuxStream::poll_read_chunks`].
    fn poll_take(
        &mut self,
        cx: &mut Context<'_>,
        take: impl FnOnce(&mut StreamSlot) -> usize,
    ) -> Poll<io::Result<usize>> {
        let max_window = self.shared.config.max_stream_window;
        let mut inner = self.shared.lock();
        let closed = inner.closed;
        let inner = &mut *inner;
        let Some(slot) = inner.streams.get_mut(&self.id) else {
            return Poll::Ready(if closed { Err(session_closed()) } else { Ok(0) });
        };
        if slot.recv_len == 0 {
            if slot.reset {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            if slot.remote_fin {
                return Poll::Ready(Ok(0));
            }
            if closed {
                return Poll::Ready(Err(session_closed()));
            }
            slot.read_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = take(slot);
        slot.recv_len -= n;
        // Taken: until it waits again, the session must not write for this reader
        // (`MuxStream::attach_sink`); it wakes nobody meanwhile either.
        slot.read_waker = None;
        if let Some(delta) = slot.regrant(max_window) {
            inner
                .out
                .push(Header::new(FrameType::WindowUpdate, 0, self.id, delta), &[]);
            self.shared.writer_wake.notify_one();
        }
        Poll::Ready(Ok(n))
    }
}

impl MuxStream {
    /// Reads from `src` straight into the session's outbound buffer as one data frame of at
    /// most `max` bytes (and at most the peer's window for this stream): the socket → stream
    /// direction of a relay (`proxies::mux_relay`) without a relay buffer and its copy. Waits
    /// (`Pending`) for window or room in the outbound buffer before reading anything, so
    /// back-pressure reaches `src` without bytes read ahead. `Ok(0)` at `src`'s EOF; errors as
    /// [`AsyncWrite::poll_write`] for the stream, or `src`'s own. `max` must be above zero.
    ///
    /// `src` is read with the session's lock held: it must not be a stream of this session
    /// (nor wrap one).
    pub fn poll_write_from<R>(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut R,
        max: usize,
    ) -> Poll<io::Result<usize>>
    where
        R: AsyncRead + Unpin + ?Sized,
    {
        self.poll_frame_from(cx, max, |cx, out| poll_read_buf(Pin::new(src), cx, out))
    }

    /// [`MuxStream::poll_write_from`] for a TCP socket shared with the session's reader
    /// ([`MuxStream::attach_sink`]), read through a shared reference.
    pub fn poll_write_from_tcp(
        &mut self,
        cx: &mut Context<'_>,
        src: &TcpStream,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        self.poll_frame_from(cx, max, |cx, out| {
            let want = out.remaining_mut();
            super::lent::poll_op(src, cx, Interest::READABLE, want, || {
                src.try_read_buf(&mut *out)
            })
        })
    }

    /// The body of [`MuxStream::poll_write_from`]: `read` fills the frame's payload.
    fn poll_frame_from(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
        read: impl FnOnce(&mut Context<'_>, &mut Limit<&mut BytesMut>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        let mut guard = self.shared.lock();
        let inner = &mut *guard;
        let window = ready!(writable(inner, self.id, cx))?;
        let limit = window.min(MAX_DATA_FRAME).min(max);
        let out = &mut inner.out.buf;
        let start = out.len();
        out.reserve(frame::HEADER_LEN + limit);
        // The header's place; its length is known after the read.
        out.put_bytes(0, frame::HEADER_LEN);
        match read(cx, &mut (&mut *out).limit(limit)) {
            Poll::Ready(Ok(n)) if n > 0 => {
                // n <= limit <= MAX_DATA_FRAME, so it fits in u32.
                let len = n as u32;
                let header = Header::new(FrameType::Data, 0, self.id, len).encode();
                out[start..start + frame::HEADER_LEN].copy_from_slice(&header);
                if let Some(slot) = inner.streams.get_mut(&self.id) {
                    slot.send_window -= len;
                }
                self.shared.writer_wake.notify_one();
                Poll::Ready(Ok(n))
            }
            other => {
                out.truncate(start);
                other
            }
        }
    }

    /// Lends `tcp`, the socket this stream's payload is relayed to, to the session: payload
    /// that arrives while this stream's reader waits on an empty queue (a relay that has
    /// written everything it took) is not handed to the reader but written to `tcp` by the
    /// session itself, once its reader has read all the transport had, as much as the socket
    /// takes without blocking; the bytes are added to `written`. Anything the socket does not
    /// take stays queued, in order, and the reader is woken for it. This spares the relay a
    /// wake-up and a poll per message (bench/NOTES.md, "Writing through").
    ///
    /// Only for a relay that writes nothing to `tcp` except what it reads from this stream,
    /// and only while it has nothing taken and unwritten whenever it waits for this stream;
    /// [`MuxStream::detach_sink`] (or dropping the stream) ends the loan.
    pub fn attach_sink(&self, tcp: Arc<TcpStream>, written: Arc<AtomicU64>) {
        if let Some(slot) = self.shared.lock().streams.get_mut(&self.id) {
            slot.sink = Some(Sink { tcp, written });
        }
    }

    /// Ends [`MuxStream::attach_sink`]'s loan: the session's reader no longer writes to the
    /// socket once this returns.
    pub fn detach_sink(&self) {
        if let Some(slot) = self.shared.lock().streams.get_mut(&self.id) {
            slot.sink = None;
        }
    }
}

/// Whether stream `id` may queue data now: the peer's window for it (above zero), or
/// `Pending` (waker registered) while the window is closed or the outbound buffer is above its
/// high-water mark, or the reason it never may again.
fn writable(inner: &mut super::Inner, id: u32, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    if inner.closed {
        return Poll::Ready(Err(session_closed()));
    }
    let Some(slot) = inner.streams.get_mut(&id) else {
        return Poll::Ready(Err(session_closed()));
    };
    if slot.reset {
        return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
    }
    if slot.local_fin {
        return Poll::Ready(Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "yamux stream already shut down for writing",
        )));
    }
    if slot.send_window == 0 {
        slot.write_waker = Some(cx.waker().clone());
        return Poll::Pending;
    }
    if inner.out.buf.len() >= OUT_HIGH_WATER {
        inner.out.waiters.push(cx.waker().clone());
        return Poll::Pending;
    }
    Poll::Ready(Ok(slot.send_window as usize))
}

impl AsyncRead for MuxStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        self.get_mut()
            .poll_take(cx, |slot| {
                let mut taken = 0;
                while buf.remaining() > 0 {
                    let Some(chunk) = slot.recv.front_mut() else {
                        break;
                    };
                    let n = chunk.len().min(buf.remaining());
                    buf.put_slice(&chunk[..n]);
                    chunk.advance(n);
                    taken += n;
                    if chunk.is_empty() {
                        slot.recv.pop_front();
                    }
                }
                taken
            })
            .map_ok(|_| ())
    }
}

impl AsyncWrite for MuxStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = self.get_mut();
        let mut guard = this.shared.lock();
        let inner = &mut *guard;
        let window = ready!(writable(inner, this.id, cx))?;
        let n = buf.len().min(window).min(MAX_DATA_FRAME);
        // n <= MAX_DATA_FRAME, so it fits in u32.
        let len = n as u32;
        if let Some(slot) = inner.streams.get_mut(&this.id) {
            slot.send_window -= len;
        }
        inner
            .out
            .push(Header::new(FrameType::Data, 0, this.id, len), &buf[..n]);
        this.shared.writer_wake.notify_one();
        Poll::Ready(Ok(n))
    }

    /// Data handed to the session is as good as written: the driver writes the outbound
    /// buffer in order, whoever is waiting, and delivers what is queued when the session is
    /// closed locally (like bytes in a TCP socket's send buffer, which `TcpStream::flush`
    /// does not wait for either). Waiting here for the driver's write would cost the relay
    /// one extra wake-up per message it forwards: it flushes whenever its reader runs dry.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shared.lock().closed {
            return Poll::Ready(Err(session_closed()));
        }
        Poll::Ready(Ok(()))
    }

    /// Queues FIN after everything written so far; like `poll_flush`, it does not wait for
    /// the driver to write it (the relay would otherwise be woken once more per connection).
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut inner = this.shared.lock();
        if inner.closed {
            return Poll::Ready(Err(session_closed()));
        }
        let inner = &mut *inner;
        if let Some(slot) = inner.streams.get_mut(&this.id) {
            if !slot.local_fin && !slot.reset {
                slot.local_fin = true;
                inner.out.push(
                    Header::new(FrameType::WindowUpdate, frame::FIN, this.id, 0),
                    &[],
                );
                this.shared.writer_wake.notify_one();
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for MuxStream {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        let closed = inner.closed;
        if let Some(slot) = inner.streams.remove(&self.id) {
            if !slot.local_fin && !slot.reset && !closed {
                inner.out.push(
                    Header::new(FrameType::WindowUpdate, frame::FIN, self.id, 0),
                    &[],
                );
                drop(inner);
                self.shared.writer_wake.notify_one();
            }
        }
    }
}

//! Zero-copy relay between two TCP sockets: `splice(2)` through a pipe, as Go's `io.Copy` does
//! for `*net.TCPConn` → `*net.TCPConn` (`internal/poll/splice_linux.go`), which is what frp's
//! `io.Join` ends up doing when neither side is wrapped.
//!
//! * [`join_plain`]: the entry point. Joins two *unwrapped* connections (no encryption, no
//!   compression, no bandwidth limit): when both turn out to be `tokio::net::TcpStream`s — a
//!   user connection and a work connection of a frps without tcpMux and TLS, or a work
//!   connection and a local service connection on frpc — the bytes go socket → pipe → socket
//!   inside the kernel ([`splice_join`]; each direction starts with `read`/`write` through a
//!   lent buffer and splices from the first read that fills it, so small messages skip the
//!   pipe and the extra call a short `splice` costs); a yamux stream joined with anything goes through
//!   [`crate::mux_relay::join_mux`], which writes the stream's received frames without copying
//!   them; anything else (TLS, a QUIC stream, a simulated socket, another OS) goes through
//!   [`crate::relay::join_report`].
//! * [`into_tcp`]: finds the `TcpStream` behind a boxed stream, through
//!   `transports::AsyncStream`'s `Any` accessors, with any bytes a replaying wrapper had
//!   already taken off the socket ([`TcpParts`]).
//!
//! Semantics are [`crate::relay::join_report`]'s: EOF on one side becomes a write shutdown
//! (`shutdown(SHUT_WR)`) on the other, the other direction keeps flowing, and once one
//! direction has ended the join ends after `linger` without progress. Byte counts are reported
//! the same way.
//!
//! Pipes are per direction, taken only while that direction moves data and given back, empty,
//! to a small per-thread free list when its socket has nothing to read: an idle joined
//! connection holds no pipe (a pipe is two descriptors and kernel memory). A pipe that still
//! holds data when the join ends is closed, never reused.
//!
//! `splice` into a socket whose peer has gone raises `SIGPIPE` like `write` does; Rust's runtime
//! ignores `SIGPIPE` in our binaries (as Go's does for sockets), so it surfaces as `EPIPE`.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use transports::mux::MuxStream;
use transports::sniff::Rewind;
use transports::{AsyncStream, BoxStream};

use crate::mux_relay::{join_mux, join_mux_tcp};
use crate::relay::{join_report, PumpReport};

/// Joins two unwrapped connections, with `splice(2)` when both are TCP sockets on Linux, else
/// with [`join_report`]. `a_to_b` in the report counts bytes read from `a`.
pub async fn join_plain(a: BoxStream, b: BoxStream, linger: Duration) -> PumpReport {
    #[cfg(target_os = "linux")]
    {
        match (into_tcp(a), into_tcp(b)) {
            (Ok(mut a), Ok(mut b)) => linux::splice_join_parts(&mut a, &mut b, linger).await,
            (a, b) => {
                let a = a.map_or_else(|s| s, TcpParts::into_stream);
                let b = b.map_or_else(|s| s, TcpParts::into_stream);
                join_buffered(a, b, linger).await
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        join_buffered(a, b, linger).await
    }
}

/// [`join_plain`] when splicing is out: a yamux stream on either side takes the copy-free
/// path of [`crate::mux_relay`], anything else (two yamux streams included: `join_mux` reads
/// its other side under the session's lock, which may be the same session) the buffered relay.
async fn join_buffered(a: BoxStream, b: BoxStream, linger: Duration) -> PumpReport {
    if is::<MuxStream>(&a) && is::<MuxStream>(&b) {
        let (mut a, mut b) = (a, b);
        return join_report(&mut a, &mut b, linger).await;
    }
    let a = match take::<MuxStream>(a) {
        Ok(mut mux) => return join_mux_any(&mut mux, b, linger).await,
        Err(a) => a,
    };
    match take::<MuxStream>(b) {
        Ok(mut mux) => {
            // `join_mux` counts from the stream: swap to report from `a`'s side.
            let r = join_mux_any(&mut mux, a, linger).await;
            PumpReport {
                a_to_b: r.b_to_a,
                b_to_a: r.a_to_b,
                error: r.error,
            }
        }
        Err(mut b) => {
            let mut a = a;
            join_report(&mut a, &mut b, linger).await
        }
    }
}

/// [`join_mux_tcp`] when `other` is a bare TCP socket (the session may then write to it
/// itself), else [`join_mux`].
async fn join_mux_any(mux: &mut MuxStream, other: BoxStream, linger: Duration) -> PumpReport {
    match take::<TcpStream>(other) {
        Ok(tcp) => join_mux_tcp(mux, tcp, linger).await,
        Err(mut other) => join_mux(mux, &mut other, linger).await,
    }
}

/// A TCP socket taken out of a stream ([`into_tcp`]).
#[derive(Debug)]
pub struct TcpParts {
    /// The socket.
    pub tcp: TcpStream,
    /// Bytes the stream had already taken off the socket (a replayed prefix): they come
    /// before anything still in the socket.
    pub read_ahead: Vec<u8>,
}

impl TcpParts {
    /// Back to a stream that yields `read_ahead` first.
    pub fn into_stream(self) -> BoxStream {
        if self.read_ahead.is_empty() {
            Box::new(self.tcp)
        } else {
            Box::new(Rewind::new(self.read_ahead, self.tcp))
        }
    }
}

/// Most bytes [`into_tcp`] takes off a `Rewind` without waiting (its prefix is at most a few
/// bytes; the rest is what the socket already had).
const MAX_READ_AHEAD: usize = 16 * 1024;

/// The `TcpStream` behind `s`: a boxed `TcpStream` (also boxed twice), or the plain connection
/// frps accepted on its bind port (a `Rewind<TcpStream>` replaying the sniffed first bytes).
/// Gives `s` back unchanged when it is anything else.
///
/// A `Rewind` keeps its unreplayed prefix private, so it is read without waiting until it would
/// block: what comes out is the rest of the prefix (none for a work connection, whose first
/// frame is longer than the sniffed bytes and was read exactly by `control::read_msg`) and
/// whatever the socket already held. Those bytes are returned in [`TcpParts::read_ahead`], to
/// be written before anything spliced from the socket.
pub fn into_tcp(s: BoxStream) -> Result<TcpParts, BoxStream> {
    let s = match take::<TcpStream>(s) {
        Ok(tcp) => {
            return Ok(TcpParts {
                tcp,
                read_ahead: Vec::new(),
            })
        }
        Err(s) => s,
    };
    let s = match take::<Rewind<TcpStream>>(s) {
        Ok(r) => return drain_rewind(r),
        Err(s) => s,
    };
    match take::<BoxStream>(s) {
        Ok(inner) => into_tcp(inner).map_err(|b| Box::new(b) as BoxStream),
        Err(s) => Err(s),
    }
}

/// Reads `r` until it would block (or ends), then takes its socket out.
fn drain_rewind(mut r: Rewind<TcpStream>) -> Result<TcpParts, BoxStream> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut read_ahead = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let mut rb = ReadBuf::new(&mut buf);
        match Pin::new(&mut r).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Ok(())) if !rb.filled().is_empty() => {
                read_ahead.extend_from_slice(rb.filled());
                if read_ahead.len() >= MAX_READ_AHEAD {
                    // Data is streaming in already: the buffered relay will do.
                    return Err(Box::new(Rewind::new(read_ahead, r.into_inner())));
                }
            }
            // Would block, or EOF (which the socket reports again to the next reader): all
            // bytes before the socket's next ones are in hand.
            Poll::Pending | Poll::Ready(Ok(())) => {
                return Ok(TcpParts {
                    tcp: r.into_inner(),
                    read_ahead,
                })
            }
            Poll::Ready(Err(e)) => {
                // Leave the connection to the buffered relay, which ends it.
                tracing::debug!("work connection failed before the join: {e}");
                return Err(Box::new(Rewind::new(read_ahead, r.into_inner())));
            }
        }
    }
}

/// Takes the `T` out of `s` if that is what `s` holds.
fn is<T: 'static>(s: &BoxStream) -> bool {
    // Called on the `dyn`, not on the box, which is an `AsyncStream` of its own.
    <dyn AsyncStream>::as_any(&**s).is::<T>()
}

fn take<T: 'static>(s: BoxStream) -> Result<T, BoxStream> {
    // Called on the `dyn`, not on the box, which is an `AsyncStream` of its own.
    if !<dyn AsyncStream>::as_any(&*s).is::<T>() {
        return Err(s);
    }
    match <dyn AsyncStream>::into_any(s).downcast::<T>() {
        Ok(t) => Ok(*t),
        Err(_) => unreachable!("the type was checked with is::<T>()"),
    }
}

#[cfg(target_os = "linux")]
pub use linux::splice_join;

#[cfg(target_os = "linux")]
mod linux {
    use std::cell::RefCell;
    use std::io;
    use std::os::fd::OwnedFd;
    use std::pin::Pin;
    use std::task::{ready, Context, Poll};
    use std::time::Duration;

    use rustix::pipe::{fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags};
    use tokio::io::{AsyncWrite, Interest};
    use tokio::net::tcp::{ReadHalf, WriteHalf};
    use tokio::net::TcpStream;

    use super::TcpParts;
    use crate::relay::{drive_join, Direction, PumpReport};

    /// Pipe capacity asked for with `F_SETPIPE_SZ` (Go: `maxSpliceSize`, 1 MiB). The kernel
    /// caps it at `fs.pipe-max-size` and may refuse past the per-user pipe quota; the default
    /// 64 KiB pipe is kept then. The pages are only used while data is in flight.
    const PIPE_SIZE: usize = 1 << 20;

    /// Free (empty) pipes kept per thread.
    const PIPE_POOL_CAP: usize = 8;

    thread_local! {
        static FREE_PIPES: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
    }

    /// A non-blocking pipe: read end, write end.
    struct Pipe {
        rd: OwnedFd,
        wr: OwnedFd,
        /// What the kernel granted.
        size: usize,
    }

    impl Pipe {
        fn take() -> io::Result<Pipe> {
            if let Some(p) = FREE_PIPES.try_with(|f| f.borrow_mut().pop()).ok().flatten() {
                return Ok(p);
            }
            let (rd, wr) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
            let size = fcntl_setpipe_size(&wr, PIPE_SIZE).unwrap_or(64 * 1024);
            Ok(Pipe { rd, wr, size })
        }

        /// Back to this thread's free list; the caller guarantees the pipe is empty.
        fn give(self) {
            let _ = FREE_PIPES.try_with(|f| {
                let mut f = f.borrow_mut();
                if f.len() < PIPE_POOL_CAP {
                    f.push(self);
                }
            });
        }
    }

    /// Free pipes on this thread's list (tests).
    #[cfg(test)]
    pub(super) fn free_pipes_on_this_thread() -> usize {
        FREE_PIPES.try_with(|f| f.borrow().len()).unwrap_or(0)
    }

    /// Joins two TCP sockets with `splice(2)`; same contract as [`crate::relay::join_report`].
    pub async fn splice_join(a: &mut TcpStream, b: &mut TcpStream, linger: Duration) -> PumpReport {
        splice_join_with(a, Vec::new(), b, Vec::new(), linger).await
    }

    /// [`splice_join`] for sockets taken out of streams, delivering their read-ahead first.
    pub(super) async fn splice_join_parts(
        a: &mut TcpParts,
        b: &mut TcpParts,
        linger: Duration,
    ) -> PumpReport {
        let (a_head, b_head) = (
            std::mem::take(&mut a.read_ahead),
            std::mem::take(&mut b.read_ahead),
        );
        splice_join_with(&mut a.tcp, a_head, &mut b.tcp, b_head, linger).await
    }

    async fn splice_join_with(
        a: &mut TcpStream,
        a_head: Vec<u8>,
        b: &mut TcpStream,
        b_head: Vec<u8>,
        linger: Duration,
    ) -> PumpReport {
        let (mut ab, mut ba) = (SpliceDir::with_head(a_head), SpliceDir::with_head(b_head));
        let (mut a_rd, mut a_wr) = a.split();
        let (mut b_rd, mut b_wr) = b.split();
        drive_join(Some(linger), |cx| {
            let done = (|| {
                let ab_done = ab.poll_copy(cx, &mut a_rd, &mut b_wr)?.is_ready();
                Ok((ab_done, ba.poll_copy(cx, &mut b_rd, &mut a_wr)?.is_ready()))
            })();
            (done, ab.total(), ba.total())
        })
        .await
    }

    /// One direction: socket → socket, with `read`/`write` through a lent buffer until a read
    /// fills it, then with `splice` (socket → pipe → socket).
    ///
    /// Small messages (requests, responses) cost the same two calls either way, but a short
    /// `read` tells tokio that the socket is drained, so it waits for the next readiness event
    /// instead of trying again: with `splice`, which may stop short with bytes still queued,
    /// every message cost a third call that found the socket empty. Bulk data fills the buffer
    /// at once and moves by `splice` from then on.
    struct SpliceDir {
        /// Bytes read from the socket before the join, written first (then freed).
        head: Vec<u8>,
        head_pos: usize,
        /// Copy mode: the buffered relay's direction, until a read fills its buffer.
        copy: Direction,
        /// A read filled the buffer: the direction splices from now on.
        splicing: bool,
        /// Held while data is in flight; back to the pool when the reader has nothing.
        pipe: Option<Pipe>,
        /// Bytes in the pipe, not yet written out.
        in_pipe: usize,
        total: u64,
        read_eof: bool,
        done: bool,
    }

    impl SpliceDir {
        /// Bytes moved so far, in both modes.
        fn total(&self) -> u64 {
            self.total + self.copy.total
        }

        fn with_head(head: Vec<u8>) -> Self {
            SpliceDir {
                head,
                head_pos: 0,
                copy: Direction::new(),
                splicing: false,
                pipe: None,
                in_pipe: 0,
                total: 0,
                read_eof: false,
                done: false,
            }
        }

        fn poll_copy(
            &mut self,
            cx: &mut Context<'_>,
            reader: &mut ReadHalf<'_>,
            writer: &mut WriteHalf<'_>,
        ) -> Poll<io::Result<()>> {
            if self.done {
                return Poll::Ready(Ok(()));
            }
            while self.head_pos < self.head.len() {
                let n = ready!(Pin::new(&mut *writer).poll_write(cx, &self.head[self.head_pos..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.head_pos += n;
                self.total += n as u64;
                if self.head_pos == self.head.len() {
                    self.head = Vec::new();
                    self.head_pos = 0;
                }
            }
            if !self.splicing {
                if !ready!(self.copy.poll_copy_until_full(cx, reader, writer))? {
                    self.done = true;
                    return Poll::Ready(Ok(()));
                }
                self.splicing = true;
            }
            let (reader, writer_sock) = (reader.as_ref(), writer.as_ref());
            loop {
                if self.in_pipe == 0 && !self.read_eof {
                    if let Poll::Ready(r) = reader.poll_read_ready(cx) {
                        r?;
                    } else {
                        // Idle: the pipe is empty, so someone else may use it.
                        if let Some(p) = self.pipe.take() {
                            p.give();
                        }
                        return Poll::Pending;
                    }
                    let pipe = match &self.pipe {
                        Some(p) => p,
                        None => self.pipe.insert(Pipe::take()?),
                    };
                    let moved = reader.try_io(Interest::READABLE, || {
                        // The pipe is empty, so EAGAIN can only mean "socket not readable".
                        splice(
                            reader,
                            None,
                            &pipe.wr,
                            None,
                            pipe.size,
                            SpliceFlags::MOVE | SpliceFlags::NONBLOCK,
                        )
                        .map_err(io::Error::from)
                    });
                    match moved {
                        Ok(0) => self.read_eof = true,
                        Ok(n) => self.in_pipe = n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
                while self.in_pipe > 0 {
                    let Some(pipe) = &self.pipe else {
                        return Poll::Ready(Err(io::Error::other("splice: data without a pipe")));
                    };
                    ready!(writer_sock.poll_write_ready(cx))?;
                    let moved = writer_sock.try_io(Interest::WRITABLE, || {
                        splice(
                            &pipe.rd,
                            None,
                            writer_sock,
                            None,
                            self.in_pipe,
                            SpliceFlags::MOVE | SpliceFlags::NONBLOCK,
                        )
                        .map_err(io::Error::from)
                    });
                    match moved {
                        Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                        Ok(n) => {
                            self.in_pipe -= n;
                            self.total += n as u64;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
                if self.read_eof {
                    if let Some(p) = self.pipe.take() {
                        p.give();
                    }
                    // Half-close: the reader is done, so end the writer's send side.
                    ready!(Pin::new(&mut *writer).poll_shutdown(cx))?;
                    self.done = true;
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }

    impl Drop for SpliceDir {
        fn drop(&mut self) {
            // A pipe with bytes still in it is closed with them, never handed to another join.
            if let Some(p) = self.pipe.take() {
                if self.in_pipe == 0 {
                    p.give();
                }
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
#[path = "splice_tests.rs"]
mod tests;

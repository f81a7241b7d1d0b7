//! TCP multiplexing: our own implementation of hashicorp yamux, configured as frp does.
//!
//! Why not `tokio-yamux`: its session stops reading the socket whenever one stream's
//! 8-frame channel is full (`session.rs`: "skip recv_frames while read_pending_frames is
//! backpressured"), so a single slow consumer (a slow frp user behind one work
//! connection) stalls every stream of the client, including the control stream and the
//! keepalive pings, and Go then tears the session down. Per-stream flow control is the
//! whole point of yamux windows, so we buffer up to the window per stream instead.
//!
//! frp settings (frp v0.65.0 `client/connector.go`, `server/service.go`; see
//! frp-protocol.md §6): frpc is the client (odd stream ids), frps the server; max stream
//! window 6 MiB, initial 256 KiB; keepalive ping every `tcpMuxKeepaliveInterval`
//! (30 s) answered within 10 s; accept backlog 256. Like hashicorp yamux, every inbound
//! stream is ACKed **immediately** with a window update (Go closes the whole session if
//! a stream it opened is not ACKed within 75 s).
//!
//! # Actor layout
//!
//! One spawned driver task owns the transport and runs three loops: the reader (decodes
//! frames, fills per-stream buffers, answers pings, queues inbound streams), the writer
//! (drains the shared outbound buffer into the socket, coalescing frames) and the
//! keepalive pinger. [`MuxStream`]s and the clonable [`MuxHandle`] share one mutex-guarded
//! state with the driver; it is never held across an await. A stream's relay may lend the
//! driver its TCP socket ([`MuxStream::attach_sink`]): payload for a relay that waits with
//! nothing taken is then written to that socket by the driver itself, once per read batch,
//! instead of waking the relay for it. Dropping a stream sends FIN
//! (Go's `Close` semantics); the session ends on EOF, IO or protocol error, keepalive
//! timeout, [`MuxHandle::close`] or cancellation of the parent token.

pub(crate) mod frame;
pub mod lent;
mod reader;
mod session;
mod stream;

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

use frame::{FrameType, Header};
pub use stream::MuxStream;

/// Window every stream starts with (yamux spec).
pub const INITIAL_STREAM_WINDOW: u32 = 256 * 1024;
/// frp's `MaxStreamWindowSize`.
pub const FRP_MAX_STREAM_WINDOW: u32 = 6 * 1024 * 1024;
/// hashicorp's default `AcceptBacklog`.
pub const DEFAULT_ACCEPT_BACKLOG: usize = 256;
/// hashicorp's `ConnectionWriteTimeout`, also the time a ping has to be answered.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// frp's default `tcpMuxKeepaliveInterval`.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// Largest data frame we send (bigger writes are split).
const MAX_DATA_FRAME: usize = 64 * 1024;
/// Writers wait while this much is queued for the socket.
const OUT_HIGH_WATER: usize = 1024 * 1024;
/// The reader pauses (stops answering pings, window updates) above this much queued
/// output, so a peer that never reads cannot make us buffer without bound.
const OUT_HARD_CAP: usize = 8 * 1024 * 1024;

/// Session settings.
#[derive(Clone, Copy, Debug)]
pub struct MuxConfig {
    /// Ping interval; `None` disables keepalive pings (pings are still answered).
    pub keepalive_interval: Option<Duration>,
    /// How long a ping may stay unanswered before the session is closed.
    pub keepalive_timeout: Duration,
    /// Receive window granted to the peer per stream (at least 256 KiB).
    pub max_stream_window: u32,
    /// Inbound streams that may wait for [`Incoming::accept`]; more are reset.
    pub accept_backlog: usize,
}

impl MuxConfig {
    /// frp's configuration with the given `tcpMuxKeepaliveInterval` (zero disables pings).
    pub fn frp(keepalive_interval: Duration) -> Self {
        MuxConfig {
            keepalive_interval: (!keepalive_interval.is_zero()).then_some(keepalive_interval),
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            max_stream_window: FRP_MAX_STREAM_WINDOW,
            accept_backlog: DEFAULT_ACCEPT_BACKLOG,
        }
    }
}

impl Default for MuxConfig {
    fn default() -> Self {
        MuxConfig::frp(DEFAULT_KEEPALIVE_INTERVAL)
    }
}

/// Which end of the session we are: the client opens odd stream ids, the server even.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// frpc.
    Client,
    /// frps.
    Server,
}

/// Cheap clonable handle to a running session.
#[derive(Clone, Debug)]
pub struct MuxHandle {
    shared: Arc<Shared>,
}

/// Receiver of the streams the peer opens.
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::Receiver<MuxStream>,
}

/// Starts a session over `io`, driven by a spawned task (which inherits the current
/// tracing span). The session also ends when `cancel` is cancelled.
pub fn spawn<S>(
    io: S,
    role: Role,
    config: MuxConfig,
    cancel: &CancellationToken,
) -> (MuxHandle, Incoming)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let max_stream_window = config.max_stream_window.max(INITIAL_STREAM_WINDOW);
    let config = MuxConfig {
        max_stream_window,
        accept_backlog: config.accept_backlog.max(1),
        ..config
    };
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            streams: StreamMap::default(),
            out: Outbox::default(),
            next_id: match role {
                Role::Client => 1,
                Role::Server => 2,
            },
            closed: false,
            remote_go_away: false,
            ping: None,
            through: Vec::new(),
        }),
        writer_wake: Notify::new(),
        drained: Notify::new(),
        through_due: Default::default(),
        done: cancel.child_token(),
        config,
    });
    let (tx, rx) = mpsc::channel(config.accept_backlog);
    // The driver logs inside the caller's span (e.g. the peer address on frps).
    tokio::spawn(tracing::Instrument::instrument(
        session::drive(io, shared.clone(), tx),
        tracing::Span::current(),
    ));
    (MuxHandle { shared }, Incoming { rx })
}

impl MuxHandle {
    /// Opens a new stream. Like hashicorp yamux, this does not wait for the peer's ACK:
    /// the SYN is queued and data may be written right away.
    pub fn open_stream(&self) -> io::Result<MuxStream> {
        let shared = &self.shared;
        let mut inner = shared.lock();
        if inner.closed || shared.done.is_cancelled() {
            return Err(session_closed());
        }
        if inner.remote_go_away {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "yamux: remote end is not accepting streams (GoAway)",
            ));
        }
        let id = inner.next_id;
        inner.next_id = id
            .checked_add(2)
            .ok_or_else(|| io::Error::other("yamux: stream ids exhausted"))?;
        let window = shared.config.max_stream_window;
        inner.streams.insert(id, StreamSlot::new(window));
        inner.out.push(
            Header::new(
                FrameType::WindowUpdate,
                frame::SYN,
                id,
                window - INITIAL_STREAM_WINDOW,
            ),
            &[],
        );
        drop(inner);
        shared.writer_wake.notify_one();
        Ok(MuxStream::new(shared.clone(), id))
    }

    /// Closes the session (GoAway, then the transport is shut down).
    pub fn close(&self) {
        self.shared.done.cancel();
    }

    /// Whether the session has ended or is ending.
    pub fn is_closed(&self) -> bool {
        self.shared.done.is_cancelled() || self.shared.lock().closed
    }

    /// Resolves when the session has ended (or [`MuxHandle::close`] was called).
    pub async fn closed(&self) {
        self.shared.done.cancelled().await
    }

    /// Number of open streams (for tests and metrics).
    pub fn num_streams(&self) -> usize {
        self.shared.lock().streams.len()
    }
}

impl Incoming {
    /// The next stream opened by the peer; `None` once the session has ended.
    pub async fn accept(&mut self) -> Option<MuxStream> {
        self.rx.recv().await
    }
}

fn session_closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "yamux session closed")
}

/// State shared by the driver, the handle and the streams.
#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    /// Something was queued for the writer.
    writer_wake: Notify,
    /// The writer drained the outbound buffer (reader backpressure).
    drained: Notify,
    /// `Inner::through` is not empty: checked before taking the lock each time the reader
    /// waits, which is once per batch of frames. Set and cleared by the driver task only.
    through_due: std::sync::atomic::AtomicBool,
    /// Cancelled when the session must end or has ended.
    done: CancellationToken,
    config: MuxConfig,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the state half-updated in a way
        // that matters more than losing the session, so ignore poisoning.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Streams by id. Looked up several times per forwarded message on each side, so not with
/// std's SipHash, which was 9 % of frps's user-space instructions per small request
/// (callgrind, bench/NOTES.md "Cheaper polls on the request path"). foldhash's hasher is
/// seeded at random per map, so a peer choosing stream ids cannot aim at collisions it
/// cannot compute.
type StreamMap = HashMap<u32, StreamSlot, foldhash::fast::RandomState>;

#[derive(Debug)]
struct Inner {
    streams: StreamMap,
    out: Outbox,
    next_id: u32,
    closed: bool,
    remote_go_away: bool,
    /// The outstanding keepalive ping: its id and who waits for the answer.
    ping: Option<(u32, oneshot::Sender<()>)>,
    /// Streams whose queued payload the session's reader writes to their lent socket itself
    /// once it has read all it can (`session::write_through`), each once.
    through: Vec<u32>,
}

impl Inner {
    /// Marks the session dead and wakes everybody so they observe it. Slots stay until
    /// their streams are dropped, so data and FIN received before the end remain readable.
    fn close(&mut self) {
        self.closed = true;
        for slot in self.streams.values_mut() {
            slot.wake_all();
        }
        self.out.wake_waiters();
    }
}

/// Bytes waiting for the socket.
#[derive(Debug, Default)]
struct Outbox {
    buf: BytesMut,
    /// Streams waiting for room in `buf` (the high-water mark).
    waiters: Vec<Waker>,
}

impl Outbox {
    fn push(&mut self, header: Header, payload: &[u8]) {
        self.buf.reserve(frame::HEADER_LEN + payload.len());
        self.buf.put_slice(&header.encode());
        self.buf.put_slice(payload);
    }

    fn wake_waiters(&mut self) {
        for w in self.waiters.drain(..) {
            w.wake();
        }
    }
}

/// Per-stream state.
#[derive(Debug)]
struct StreamSlot {
    recv: std::collections::VecDeque<bytes::Bytes>,
    recv_len: usize,
    /// Read chunk of the last piece queued as a slice (`reader::Piece::for_queue`).
    last_chunk: u64,
    /// Bytes the peer may still send us.
    recv_window: u32,
    /// Bytes we may still send.
    send_window: u32,
    remote_fin: bool,
    local_fin: bool,
    reset: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    /// The socket the stream's relay writes its payload to, for the session's reader to write
    /// to itself while the relay waits with nothing queued ([`MuxStream::attach_sink`]).
    sink: Option<Sink>,
    /// Listed in `Inner::through`.
    through_listed: bool,
}

/// A relay's socket, lent to the session's reader ([`MuxStream::attach_sink`]).
#[derive(Debug)]
struct Sink {
    tcp: Arc<tokio::net::TcpStream>,
    /// Bytes the reader wrote to `tcp` (the relay's count misses them).
    written: Arc<std::sync::atomic::AtomicU64>,
}

impl StreamSlot {
    /// A new stream; we grant the full window right away (in the SYN or ACK frame).
    fn new(max_window: u32) -> Self {
        StreamSlot {
            recv: Default::default(),
            recv_len: 0,
            last_chunk: 0,
            recv_window: max_window,
            send_window: INITIAL_STREAM_WINDOW,
            remote_fin: false,
            local_fin: false,
            reset: false,
            read_waker: None,
            write_waker: None,
            sink: None,
            through_listed: false,
        }
    }

    /// Window to re-grant now that the reader has consumed bytes (hashicorp
    /// `sendWindowUpdate`: only once at least half the max window can be re-granted, and not
    /// after the stream's end), already added to `recv_window`.
    fn regrant(&mut self, max_window: u32) -> Option<u32> {
        // recv_len fits in u32 because it never exceeds the window.
        let buffered = u32::try_from(self.recv_len).unwrap_or(u32::MAX);
        let delta = max_window
            .saturating_sub(buffered)
            .saturating_sub(self.recv_window);
        if delta >= max_window / 2 && !self.remote_fin && !self.reset {
            self.recv_window += delta;
            Some(delta)
        } else {
            None
        }
    }

    fn wake_all(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests;

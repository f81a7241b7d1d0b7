//! The session driver task: one reader, one writer and one keepalive loop, run
//! concurrently inside a single spawned task (see the module doc of `mux`).

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, Interest};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::frame::{self, FrameType, Header};
use super::lent;
use super::reader::{FrameReader, ReadError};
use super::{MuxStream, Shared, StreamSlot, INITIAL_STREAM_WINDOW, OUT_HARD_CAP};

/// Outbound buffers up to this capacity are kept even when the session is quiet.
const KEEP_BUFFER: usize = 64 * 1024;
/// A larger outbound buffer is released after this long without a large write.
const SHRINK_AFTER: Duration = Duration::from_secs(10);
/// How long we try to deliver queued frames and a GoAway when the session ends.
const FINAL_FLUSH: Duration = Duration::from_secs(2);

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum End {
    /// The peer closed the transport.
    #[error("peer closed the connection")]
    PeerClosed,
    /// `close()` or cancellation.
    #[error("closed locally")]
    Local,
    /// The peer violated the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Transport IO error.
    #[error("transport error: {0}")]
    Io(io::Error),
    /// A keepalive ping was not answered in time.
    #[error("keepalive ping not answered in time")]
    KeepaliveTimeout,
}

/// Runs the session until it ends, then marks it closed for every stream and handle.
pub(super) async fn drive<S>(io: S, shared: Arc<Shared>, accept_tx: mpsc::Sender<MuxStream>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, mut w) = tokio::io::split(io);
    let mut r = FrameReader::new(r);
    let end = {
        let mut read = std::pin::pin!(read_loop(&mut r, &shared, &accept_tx));
        let mut write = std::pin::pin!(write_loop(&mut w, &shared));
        let mut keepalive = std::pin::pin!(keepalive_loop(&shared));
        let mut cancelled = crate::cancel::Cancelled::new(&shared.done);
        // Like `select!`, but the reader and the writer take turns going first instead of
        // a random pick: equally fair, and reproducible under the simulator, whose runtime
        // does not seed tokio's random number generator.
        let mut reader_first = false;
        std::future::poll_fn(|cx| {
            if Pin::new(&mut cancelled).poll(cx).is_ready() {
                return Poll::Ready(End::Local);
            }
            reader_first = !reader_first;
            for reader_turn in [reader_first, !reader_first] {
                let polled = if reader_turn {
                    let polled = read.as_mut().poll(cx);
                    if polled.is_pending() {
                        // All read that could be: hand queued payload to lent sockets.
                        write_through(&shared);
                    }
                    polled
                } else {
                    write.as_mut().poll(cx)
                };
                if let Poll::Ready(end) = polled {
                    return Poll::Ready(end);
                }
            }
            keepalive.as_mut().poll(cx)
        })
        .await
    };
    drop(accept_tx);
    let go_away = match &end {
        End::Local => Some(frame::GO_AWAY_NORMAL),
        End::Protocol(_) => Some(frame::GO_AWAY_PROTOCOL_ERROR),
        _ => None,
    };
    let rest = {
        let mut inner = shared.lock();
        inner.close();
        if let Some(code) = go_away {
            inner
                .out
                .push(Header::new(FrameType::GoAway, 0, 0, code), &[]);
        }
        inner.out.buf.split()
    };
    shared.done.cancel();
    match &end {
        End::PeerClosed | End::Local => tracing::debug!(reason = %end, "yamux session ended"),
        _ => tracing::info!(reason = %end, "yamux session failed"),
    }
    if !matches!(end, End::Io(_)) {
        // Best effort: deliver queued FINs and the GoAway, then close the transport.
        let _ = tokio::time::timeout(FINAL_FLUSH, async {
            w.write_all(&rest).await?;
            w.flush().await?;
            w.shutdown().await
        })
        .await;
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    r: &mut FrameReader<R>,
    shared: &Arc<Shared>,
    accept_tx: &mpsc::Sender<MuxStream>,
) -> End {
    loop {
        wait_for_room(shared).await;
        let header = match r.header().await {
            Ok(h) => h,
            Err(e) => return e.into(),
        };
        let res = match header.ty {
            FrameType::Data | FrameType::WindowUpdate => {
                on_stream_frame(r, shared, accept_tx, header).await
            }
            FrameType::Ping => {
                on_ping(shared, header);
                Ok(())
            }
            FrameType::GoAway => {
                on_go_away(shared, header);
                Ok(())
            }
        };
        if let Err(end) = res {
            return end;
        }
    }
}

impl From<ReadError> for End {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Eof => End::PeerClosed,
            ReadError::Io(e) => End::Io(e),
            ReadError::Protocol(reason) => End::Protocol(reason),
        }
    }
}

/// Pauses the reader while the outbound buffer is over the hard cap.
async fn wait_for_room(shared: &Shared) {
    // The common case, checked before registering for `drained` (which takes the Notify's
    // lock to enable and again to drop): this runs for every frame received.
    if shared.lock().out.buf.len() <= OUT_HARD_CAP {
        return;
    }
    loop {
        let notified = shared.drained.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if shared.lock().out.buf.len() <= OUT_HARD_CAP {
            return;
        }
        notified.await;
    }
}

/// Data and WindowUpdate frames: open/ack/close/reset flags, window, payload.
async fn on_stream_frame<R: AsyncRead + Unpin>(
    r: &mut FrameReader<R>,
    shared: &Arc<Shared>,
    accept_tx: &mpsc::Sender<MuxStream>,
    h: Header,
) -> Result<(), End> {
    if h.has(frame::SYN) {
        accept_stream(shared, accept_tx, h.stream_id)?;
    }
    let known = {
        let mut inner = shared.lock();
        match inner.streams.get_mut(&h.stream_id) {
            None => false,
            Some(slot) if h.ty == FrameType::WindowUpdate => {
                slot.send_window = slot.send_window.saturating_add(h.length);
                if let Some(w) = slot.write_waker.take() {
                    w.wake();
                }
                apply_close_flags(slot, h);
                return Ok(());
            }
            Some(slot) => {
                if h.length > slot.recv_window {
                    return Err(End::Protocol(format!(
                        "stream {} exceeded its receive window ({} > {})",
                        h.stream_id, h.length, slot.recv_window
                    )));
                }
                true
            }
        }
    };
    if h.ty != FrameType::Data {
        return Ok(());
    }
    // Delivered piece by piece as it arrives; a stream dropped meanwhile discards the
    // rest, like hashicorp does for data on unknown (e.g. locally closed) streams. The
    // window was charged for the whole frame above, so the peer cannot overrun it.
    let mut left = h.length as usize;
    let mut charged = false;
    loop {
        let piece = if left == 0 {
            None
        } else {
            Some(r.payload_piece(left).await.map_err(End::from)?)
        };
        left -= piece.as_ref().map_or(0, |p| p.bytes.len());
        if !known {
            if left == 0 {
                return Ok(());
            }
            continue;
        }
        let mut guard = shared.lock();
        let inner = &mut *guard;
        if let Some(slot) = inner.streams.get_mut(&h.stream_id) {
            if !charged {
                // Only this task shrinks the window, so the check above still holds.
                slot.recv_window = slot.recv_window.saturating_sub(h.length);
                charged = true;
            }
            if let Some(piece) = piece.filter(|p| !p.bytes.is_empty()) {
                slot.recv_len += piece.bytes.len();
                let reader_waiting = slot.recv.is_empty() && slot.read_waker.is_some();
                slot.recv
                    .push_back(piece.for_queue(&mut slot.last_chunk, reader_waiting));
                if slot.sink.is_some() && slot.read_waker.is_some() {
                    // The reader waits with nothing taken: written for it (`write_through`).
                    if !slot.through_listed {
                        slot.through_listed = true;
                        inner.through.push(h.stream_id);
                        shared.through_due.store(true, Ordering::Relaxed);
                    }
                } else if let Some(w) = slot.read_waker.take() {
                    w.wake();
                }
            }
            if left == 0 {
                // FIN/RST after the payload, so the reader sees the data before EOF.
                apply_close_flags(slot, h);
            }
        }
        if left == 0 {
            return Ok(());
        }
    }
}

/// Writes the payload queued for streams with a lent socket ([`MuxStream::attach_sink`])
/// whose relay waits on them, as far as each socket takes it without blocking: called when
/// the session's reader has read all the transport had, so each stream's payload of that read
/// goes out in one vectored write, as its relay would have written it. A stream whose relay
/// took anything since it was listed is skipped (its relay was woken and writes it); whatever
/// a socket does not take stays queued, in order, and its relay is woken for it.
fn write_through(shared: &Shared) {
    if !shared.through_due.swap(false, Ordering::Relaxed) {
        return;
    }
    let mut guard = shared.lock();
    let inner = &mut *guard;
    let max_window = shared.config.max_stream_window;
    let mut granted = false;
    for id in inner.through.drain(..) {
        let Some(slot) = inner.streams.get_mut(&id) else {
            continue;
        };
        slot.through_listed = false;
        let (Some(sink), true) = (&slot.sink, slot.read_waker.is_some()) else {
            continue;
        };
        let mut iov = [IoSlice::new(&[]); MAX_THROUGH_IOV];
        let k = iov.len().min(slot.recv.len());
        for (v, b) in iov.iter_mut().zip(&slot.recv) {
            *v = IoSlice::new(b);
        }
        let len: usize = iov[..k].iter().map(|v| v.len()).sum();
        let tcp = &sink.tcp;
        // Any error (would block, or the socket's own) leaves the bytes to the relay, which
        // waits for the socket or meets the error itself.
        let n = lent::try_op(tcp, Interest::WRITABLE, len, || match k {
            1 => tcp.try_write(&slot.recv[0]),
            _ => tcp.try_write_vectored(&iov[..k]),
        })
        .unwrap_or(0);
        if n > 0 {
            sink.written.fetch_add(n as u64, Ordering::Relaxed);
            slot.recv_len -= n;
            lent::advance(&mut slot.recv, n);
            if let Some(delta) = slot.regrant(max_window) {
                inner
                    .out
                    .push(Header::new(FrameType::WindowUpdate, 0, id, delta), &[]);
                granted = true;
            }
        }
        if !slot.recv.is_empty() {
            if let Some(w) = slot.read_waker.take() {
                w.wake();
            }
        }
    }
    if granted {
        shared.writer_wake.notify_one();
    }
}

/// Slices per write in [`write_through`] (as `proxies::mux_relay`'s vectored writes).
const MAX_THROUGH_IOV: usize = 64;

fn apply_close_flags(slot: &mut StreamSlot, h: Header) {
    if h.has(frame::FIN) {
        slot.remote_fin = true;
        if let Some(w) = slot.read_waker.take() {
            w.wake();
        }
    }
    if h.has(frame::RST) {
        slot.reset = true;
        slot.wake_all();
    }
}

/// A SYN from the peer: register the stream and ACK it at once (with our full window),
/// exactly as hashicorp yamux does; Go closes the session if the ACK takes 75 s.
fn accept_stream(
    shared: &Arc<Shared>,
    accept_tx: &mpsc::Sender<MuxStream>,
    id: u32,
) -> Result<(), End> {
    let max = shared.config.max_stream_window;
    let mut inner = shared.lock();
    if id == 0 || inner.streams.contains_key(&id) {
        return Err(End::Protocol(format!(
            "duplicate or invalid stream id {id}"
        )));
    }
    if shared.done.is_cancelled() || accept_tx.capacity() == 0 || accept_tx.is_closed() {
        // Backlog full (or nobody accepts): refuse with RST like hashicorp.
        inner
            .out
            .push(Header::new(FrameType::WindowUpdate, frame::RST, id, 0), &[]);
        drop(inner);
        shared.writer_wake.notify_one();
        tracing::warn!(stream = id, "yamux accept backlog full, stream reset");
        return Ok(());
    }
    inner.streams.insert(id, StreamSlot::new(max));
    inner.out.push(
        Header::new(
            FrameType::WindowUpdate,
            frame::ACK,
            id,
            max - INITIAL_STREAM_WINDOW,
        ),
        &[],
    );
    drop(inner);
    shared.writer_wake.notify_one();
    // Cannot fail for lack of room (we are the only sender and checked capacity); if the
    // receiver vanished meanwhile, dropping the stream sends FIN.
    let _ = accept_tx.try_send(MuxStream::new(shared.clone(), id));
    Ok(())
}

fn on_ping(shared: &Shared, h: Header) {
    let mut inner = shared.lock();
    if h.has(frame::SYN) {
        inner
            .out
            .push(Header::new(FrameType::Ping, frame::ACK, 0, h.length), &[]);
        drop(inner);
        shared.writer_wake.notify_one();
    } else if h.has(frame::ACK) && matches!(&inner.ping, Some((id, _)) if *id == h.length) {
        if let Some((_, tx)) = inner.ping.take() {
            let _ = tx.send(());
        }
    }
}

fn on_go_away(shared: &Shared, h: Header) {
    shared.lock().remote_go_away = true;
    if h.length != frame::GO_AWAY_NORMAL {
        tracing::warn!(code = h.length, "yamux peer sent GoAway with an error code");
    }
}

/// Drains the outbound buffer into the transport, coalescing queued frames.
///
/// Two buffers take turns: the streams append to one while this loop writes the other,
/// so neither is reallocated per write (a fresh buffer per write made the streams grow
/// it by reallocation and page-fault their way through new memory: a fault per ~30 KiB
/// sent). A buffer that grew large is released once the session has been quiet for
/// [`SHRINK_AFTER`] (checked when the writer wakes, e.g. for a keepalive ping).
async fn write_loop<W: AsyncWrite + Unpin>(w: &mut W, shared: &Shared) -> End {
    let mut chunk = BytesMut::new();
    let mut last_busy = Instant::now();
    loop {
        {
            let mut inner = shared.lock();
            std::mem::swap(&mut inner.out.buf, &mut chunk);
            // Room was made: writers blocked on the high-water mark may continue.
            inner.out.wake_waiters();
        }
        if chunk.is_empty() {
            // notify_one stores a permit, so a frame queued since the check is not missed.
            shared.writer_wake.notified().await;
            // Let the tasks that are ready now (other streams' relays, the control writer)
            // queue their frames first, so they leave in one write: with many small
            // messages (requests, new connections) this saves a syscall and a wake-up of
            // the peer per frame. Measured: +8 % keep-alive req/s, +11 % new connections/s,
            // throughput unchanged (bench/NOTES.md).
            yield_once().await;
            continue;
        }
        if let Err(e) = w.write_all(&chunk).await {
            return End::Io(e);
        }
        if let Err(e) = w.flush().await {
            return End::Io(e);
        }
        shared.drained.notify_waiters();
        let now = Instant::now();
        if chunk.len() > KEEP_BUFFER {
            last_busy = now;
        } else if chunk.capacity() > KEEP_BUFFER && now.duration_since(last_busy) > SHRINK_AFTER {
            chunk = BytesMut::new();
            continue;
        }
        chunk.clear();
    }
}

/// Gives the other ready tasks a turn: the task wakes itself and returns `Pending` once, so the
/// scheduler puts it at the back of its run queue. Not `tokio::task::yield_now`, which defers
/// the wake-up until the runtime has polled its drivers: that ordering is not reproducible
/// under the simulator (`sim/tests/determinism.rs` caught it).
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// Sends a ping every interval and ends the session if one is not answered in time
/// (hashicorp `keepalive`: `ErrKeepAliveTimeout`).
async fn keepalive_loop(shared: &Shared) -> End {
    let Some(interval) = shared.config.keepalive_interval else {
        return std::future::pending().await;
    };
    let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_id: u32 = 0;
    loop {
        ticker.tick().await;
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = shared.lock();
            inner.ping = Some((next_id, tx));
            inner
                .out
                .push(Header::new(FrameType::Ping, frame::SYN, 0, next_id), &[]);
        }
        shared.writer_wake.notify_one();
        next_id = next_id.wrapping_add(1);
        match tokio::time::timeout(shared.config.keepalive_timeout, rx).await {
            Ok(Ok(())) => {}
            _ => return End::KeepaliveTimeout,
        }
    }
}

//! One KCP session: the shared state, its driver task and the [`KcpStream`] handle.
//!
//! # Actor layout
//!
//! `Shared` holds the KCP core, the FEC codec, the outgoing datagram queue and the
//! reader/writer wakers behind one mutex that is never held across an await. Three
//! parties touch it:
//!
//! * the **stream** ([`KcpStream`]): reads from the core, queues writes (respecting the
//!   send window, so writers wait instead of buffering without bound) and flushes at
//!   once unless write delay is on;
//! * the **datagram source**: the listener's socket reader, or for a dialed session the
//!   driver itself, feeds received datagrams through FEC into the core;
//! * the **driver** task: runs the core's flush timer, sends queued datagrams on the UDP
//!   socket, and ends the session (dead link, stream dropped and everything delivered,
//!   linger expired, replaced by the listener).
//!
//! Dropping the stream does not stop the session at once: KCP has no close handshake, so
//! the driver keeps flushing until the peer acknowledged everything or `linger` expires
//! (kcp-go flushes once on `Close`; waiting for the ACKs is strictly more reliable).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::config::KcpConfig;
use super::core::{Kcp, Stats};
use super::fec::{classify, FecDecoder, FecEncoder, Framing};
use super::udp::{Batch, KcpSocket, RecvBuf};
use crate::net::DatagramSocket;

/// Lifecycle of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// The stream was dropped; deliver what is queued until the deadline.
    Closing(Instant),
    /// Ended; the error kind is what the stream reports.
    Dead(io::ErrorKind),
}

/// Everything of a session behind the mutex.
#[derive(Debug)]
pub(crate) struct Inner {
    kcp: Kcp,
    enc: Option<FecEncoder>,
    dec: Option<FecDecoder>,
    /// Datagrams waiting for the driver.
    out: Batch,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    state: State,
    epoch: Instant,
    write_delay: bool,
    ack_nodelay: bool,
}

impl Inner {
    fn now(&self) -> (u32, u64) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        (ms as u32, ms)
    }

    /// Runs a KCP flush, framing its datagrams into `out`; returns the next delay in ms.
    fn flush(&mut self, ack_only: bool) -> u32 {
        let (now, now64) = self.now();
        let Inner { kcp, enc, out, .. } = self;
        kcp.flush(now, ack_only, &mut |dg: &[u8]| match enc {
            Some(enc) => enc.encode_with(dg, now64, &mut |p| out.push(p)),
            None => out.push(dg),
        })
    }

    fn input(&mut self, kcp_bytes: &[u8], regular: bool) -> bool {
        let (now, _) = self.now();
        matches!(self.kcp.input(kcp_bytes, regular, now), Ok(true))
    }

    /// Processes received datagrams, then flushes once: the ACKs and the segments the
    /// window now admits leave together (kcp-go flushes after each datagram that slid the
    /// window; one flush per read batch sends the same, in fewer datagrams).
    fn on_datagrams(&mut self, datagrams: &[&[u8]]) {
        if matches!(self.state, State::Dead(_)) {
            return;
        }
        let mut slid = false;
        for dg in datagrams {
            slid |= self.on_datagram(dg);
        }
        if slid {
            self.flush(false);
        } else if self.ack_nodelay && self.kcp.has_pending_acks() {
            self.flush(true);
        }
        self.check_dead();
        self.wake();
    }

    /// Processes one received datagram (FEC-framed or raw KCP); returns whether the send
    /// window slid.
    fn on_datagram(&mut self, datagram: &[u8]) -> bool {
        let mut slid = false;
        match classify(datagram) {
            Framing::Raw(kcp) => slid |= self.input(kcp, true),
            Framing::Data(kcp) => {
                slid |= self.input(kcp, true);
                slid |= self.fec_decode(datagram);
            }
            Framing::Parity => slid |= self.fec_decode(datagram),
            Framing::Invalid => {}
        }
        slid
    }

    fn fec_decode(&mut self, datagram: &[u8]) -> bool {
        let Some(dec) = self.dec.as_mut() else {
            return false;
        };
        let mut recovered = Vec::new();
        dec.decode(datagram, &mut |kcp| recovered.push(kcp.to_vec()));
        let mut slid = false;
        for r in recovered {
            slid |= self.input(&r, false);
        }
        slid
    }

    fn check_dead(&mut self) {
        if self.kcp.is_dead() && !matches!(self.state, State::Dead(_)) {
            tracing::debug!(
                conv = self.kcp.conv(),
                "KCP session dead: retransmissions unanswered"
            );
            self.state = State::Dead(io::ErrorKind::TimedOut);
        }
    }

    /// Wakes the reader if there is data (or an end), the writer if there is room.
    fn wake(&mut self) {
        let dead = matches!(self.state, State::Dead(_));
        if dead || self.kcp.readable() {
            if let Some(w) = self.read_waker.take() {
                w.wake();
            }
        }
        if dead || self.kcp.send_room() > 0 {
            if let Some(w) = self.write_waker.take() {
                w.wake();
            }
        }
    }

    fn kill(&mut self, kind: io::ErrorKind) {
        if !matches!(self.state, State::Dead(_)) {
            self.state = State::Dead(kind);
        }
        self.wake();
    }
}

/// The state shared by a session's stream, driver and datagram source.
#[derive(Debug)]
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// Wakes the driver: datagrams queued, or the state changed.
    driver: Notify,
    linger: Duration,
}

impl Shared {
    pub(crate) fn new(conv: u32, cfg: &KcpConfig) -> Arc<Self> {
        let enc = (cfg.fec_data_shards > 0)
            .then(|| FecEncoder::new(cfg.fec_data_shards, cfg.fec_parity_shards).ok())
            .flatten();
        let (d, p) = cfg.decoder_shards();
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                kcp: Kcp::new(conv, &cfg.core()),
                enc,
                dec: FecDecoder::new(d, p).ok(),
                out: Batch::default(),
                read_waker: None,
                write_waker: None,
                state: State::Open,
                epoch: Instant::now(),
                write_delay: cfg.write_delay,
                ack_nodelay: cfg.ack_nodelay,
            }),
            driver: Notify::new(),
            linger: cfg.linger,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent-enough state for KCP (worst
        // case the session stalls and dies by dead link); do not propagate poisoning.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn conv(&self) -> u32 {
        self.lock().kcp.conv()
    }

    pub(crate) fn is_dead(&self) -> bool {
        matches!(self.lock().state, State::Dead(_))
    }

    /// Feeds datagrams from the peer (one read's worth).
    pub(crate) fn on_datagrams(&self, datagrams: &[&[u8]]) {
        let mut inner = self.lock();
        inner.on_datagrams(datagrams);
        if !inner.out.is_empty() || matches!(inner.state, State::Dead(_)) {
            self.driver.notify_one();
        }
    }

    /// Ends the session (for example when the listener replaces it).
    pub(crate) fn kill(&self, kind: io::ErrorKind) {
        self.lock().kill(kind);
        self.driver.notify_one();
    }

    /// One driver step: flush if due, move the queued datagrams into `take` (which must
    /// be empty; the two buffers swap, so neither is reallocated), decide whether to end.
    fn step(&self, flush_due: bool, take: &mut Batch) -> (Option<u32>, bool) {
        let mut inner = self.lock();
        let next = flush_due.then(|| inner.flush(false));
        inner.check_dead();
        let now = Instant::now();
        let end = match inner.state {
            State::Open => false,
            State::Closing(deadline) => inner.kcp.wait_snd() == 0 || now >= deadline,
            State::Dead(_) => true,
        };
        if end {
            inner.kill(io::ErrorKind::ConnectionAborted);
        } else {
            inner.wake();
        }
        std::mem::swap(&mut inner.out, take);
        (next, end)
    }
}

/// Runs a session until it ends: flush timer, sending, and (for a dialed session,
/// `receive`) reading the socket. Datagrams from other sources than the first peer
/// seen are ignored, as kcp-go's client read loop does.
pub(crate) async fn drive<S: DatagramSocket>(
    shared: Arc<Shared>,
    socket: Arc<KcpSocket<S>>,
    peer: SocketAddr,
    receive: bool,
) {
    let mut next_flush = Instant::now();
    let mut batch = Batch::default();
    let mut rbuf = RecvBuf::default();
    let mut source: Option<SocketAddr> = None;
    loop {
        let due = Instant::now() >= next_flush;
        batch.clear();
        let (next, end) = shared.step(due, &mut batch);
        if let Some(ms) = next {
            next_flush = Instant::now() + Duration::from_millis(u64::from(ms.max(1)));
        }
        if !batch.is_empty() {
            socket.send(&batch, peer).await;
        }
        if end {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next_flush) => {}
            _ = shared.driver.notified() => {}
            r = socket.recv(&mut rbuf), if receive => match r {
                Ok(datagrams) => {
                    let from_peer: Vec<&[u8]> = datagrams
                        .into_iter()
                        .filter(|(from, _)| *source.get_or_insert(*from) == *from)
                        .map(|(_, dg)| dg)
                        .collect();
                    shared.on_datagrams(&from_peer);
                }
                Err(e) if is_transient(&e) => {}
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "KCP socket read failed");
                    shared.kill(e.kind());
                }
            },
        }
    }
}

/// UDP errors that do not end a socket (ICMP reports surfacing on some platforms).
pub(crate) fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// A KCP session as a reliable, ordered byte stream.
///
/// Writes wait while the send window is full. Dropping the stream stops the session
/// once the peer acknowledged what was written (or after the configured linger). Reads
/// and writes fail once the session is dead (no answer after `dead_link`
/// retransmissions, replaced by a new session from the same address, socket error).
#[derive(Debug)]
pub struct KcpStream {
    shared: Arc<Shared>,
    peer: SocketAddr,
}

impl KcpStream {
    pub(crate) fn new(shared: Arc<Shared>, peer: SocketAddr) -> Self {
        KcpStream { shared, peer }
    }

    /// The peer's UDP address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The KCP conversation id.
    pub fn conv(&self) -> u32 {
        self.shared.conv()
    }

    /// The session's KCP counters (retransmissions, duplicates).
    pub fn stats(&self) -> Stats {
        self.shared.lock().kcp.stats()
    }
}

fn dead_error(kind: io::ErrorKind) -> io::Error {
    io::Error::new(kind, "KCP session closed")
}

impl AsyncRead for KcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut inner = self.shared.lock();
        if inner.kcp.readable() {
            let n = inner.kcp.recv(buf.initialize_unfilled());
            buf.advance(n);
            return Poll::Ready(Ok(()));
        }
        if let State::Dead(kind) = inner.state {
            return Poll::Ready(Err(dead_error(kind)));
        }
        inner.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for KcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut inner = self.shared.lock();
        if let State::Dead(kind) = inner.state {
            return Poll::Ready(Err(dead_error(kind)));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = inner.kcp.send_room();
        if room == 0 {
            inner.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(room.saturating_mul(inner.kcp.mss()));
        inner.kcp.send(&buf[..n]);
        // kcp-go flushes on write only without write delay or when the window is full.
        if !inner.write_delay || inner.kcp.send_room() == 0 {
            inner.flush(false);
            self.shared.driver.notify_one();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Bytes handed to KCP are sent by the next flush tick (write delay) or already
        // were; as with kcp-go's `Write`, there is nothing more to wait for.
        match self.shared.lock().state {
            State::Dead(kind) => Poll::Ready(Err(dead_error(kind))),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // KCP has no half-close: push out what is queued; the session ends on drop.
        let mut inner = self.shared.lock();
        if !matches!(inner.state, State::Dead(_)) {
            inner.flush(false);
            self.shared.driver.notify_one();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for KcpStream {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        if inner.state == State::Open {
            inner.state = State::Closing(Instant::now() + self.shared.linger);
            inner.flush(false);
        }
        drop(inner);
        self.shared.driver.notify_one();
    }
}

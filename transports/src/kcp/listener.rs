//! [`KcpListener`]: KCP sessions demultiplexed by peer address over one UDP socket
//! (kcp-go `Listener`).
//!
//! One reader task owns the socket's receive side and the session table (no shared
//! map): it feeds each datagram to the session of its source address, creates sessions
//! and hands them to [`KcpListener::accept`] through a bounded queue. Each session has
//! its own driver task (timers, sending) sharing the socket.
//!
//! Session rules, after kcp-go `Listener.packetInput`:
//! * a datagram from a known address with the session's conv (or an FEC parity shard)
//!   goes to that session;
//! * a datagram whose first segment is a PUSH with `sn == 0` and another conv replaces
//!   the session (the peer restarted);
//! * a new session is created only by a PUSH with `sn == 0` (kcp-go accepts any
//!   segment, so a stray ACK after a session ended creates a phantom session there;
//!   every real dialer starts with `sn == 0` and resends it until acknowledged), only
//!   while the accept queue has room and fewer than `max_sessions` sessions live;
//! * anything else (junk, short datagrams) is dropped.
//!
//! Dropping the listener stops accepting; sessions already accepted keep running until
//! they end, then the reader task exits.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::config::KcpConfig;
use super::core::{peek_header, CMD_PUSH};
use super::fec::{classify, Framing};
use super::session::{drive, is_transient, KcpStream, Shared};
use super::udp::{KcpSocket, Received, RecvBuf};
use crate::net::{DatagramSocket, Net};

/// How often the reader checks for ended sessions and a dropped listener.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// A bound KCP listener (frps's `kcpBindPort`).
#[derive(Debug)]
pub struct KcpListener {
    accepted: mpsc::Receiver<(KcpStream, SocketAddr)>,
    local: SocketAddr,
}

impl KcpListener {
    /// Binds the UDP socket through `net` and starts the reader task.
    pub async fn bind<N: Net>(net: &N, addr: SocketAddr, cfg: KcpConfig) -> io::Result<Self> {
        cfg.validate()?;
        let socket = Arc::new(KcpSocket::new(net.bind_udp(addr).await?)?);
        let local = socket.local_addr()?;
        let (tx, accepted) = mpsc::channel(cfg.accept_backlog);
        let reader = Reader {
            socket,
            cfg,
            tx,
            sessions: HashMap::new(),
        };
        tokio::spawn(reader.run());
        Ok(KcpListener { accepted, local })
    }

    /// Waits for the next new session. Cancel safe. Fails once the socket failed.
    pub async fn accept(&mut self) -> io::Result<(KcpStream, SocketAddr)> {
        self.accepted
            .recv()
            .await
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "KCP listener socket closed"))
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

struct Reader<S> {
    socket: Arc<KcpSocket<S>>,
    cfg: KcpConfig,
    tx: mpsc::Sender<(KcpStream, SocketAddr)>,
    sessions: HashMap<SocketAddr, Arc<Shared>>,
}

impl<S: DatagramSocket> Reader<S> {
    async fn run(mut self) {
        let mut buf = RecvBuf::default();
        let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
        let socket = self.socket.clone();
        loop {
            tokio::select! {
                r = socket.recv(&mut buf) => match r {
                    Ok(datagrams) => self.on_batch(datagrams),
                    Err(e) if is_transient(&e) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "KCP listener socket failed");
                        for s in self.sessions.values() {
                            s.kill(e.kind());
                        }
                        return;
                    }
                },
                _ = sweep.tick() => {
                    self.sessions.retain(|_, s| !s.is_dead());
                    if self.tx.is_closed() && self.sessions.is_empty() {
                        return;
                    }
                }
            }
        }
    }

    /// Hands a read's datagrams to their sessions, consecutive datagrams of one session
    /// together (a GRO batch is one peer's), so that the session runs one flush for them.
    fn on_batch(&mut self, datagrams: Received<'_>) {
        let mut run: Vec<&[u8]> = Vec::new();
        let mut run_session: Option<Arc<Shared>> = None;
        for (from, dg) in datagrams {
            if let Some(session) = self.live_session_for(dg, from) {
                if !run_session
                    .as_ref()
                    .is_some_and(|s| Arc::ptr_eq(s, &session))
                {
                    deliver(run_session.replace(session), &mut run);
                }
                run.push(dg);
            } else {
                deliver(run_session.take(), &mut run);
                self.on_datagram(dg, from);
            }
        }
        deliver(run_session, &mut run);
    }

    /// The session a datagram belongs to when that is all there is to do with it: a live
    /// session of `from` and a datagram of its conversation (or one without a header).
    fn live_session_for(&self, datagram: &[u8], from: SocketAddr) -> Option<Arc<Shared>> {
        let session = self.sessions.get(&from)?;
        if session.is_dead() {
            return None;
        }
        let head = match classify(datagram) {
            Framing::Data(kcp) | Framing::Raw(kcp) => peek_header(kcp),
            Framing::Parity | Framing::Invalid => None,
        };
        match head {
            Some((conv, _, _)) if conv != session.conv() => None,
            _ => Some(session.clone()),
        }
    }

    fn on_datagram(&mut self, datagram: &[u8], from: SocketAddr) {
        let head = match classify(datagram) {
            Framing::Data(kcp) | Framing::Raw(kcp) => peek_header(kcp),
            Framing::Parity | Framing::Invalid => None,
        };
        let opens = matches!(head, Some((_, CMD_PUSH, 0)));
        if let Some(session) = self.sessions.get(&from) {
            if !session.is_dead() {
                match head {
                    Some((conv, _, _)) if conv != session.conv() => {
                        if !opens {
                            return;
                        }
                        tracing::debug!(%from, conv, "KCP session replaced by a new conversation");
                        session.kill(io::ErrorKind::ConnectionReset);
                    }
                    _ => return session.on_datagrams(&[datagram]),
                }
            }
            self.sessions.remove(&from);
        }
        if let (true, Some((conv, _, _))) = (opens, head) {
            self.open(conv, datagram, from);
        }
    }

    fn open(&mut self, conv: u32, datagram: &[u8], from: SocketAddr) {
        if self.sessions.len() >= self.cfg.max_sessions {
            self.sessions.retain(|_, s| !s.is_dead());
            if self.sessions.len() >= self.cfg.max_sessions {
                tracing::debug!(%from, "KCP session limit reached; datagram dropped");
                return;
            }
        }
        let Ok(permit) = self.tx.try_reserve() else {
            return; // accept queue full, or listener dropped
        };
        let shared = Shared::new(conv, &self.cfg);
        shared.on_datagrams(&[datagram]);
        self.sessions.insert(from, shared.clone());
        tokio::spawn(drive(shared.clone(), self.socket.clone(), from, false));
        tracing::debug!(%from, conv, "KCP session opened");
        permit.send((KcpStream::new(shared, from), from));
    }
}

/// Feeds `run` to `session` (if any) and empties it.
fn deliver(session: Option<Arc<Shared>>, run: &mut Vec<&[u8]>) {
    if let Some(s) = session {
        if !run.is_empty() {
            s.on_datagrams(run);
        }
    }
    run.clear();
}

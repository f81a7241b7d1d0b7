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

use super::config::{KcpConfig, MAX_DATAGRAM};
use super::core::{peek_header, CMD_PUSH};
use super::fec::{classify, Framing};
use super::session::{drive, is_transient, KcpStream, Shared};
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
        let socket = Arc::new(net.bind_udp(addr).await?);
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
    socket: Arc<S>,
    cfg: KcpConfig,
    tx: mpsc::Sender<(KcpStream, SocketAddr)>,
    sessions: HashMap<SocketAddr, Arc<Shared>>,
}

impl<S: DatagramSocket> Reader<S> {
    async fn run(mut self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => self.on_datagram(&buf[..n], from),
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
                    _ => return session.on_datagram(datagram),
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
        shared.on_datagram(datagram);
        self.sessions.insert(from, shared.clone());
        tokio::spawn(drive(shared.clone(), self.socket.clone(), from, false));
        tracing::debug!(%from, conv, "KCP session opened");
        permit.send((KcpStream::new(shared, from), from));
    }
}

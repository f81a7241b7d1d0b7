//! [`TurmoilNet`]: the [`transports::Net`] seam on turmoil's simulated network. Sockets belong
//! to the simulated host whose task opens them; randomness comes from a generator seeded by the
//! scenario, and every outgoing TCP dial can be recorded in a [`Trace`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use transports::{DatagramSocket, Listener, Net};

use crate::trace::{DialResult, Event, Trace};

/// The turmoil implementation of the socket seam.
///
/// `TurmoilNet::default()` draws randomness from the OS like production; scenarios use
/// [`TurmoilNet::seeded`] so run ids, port picks and backoff jitter replay from the seed.
#[derive(Clone, Default)]
pub struct TurmoilNet {
    rng: Option<Arc<Mutex<StdRng>>>,
    dials: Option<(Trace, Arc<str>)>,
}

impl std::fmt::Debug for TurmoilNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurmoilNet")
            .field("seeded", &self.rng.is_some())
            .field("dials", &self.dials.as_ref().map(|(_, host)| host))
            .finish()
    }
}

impl TurmoilNet {
    /// A network whose [`Net::random_u64`] replays from `seed`.
    pub fn seeded(seed: u64) -> Self {
        Self {
            rng: Some(Arc::new(Mutex::new(StdRng::seed_from_u64(seed)))),
            dials: None,
        }
    }

    /// Records every TCP dial of this host (`host` names it) as [`Event::Dial`] in `trace`.
    pub fn with_dial_log(mut self, trace: Trace, host: &str) -> Self {
        self.dials = Some((trace, host.into()));
        self
    }
}

impl Net for TurmoilNet {
    type Tcp = turmoil::net::TcpStream;
    type Listener = TurmoilListener;
    type Udp = TurmoilUdp;

    fn connect_tcp(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = io::Result<Self::Tcp>> + Send {
        let host = host.to_owned();
        let dials = self.dials.clone();
        async move {
            let mut record = dials.map(|(trace, from)| DialRecord {
                trace,
                from,
                to: host.clone(),
                port,
                started: turmoil::sim_elapsed().unwrap_or_default(),
                result: DialResult::Abandoned,
            });
            let result = turmoil::net::TcpStream::connect((host.as_str(), port)).await;
            if let Some(r) = &mut record {
                r.result = if result.is_ok() {
                    DialResult::Connected
                } else {
                    DialResult::Refused
                };
            }
            result
        }
    }

    async fn bind_tcp(&self, addr: SocketAddr) -> io::Result<Self::Listener> {
        let inner = turmoil::net::TcpListener::bind(addr).await?;
        Ok(TurmoilListener { inner })
    }

    async fn bind_udp(&self, addr: SocketAddr) -> io::Result<Self::Udp> {
        Ok(TurmoilUdp(turmoil::net::UdpSocket::bind(addr).await?))
    }

    fn random_u64(&self) -> u64 {
        match &self.rng {
            Some(rng) => rng.lock().unwrap_or_else(|e| e.into_inner()).next_u64(),
            None => rand::random(),
        }
    }
}

/// A simulated TCP listener.
pub struct TurmoilListener {
    inner: turmoil::net::TcpListener,
}

impl Listener for TurmoilListener {
    type Io = turmoil::net::TcpStream;

    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, SocketAddr)>> + Send {
        self.inner.accept()
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A simulated UDP socket.
pub struct TurmoilUdp(turmoil::net::UdpSocket);

impl DatagramSocket for TurmoilUdp {
    fn send_to(
        &self,
        buf: &[u8],
        target: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send {
        self.0.send_to(buf, target)
    }

    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send {
        self.0.recv_from(buf)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// Records one dial when dropped: at its end, or when the dialler gives up on it (a timeout
/// dropping the future, the host crashing), which then counts as abandoned.
struct DialRecord {
    trace: Trace,
    from: Arc<str>,
    to: String,
    port: u16,
    started: std::time::Duration,
    result: DialResult,
}

impl Drop for DialRecord {
    fn drop(&mut self) {
        // A crash tears the host's tasks down outside its runtime, where no simulated clock
        // can be read: such a dial is stamped with its start, which keeps traces replayable.
        let at = if tokio::runtime::Handle::try_current().is_ok() {
            turmoil::sim_elapsed().unwrap_or(self.started)
        } else {
            self.started
        };
        self.trace.record_at(
            at,
            Event::Dial {
                from: self.from.to_string(),
                to: std::mem::take(&mut self.to),
                port: self.port,
                started: self.started,
                result: self.result,
            },
        );
    }
}

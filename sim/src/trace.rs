//! The event log of one simulation run: what the test observed, in order, with the simulated
//! time it happened at. Two runs with one seed must produce equal traces; the property checks
//! read them.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Something a scenario observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A simulated host dialled `to:port` (recorded by [`crate::TurmoilNet`] when the dial
    /// ends; the entry's time is when it ended).
    Dial {
        /// The dialling host.
        from: String,
        /// The target host name.
        to: String,
        /// The target port.
        port: u16,
        /// When the dial started.
        started: Duration,
        /// How it ended.
        result: DialResult,
    },
    /// Established TCP connections on frps's host changed.
    Sockets(usize),
    /// The scenario applied a fault or ended one.
    Fault(String),
    /// A user transfer ended.
    Transfer(TransferOutcome),
    /// frps's live counts changed.
    Stats(frps::Stats),
}

/// How a dial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialResult {
    /// The TCP connection was established.
    Connected,
    /// Refused (nothing listening, or the link is cut).
    Refused,
    /// Given up by the dialler (its timeout, or its host crashed) before an answer.
    Abandoned,
}

/// How one user transfer through the tunnel went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferOutcome {
    /// The transfer's number (it also seeds its payload).
    pub id: u64,
    /// When the user started connecting.
    pub started: Duration,
    /// Bytes written.
    pub sent: usize,
    /// Bytes echoed back, verified against what was sent.
    pub echoed: usize,
    /// Whether every byte came back (the transfer completed).
    pub complete: bool,
    /// Why the transfer stopped early; `corrupt` marks data that came back wrong.
    pub error: Option<String>,
    /// Echoed bytes differed from the bytes sent (or came back out of order).
    pub corrupt: bool,
}

/// One entry of a [`Trace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Simulated time since the simulation started.
    pub at: Duration,
    /// What happened.
    pub event: Event,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>10.3}s {:?}", self.at.as_secs_f64(), self.event)
    }
}

/// A shared, append-only event log. Cheap to clone; all clones append to one log.
#[derive(Clone, Default, Debug)]
pub struct Trace(Arc<Mutex<Vec<Entry>>>);

impl Trace {
    /// An empty trace.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `event` at the current host's simulated time (from inside a simulated host).
    pub fn record(&self, event: Event) {
        let at = turmoil::sim_elapsed().unwrap_or_default();
        self.record_at(at, event);
    }

    /// Records `event` at `at` (from the test driving the simulation).
    pub fn record_at(&self, at: Duration, event: Event) {
        self.lock().push(Entry { at, event });
    }

    /// A copy of every entry so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

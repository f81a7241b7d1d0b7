//! Application heartbeat bookkeeping for both ends of a control connection, without clocks.
//!
//! Mirrors frp 0.65.0 `client/control.go heartbeatWorker` and `server/control.go
//! heartbeatWorker`:
//!
//! * frpc sends a `Ping` as soon as the control starts and then every
//!   `transport.heartbeatInterval` seconds; every second it checks that the last `Pong`
//!   (initially: the control's start) is no older than `transport.heartbeatTimeout`.
//!   The timeout check runs only when *both* values are positive.
//! * frps checks every second that the last valid `Ping` (initially: the control's start)
//!   is no older than its `transport.heartbeatTimeout`.
//!
//! A value ≤ 0 disables the feature (frp's default with `tcpMux = true` is -1). Both checks
//! use "strictly older than", as Go's `time.Since(last) > timeout`.
//!
//! The owner calls `handle_timeout(now)` whenever `poll_timeout()` has passed.

use std::time::{Duration, Instant};

/// How often both sides check for a heartbeat timeout (`wait.Until(.., time.Second, ..)`).
pub const HEARTBEAT_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A positive number of seconds as a duration; ≤ 0 means disabled.
fn positive_secs(secs: i64) -> Option<Duration> {
    u64::try_from(secs)
        .ok()
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
}

/// Whether `now - last > timeout`.
fn older_than(last: Instant, now: Instant, timeout: Option<Duration>) -> bool {
    timeout.is_some_and(|t| now.saturating_duration_since(last) > t)
}

/// What the client should do after [`ClientHeartbeat::handle_timeout`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientHeartbeatAction {
    /// Send a `Ping` now (signed by the auth setter if the `HeartBeats` scope is on).
    pub send_ping: bool,
    /// No `Pong` for longer than the timeout: close the session.
    pub expired: bool,
}

/// frpc's side: when to ping and when the server has gone quiet.
#[derive(Debug, Clone)]
pub struct ClientHeartbeat {
    interval: Option<Duration>,
    timeout: Option<Duration>,
    last_pong: Instant,
    next_ping: Option<Instant>,
    next_check: Option<Instant>,
}

impl ClientHeartbeat {
    /// Starts bookkeeping for a control that begins at `now`, with frp's
    /// `heartbeatInterval` / `heartbeatTimeout` in seconds (≤ 0 disables).
    pub fn new(interval_secs: i64, timeout_secs: i64, now: Instant) -> Self {
        let interval = positive_secs(interval_secs);
        // frp only checks the timeout when pings are being sent at all.
        let timeout = interval.and(positive_secs(timeout_secs));
        Self {
            interval,
            timeout,
            last_pong: now,
            next_ping: interval.map(|_| now),
            next_check: timeout.map(|_| now + HEARTBEAT_CHECK_INTERVAL),
        }
    }

    /// Records a successful `Pong`. A `Pong` carrying an error must instead close the session
    /// (frp `client/control.go handlePong`).
    pub fn on_pong(&mut self, now: Instant) {
        self.last_pong = now;
    }

    /// Whether the last `Pong` is older than the timeout (always false when disabled).
    pub fn is_expired(&self, now: Instant) -> bool {
        older_than(self.last_pong, now, self.timeout)
    }

    /// When [`Self::handle_timeout`] next needs to run, or `None` if heartbeats are off.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_ping, self.next_check) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advances the timers to `now`: a due ping is reported once and the next one scheduled
    /// an interval later; a due check evaluates [`Self::is_expired`].
    pub fn handle_timeout(&mut self, now: Instant) -> ClientHeartbeatAction {
        let mut action = ClientHeartbeatAction::default();
        if let (Some(due), Some(interval)) = (self.next_ping, self.interval) {
            if now >= due {
                action.send_ping = true;
                // Sliding like Go's BackoffUntil: the next tick counts from this ping.
                self.next_ping = Some(now + interval);
            }
        }
        if let Some(due) = self.next_check {
            if now >= due {
                action.expired = self.is_expired(now);
                self.next_check = Some(now + HEARTBEAT_CHECK_INTERVAL);
            }
        }
        action
    }
}

/// frps' side: when a client has gone quiet.
#[derive(Debug, Clone)]
pub struct ServerHeartbeat {
    timeout: Option<Duration>,
    last_ping: Instant,
    next_check: Option<Instant>,
}

impl ServerHeartbeat {
    /// Starts bookkeeping for a control that begins at `now`, with frps'
    /// `transport.heartbeatTimeout` in seconds (≤ 0 disables).
    pub fn new(timeout_secs: i64, now: Instant) -> Self {
        let timeout = positive_secs(timeout_secs);
        Self {
            timeout,
            last_ping: now,
            next_check: timeout.map(|_| now + HEARTBEAT_CHECK_INTERVAL),
        }
    }

    /// Records a `Ping` that passed verification. Rejected pings do not count (frp
    /// `server/control.go handlePing` only updates `lastPing` on success).
    pub fn on_ping(&mut self, now: Instant) {
        self.last_ping = now;
    }

    /// Whether the last valid `Ping` is older than the timeout (always false when disabled).
    pub fn is_expired(&self, now: Instant) -> bool {
        older_than(self.last_ping, now, self.timeout)
    }

    /// When [`Self::handle_timeout`] next needs to run, or `None` if the check is off.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_check
    }

    /// Runs a due check; returns true when the control must be closed.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        match self.next_check {
            Some(due) if now >= due => {
                self.next_check = Some(now + HEARTBEAT_CHECK_INTERVAL);
                self.is_expired(now)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: u64) -> Duration {
        Duration::from_secs(v)
    }

    #[test]
    fn disabled_values_schedule_nothing() {
        let t0 = Instant::now();
        for (i, t) in [(-1, -1), (0, 90), (-1, 90)] {
            let mut c = ClientHeartbeat::new(i, t, t0);
            assert_eq!(c.poll_timeout(), None);
            assert_eq!(
                c.handle_timeout(t0 + s(1000)),
                ClientHeartbeatAction::default()
            );
            assert!(!c.is_expired(t0 + s(1000)));
        }
        let mut srv = ServerHeartbeat::new(0, t0);
        assert_eq!(srv.poll_timeout(), None);
        assert!(!srv.handle_timeout(t0 + s(1000)));
    }

    #[test]
    fn client_pings_at_once_then_every_interval() {
        let t0 = Instant::now();
        let mut c = ClientHeartbeat::new(30, -1, t0);
        assert_eq!(c.poll_timeout(), Some(t0));
        assert!(c.handle_timeout(t0).send_ping);
        assert_eq!(c.poll_timeout(), Some(t0 + s(30)));
        assert!(!c.handle_timeout(t0 + s(29)).send_ping);
        assert!(c.handle_timeout(t0 + s(31)).send_ping);
        assert_eq!(c.poll_timeout(), Some(t0 + s(61)));
    }

    #[test]
    fn client_expires_strictly_after_timeout_on_a_check_tick() {
        let t0 = Instant::now();
        let mut c = ClientHeartbeat::new(30, 90, t0);
        c.handle_timeout(t0);
        assert_eq!(c.poll_timeout(), Some(t0 + s(1)));
        c.on_pong(t0 + s(10));
        assert!(!c.is_expired(t0 + s(100)));
        assert!(c.is_expired(t0 + s(100) + Duration::from_millis(1)));
        let mut now = t0;
        let mut expired_at = None;
        while now < t0 + s(200) {
            now = c.poll_timeout().unwrap();
            if c.handle_timeout(now).expired {
                expired_at = Some(now);
                break;
            }
        }
        // Ticks fall on whole seconds here; 100 s is not "more than 90 s after 10 s".
        assert_eq!(expired_at, Some(t0 + s(101)));
    }

    #[test]
    fn pong_keeps_client_alive() {
        let t0 = Instant::now();
        let mut c = ClientHeartbeat::new(30, 90, t0);
        let mut now = t0;
        while now < t0 + s(600) {
            now = c.poll_timeout().unwrap();
            let a = c.handle_timeout(now);
            assert!(!a.expired);
            if a.send_ping {
                c.on_pong(now + Duration::from_millis(5));
            }
        }
    }

    #[test]
    fn server_checks_each_second_and_ignores_nothing_but_valid_pings() {
        let t0 = Instant::now();
        let mut srv = ServerHeartbeat::new(90, t0);
        assert_eq!(srv.poll_timeout(), Some(t0 + s(1)));
        assert!(!srv.handle_timeout(t0 + s(90)));
        srv.on_ping(t0 + s(50));
        assert!(!srv.handle_timeout(t0 + s(140)));
        assert!(!srv.handle_timeout(t0 + Duration::from_millis(140_500)));
        assert!(srv.handle_timeout(t0 + s(141)));
        // Not due yet: no check, no verdict.
        assert!(!srv.handle_timeout(t0 + Duration::from_millis(141_500)));
        assert!(srv.is_expired(t0 + Duration::from_millis(141_500)));
    }
}

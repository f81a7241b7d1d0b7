//! Timing bounds the properties check against, derived from the constants frps and frpc run
//! with (never a free-standing number): frpc's backoff (`control::backoff`), yamux keepalive
//! (`transports::mux`), application heartbeats (`conf::defaults`, `control::heartbeat`) and
//! the dial and login timeouts.

use std::time::Duration;

use control::backoff;

use crate::world::TICK;

/// How long a dead control connection can go unnoticed by frpc once no more bytes get
/// through: with tcpMux, a yamux ping is sent every keepalive interval and must be answered
/// within the keepalive timeout; without it, frpc's heartbeat gives up after
/// `heartbeatTimeout` without a Pong, checked every `HEARTBEAT_CHECK_INTERVAL`.
pub fn detection(tcp_mux: bool) -> Duration {
    if tcp_mux {
        Duration::from_secs(conf::defaults::TCP_MUX_KEEPALIVE_INTERVAL)
            + transports::mux::DEFAULT_KEEPALIVE_TIMEOUT
    } else {
        secs(conf::defaults::HEARTBEAT_TIMEOUT) + control::heartbeat::HEARTBEAT_CHECK_INTERVAL
    }
}

/// The longest one login attempt can take when the network swallows it: the TCP connect and
/// the TLS handshake each within `dialServerTimeout`, then `LoginResp` within its timeout.
pub fn login_attempt() -> Duration {
    Duration::from_secs(conf::defaults::DIAL_SERVER_TIMEOUT) * 2 + frpc::LOGIN_RESP_TIMEOUT
}

/// After the last fault ends, the tunnel works again within this long: a dead session is
/// noticed ([`detection`]), the reconnect pacing waits at most `MAX_DURATION`, an attempt
/// begun during the fault can still be hanging ([`login_attempt`]), the login loop's next
/// delay is at most `RELOGIN_MAX_INTERVAL` (jitter is applied before the cap), and then a
/// login, the proxy registration and a work connection take a few round trips (`settle`).
pub fn recovery(tcp_mux: bool, settle: Duration) -> Duration {
    detection(tcp_mux)
        + backoff::MAX_DURATION
        + login_attempt()
        + backoff::RELOGIN_MAX_INTERVAL
        + settle
}

/// Round trips' worth of slack for one exchange over links of at most `max_latency`, plus the
/// step granularity.
pub fn settle(max_latency: Duration, round_trips: u32) -> Duration {
    max_latency * 2 * round_trips + TICK * 2 * round_trips
}

/// The delay range the login loop uses after its first failed attempt:
/// `DURATION × FACTOR`, plus up to `JITTER`.
pub fn first_login_retry() -> (Duration, Duration) {
    let d = backoff::DURATION.mul_f64(backoff::FACTOR);
    (d, d.mul_f64(1.0 + backoff::JITTER))
}

/// Given the previous delay of a login loop, the range the next one must fall in: ×`FACTOR`
/// with up to +`JITTER`, capped. `cap_lo`/`cap_hi` are the smallest and largest cap the loop
/// may have (the first login loop caps at 10 s, later ones at 20 s).
pub fn next_login_retry(
    prev: Duration,
    cap_lo: Duration,
    cap_hi: Duration,
) -> (Duration, Duration) {
    let lo = prev.mul_f64(backoff::FACTOR).min(cap_lo);
    let hi = prev
        .mul_f64(backoff::FACTOR * (1.0 + backoff::JITTER))
        .min(cap_hi);
    (lo, hi)
}

/// How many logins frpc may start within any `FAST_RETRY_WINDOW` even when every session dies
/// right after login: the immediate re-login, the fast retries of two overlapping windows,
/// and the doubling delays (from the shortest fast retry) that fit in a window. A reconnect
/// storm blows far past this.
pub fn max_logins_per_window() -> usize {
    let window = backoff::FAST_RETRY_WINDOW;
    let mut n = 1 + 2 * backoff::FAST_RETRY_COUNT.unsigned_abs() as usize;
    let mut d = backoff::FAST_RETRY_DELAY;
    let mut t = Duration::ZERO;
    while t < window {
        d = d.mul_f64(backoff::FACTOR).min(backoff::MAX_DURATION);
        t += d;
        n += 1;
    }
    n
}

/// When a backend dies, frpc's health check closes the proxy on frps within this long:
/// `maxFailed` checks, `interval` apart, each failing at the latest after `timeout`, plus one
/// interval for the check cycle already under way and `settle` for the `CloseProxy` to land.
pub fn health_down(
    interval: Duration,
    timeout: Duration,
    max_failed: u32,
    settle: Duration,
) -> Duration {
    (interval + timeout) * (max_failed + 1) + settle
}

/// When the backend is back, the next passing check re-registers the proxy within one
/// interval plus one check timeout and `settle`.
pub fn health_up(interval: Duration, timeout: Duration, settle: Duration) -> Duration {
    interval + timeout + settle
}

fn secs(s: i64) -> Duration {
    Duration::from_secs(s.max(0).unsigned_abs())
}

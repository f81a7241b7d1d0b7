//! frpc's reconnect schedules, as pure state machines (frp 0.65.0
//! `pkg/util/wait/backoff.go` `fastBackoffImpl` driven by `BackoffUntil`, with the options
//! `client/service.go` passes).
//!
//! Three schedules use the one algorithm:
//!
//! * **First login** ([`FastBackoff::first_login`], `loopLoginUntilSuccess(10s, ..)`): 2 s,
//!   then ×2, each value jittered by up to +10 % and the jittered value carried forward,
//!   capped at 10 s. With `loginFailExit` frpc gives up after the first failure instead; see
//!   [`LoginBackoff`].
//! * **Re-login** ([`FastBackoff::relogin`]): the same, capped at 20 s, never gives up.
//! * **Reconnect** ([`FastBackoff::reconnect`], `keepControllerWorking`): paces whole
//!   sessions that die soon after login. Up to `FAST_RETRY_COUNT` quick retries of
//!   200–300 ms per one-minute window (the counter starts at 1, so only 2 before the first
//!   window opens), otherwise the previous delay ×2 with +10 % jitter, capped at 20 s.
//!
//! `BackoffUntil` always runs the first attempt at once, so a fresh [`FastBackoff`] is the
//! state *after* that first attempt: call [`FastBackoff::next_delay`] after each failure.
//! Time and randomness are arguments.

use std::time::{Duration, Instant};

use rand::Rng;

/// `Duration`: the base delay the login loops and reconnect start from (`client/service.go`).
pub const DURATION: Duration = Duration::from_secs(1);
/// `Factor`: growth per consecutive failure.
pub const FACTOR: f64 = 2.0;
/// `Jitter`: at most +10 % on each delay.
pub const JITTER: f64 = 0.1;
/// `maxInterval` of the first login loop (`svr.loopLoginUntilSuccess(10*time.Second, ..)`).
pub const FIRST_LOGIN_MAX_INTERVAL: Duration = Duration::from_secs(10);
/// `maxInterval` of the re-login loop (`svr.loopLoginUntilSuccess(20*time.Second, false)`).
pub const RELOGIN_MAX_INTERVAL: Duration = Duration::from_secs(20);
/// `MaxDuration` of the reconnect pacing.
pub const MAX_DURATION: Duration = Duration::from_secs(20);
/// `FastRetryCount`: quick retries per window.
pub const FAST_RETRY_COUNT: i64 = 3;
/// `FastRetryDelay`.
pub const FAST_RETRY_DELAY: Duration = Duration::from_millis(200);
/// `FastRetryJitter`: quick retries wait 200–300 ms.
pub const FAST_RETRY_JITTER: f64 = 0.5;
/// `FastRetryWindow`.
pub const FAST_RETRY_WINDOW: Duration = Duration::from_secs(60);

/// frp's `FastBackoffOptions`; zero values mean "off" as in Go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FastBackoffOptions {
    /// Delay after a success (and Go's priming value).
    pub duration: Duration,
    /// Multiplier per consecutive failure; 0 disables growth.
    pub factor: f64,
    /// Max relative jitter added to each failure delay; 0 disables it.
    pub jitter: f64,
    /// Cap on failure delays; zero means no cap.
    pub max_duration: Duration,
    /// Base for the first failure instead of the previous delay; zero means unset.
    pub init_duration_if_fail: Duration,
    /// Quick retries per window; 0 disables quick retries.
    pub fast_retry_count: i64,
    /// Delay of a quick retry.
    pub fast_retry_delay: Duration,
    /// Jitter of a quick retry.
    pub fast_retry_jitter: f64,
    /// Length of the quick-retry window.
    pub fast_retry_window: Duration,
}

impl FastBackoffOptions {
    /// The login loop's options with the given cap (`loopLoginUntilSuccess`).
    pub fn login(max_interval: Duration) -> Self {
        Self {
            duration: DURATION,
            factor: FACTOR,
            jitter: JITTER,
            max_duration: max_interval,
            init_duration_if_fail: Duration::ZERO,
            fast_retry_count: 0,
            fast_retry_delay: Duration::ZERO,
            fast_retry_jitter: 0.0,
            fast_retry_window: Duration::ZERO,
        }
    }

    /// The reconnect pacing's options (`keepControllerWorking`).
    pub fn reconnect() -> Self {
        Self {
            max_duration: MAX_DURATION,
            fast_retry_count: FAST_RETRY_COUNT,
            fast_retry_delay: FAST_RETRY_DELAY,
            fast_retry_jitter: FAST_RETRY_JITTER,
            fast_retry_window: FAST_RETRY_WINDOW,
            ..Self::login(MAX_DURATION)
        }
    }
}

/// Go's `wait.Jitter`: `d + U[0,1) · max_factor · d`, with `max_factor <= 0` meaning 1.
pub fn jitter(d: Duration, max_factor: f64, rng: &mut (impl Rng + ?Sized)) -> Duration {
    let max_factor = if max_factor <= 0.0 { 1.0 } else { max_factor };
    let extra = rng.gen::<f64>() * max_factor * d.as_nanos() as f64;
    d.saturating_add(from_nanos_f64(extra))
}

/// Go's `time.Duration(float64)`: truncates, saturating instead of overflowing.
fn from_nanos_f64(nanos: f64) -> Duration {
    // `as` saturates for floats, and NaN becomes 0.
    Duration::from_nanos(nanos as u64)
}

/// frp's `fastBackoffImpl`, already primed by `BackoffUntil`'s first call.
#[derive(Debug, Clone)]
pub struct FastBackoff {
    options: FastBackoffOptions,
    previous: Duration,
    consecutive_err_count: u32,
    fast_retry_cutoff: Option<Instant>,
    counts_in_fast_retry_window: i64,
}

impl FastBackoff {
    /// A fresh schedule with `options`.
    pub fn new(options: FastBackoffOptions) -> Self {
        Self {
            options,
            previous: Duration::ZERO,
            consecutive_err_count: 0,
            fast_retry_cutoff: None,
            // Go starts this counter at 1, not 0 (`NewFastBackoffManager`).
            counts_in_fast_retry_window: 1,
        }
    }

    /// The first-login loop: 2 s, ×2 with jitter, capped at 10 s.
    pub fn first_login() -> Self {
        Self::new(FastBackoffOptions::login(FIRST_LOGIN_MAX_INTERVAL))
    }

    /// The re-login loop after a session ended: like [`Self::first_login`], capped at 20 s.
    pub fn relogin() -> Self {
        Self::new(FastBackoffOptions::login(RELOGIN_MAX_INTERVAL))
    }

    /// The reconnect pacing between sessions. frpc re-logs immediately when its first
    /// session ends; call [`Self::next_delay`] each time a later session ends.
    pub fn reconnect() -> Self {
        Self::new(FastBackoffOptions::reconnect())
    }

    /// The options in use.
    pub fn options(&self) -> &FastBackoffOptions {
        &self.options
    }

    /// Delay before the next attempt after a failed one.
    pub fn next_delay(&mut self, now: Instant, rng: &mut (impl Rng + ?Sized)) -> Duration {
        self.backoff(now, true, rng)
    }

    /// Go's `Backoff(previousDuration, previousConditionError)`, with the previous delay
    /// remembered internally as `BackoffUntil` does.
    pub fn backoff(
        &mut self,
        now: Instant,
        previous_error: bool,
        rng: &mut (impl Rng + ?Sized),
    ) -> Duration {
        let delay = self.compute(now, previous_error, rng);
        self.previous = delay;
        delay
    }

    /// Forgets all failures, as a newly created manager.
    pub fn reset(&mut self) {
        *self = Self::new(self.options);
    }

    fn compute(
        &mut self,
        now: Instant,
        previous_error: bool,
        rng: &mut (impl Rng + ?Sized),
    ) -> Duration {
        let o = self.options;
        if !previous_error {
            self.consecutive_err_count = 0;
            return o.duration;
        }
        self.consecutive_err_count = self.consecutive_err_count.saturating_add(1);

        if o.fast_retry_count > 0 {
            self.counts_in_fast_retry_window += 1;
            if self.counts_in_fast_retry_window <= o.fast_retry_count {
                return jitter(o.fast_retry_delay, o.fast_retry_jitter, rng);
            }
            // A zero cutoff (never set) is always in the past, as Go's `now.After(zero)`.
            if self.fast_retry_cutoff.is_none_or(|cutoff| now > cutoff) {
                self.fast_retry_cutoff = Some(now + o.fast_retry_window);
                self.counts_in_fast_retry_window = 0;
            }
        }

        let mut d = if self.consecutive_err_count == 1 && !o.init_duration_if_fail.is_zero() {
            o.init_duration_if_fail
        } else {
            self.previous
        };
        if d.is_zero() {
            d = Duration::from_secs(1);
        }
        if o.factor != 0.0 {
            d = from_nanos_f64(d.as_nanos() as f64 * o.factor);
        }
        if o.jitter > 0.0 {
            d = jitter(d, o.jitter, rng);
        }
        if !o.max_duration.is_zero() && d > o.max_duration {
            d = o.max_duration;
        }
        d
    }
}

/// What to do after a failed login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRetry {
    /// Give up: first login with `loginFailExit = true`. frpc exits with
    /// `login to the server failed: <err>. With loginFailExit enabled, no additional retries
    /// will be attempted`.
    Exit,
    /// Try again after this long.
    After(Duration),
}

/// One run of frpc's `loopLoginUntilSuccess`: the first attempt is immediate, then
/// [`Self::on_failure`] after each failed attempt. Create a new one per loop, as Go does.
#[derive(Debug, Clone)]
pub struct LoginBackoff {
    backoff: FastBackoff,
    exit_on_failure: bool,
}

impl LoginBackoff {
    /// The first login of the process; exits on failure when `login_fail_exit` (frp's default).
    pub fn first_login(login_fail_exit: bool) -> Self {
        Self {
            backoff: FastBackoff::first_login(),
            exit_on_failure: login_fail_exit,
        }
    }

    /// Logging in again after a working session ended; never gives up.
    pub fn relogin() -> Self {
        Self {
            backoff: FastBackoff::relogin(),
            exit_on_failure: false,
        }
    }

    /// Decision after a failed attempt.
    pub fn on_failure(&mut self, now: Instant, rng: &mut (impl Rng + ?Sized)) -> LoginRetry {
        if self.exit_on_failure {
            return LoginRetry::Exit;
        }
        LoginRetry::After(self.backoff.next_delay(now, rng))
    }

    /// Starts over, as a new loop.
    pub fn reset(&mut self) {
        self.backoff.reset();
    }
}

#[cfg(test)]
mod tests;

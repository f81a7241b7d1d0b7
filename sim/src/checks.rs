//! The properties every scenario checks, read from its [`Trace`] and frps's counts. Each
//! returns an error describing the first violation, with the trace entries that show it.

use std::time::Duration;

use anyhow::{bail, ensure};

use crate::bounds;
use crate::trace::{DialResult, Entry, Event, Trace, TransferOutcome};
use crate::world::{FRPS, TICK};

/// Every transfer with its end time.
pub fn transfers(trace: &Trace) -> Vec<(Duration, TransferOutcome)> {
    trace
        .entries()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Transfer(t) => Some((e.at, t)),
            _ => None,
        })
        .collect()
}

/// Acknowledged data is intact and in order: every byte echoed back through the tunnel equals
/// the byte sent at that offset of that connection (the user stops at the first difference).
pub fn integrity(trace: &Trace) -> anyhow::Result<()> {
    for (at, t) in transfers(trace) {
        ensure!(
            !t.corrupt && t.echoed <= t.sent,
            "transfer {} ended at {at:?} with corrupt data: {t:?}",
            t.id
        );
        ensure!(
            !t.complete || t.error.is_none(),
            "transfer {} both complete and failed: {t:?}",
            t.id
        );
    }
    Ok(())
}

/// The tunnel works from `from` on: every transfer that started at or after it completed, and
/// at least `min` did.
pub fn recovered_by(trace: &Trace, from: Duration, min: usize) -> anyhow::Result<()> {
    let after: Vec<_> = transfers(trace)
        .into_iter()
        .filter(|(_, t)| t.started >= from)
        .collect();
    if let Some((at, t)) = after.iter().find(|(_, t)| !t.complete) {
        bail!(
            "tunnel not recovered by {from:?}: transfer {} started {:?} failed at {at:?}: {:?}",
            t.id,
            t.started,
            t.error
        );
    }
    ensure!(
        after.len() >= min,
        "only {} transfers started after {from:?} (want {min})",
        after.len()
    );
    Ok(())
}

/// Every transfer that started in `[from, to)` completed.
pub fn all_complete_between(trace: &Trace, from: Duration, to: Duration) -> anyhow::Result<()> {
    for (at, t) in transfers(trace) {
        if t.started >= from && t.started < to && !t.complete {
            bail!(
                "transfer {} started {:?} in the fault-free window [{from:?}, {to:?}) failed at {at:?}: {:?}",
                t.id,
                t.started,
                t.error
            );
        }
    }
    Ok(())
}

/// Before any fault: every transfer that started at or after `from` and ended before `to`
/// completed.
pub fn fault_free_until(trace: &Trace, from: Duration, to: Duration) -> anyhow::Result<()> {
    for (at, t) in transfers(trace) {
        if t.started >= from && at < to {
            ensure!(
                t.complete,
                "transfer {} failed at {at:?} before any fault: {:?}",
                t.id,
                t.error
            );
        }
    }
    Ok(())
}

/// One dial of `host` to frps's control port.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    started: Duration,
    ended: Duration,
    result: DialResult,
}

/// frpc `host`'s logins follow the backoff schedule. With tcpMux each login dials frps's
/// control port once (work connections are yamux streams), so dials are login attempts.
///
/// - After a failed dial, the next one waits a login-loop delay: the first delay of a run of
///   failures is at least `DURATION × FACTOR` and at most the cap; each following one is the
///   previous ×`FACTOR` with up to `JITTER` more, capped (`bounds::next_login_retry`).
/// - No reconnect storm: no `FAST_RETRY_WINDOW` holds more than
///   `bounds::max_logins_per_window` attempts.
///
/// A crash or bounce of `host` starts its schedule afresh.
pub fn backoff(trace: &Trace, host: &str, port: u16) -> anyhow::Result<()> {
    use control::backoff::{FAST_RETRY_WINDOW, FIRST_LOGIN_MAX_INTERVAL, RELOGIN_MAX_INTERVAL};
    let tol = TICK;
    let mut prev: Option<Attempt> = None;
    let mut prev_delay: Option<Duration> = None;
    let mut logged_in = false;
    let mut starts: Vec<Duration> = Vec::new();
    for Entry { at, event } in trace.entries() {
        let attempt = match event {
            Event::Fault(f) if f == format!("crash {host}") || f == format!("bounce {host}") => {
                prev = None;
                prev_delay = None;
                logged_in = false;
                continue;
            }
            Event::Dial {
                from,
                to,
                port: p,
                started,
                result,
            } if from == host && to == FRPS && p == port => Attempt {
                started,
                ended: at,
                result,
            },
            _ => continue,
        };
        starts.push(attempt.started);
        if let Some(a) = prev.filter(|a| a.result != DialResult::Connected) {
            let delay = attempt.started.saturating_sub(a.ended);
            let cap_hi = if logged_in {
                RELOGIN_MAX_INTERVAL
            } else {
                FIRST_LOGIN_MAX_INTERVAL
            };
            let (lo, hi) = match prev_delay {
                // The run's first delay: its loop may have failed before (a login that dialled
                // but got no answer), so only the loop's overall range is known.
                None => (bounds::first_login_retry().0, cap_hi),
                Some(p) => bounds::next_login_retry(p, FIRST_LOGIN_MAX_INTERVAL, cap_hi),
            };
            ensure!(
                delay + tol >= lo && delay <= hi + tol,
                "{host}: login at {:?} came {delay:?} after the failed one ending {:?}; \
                 backoff allows {lo:?}..={hi:?} (previous delay {prev_delay:?})",
                attempt.started,
                a.ended
            );
            prev_delay = Some(delay);
        } else {
            prev_delay = None;
        }
        if attempt.result == DialResult::Connected {
            logged_in = true;
        }
        prev = Some(attempt);
    }
    let max = bounds::max_logins_per_window();
    for (i, s) in starts.iter().enumerate() {
        let n = starts[i..]
            .iter()
            .take_while(|t| **t < *s + FAST_RETRY_WINDOW)
            .count();
        ensure!(
            n <= max,
            "{host}: reconnect storm: {n} logins within {FAST_RETRY_WINDOW:?} from {s:?} (max {max})"
        );
    }
    Ok(())
}

/// How many logins (dials of frps's control port) `host` made.
pub fn logins(trace: &Trace, host: &str, port: u16) -> usize {
    trace
        .entries()
        .iter()
        .filter(|e| {
            matches!(&e.event, Event::Dial { from, to, port: p, .. }
                if from == host && to == FRPS && *p == port)
        })
        .count()
}

/// When frps's registered proxy set last changed to satisfy `pred`, or first did after `from`.
pub fn first_stats_after(
    trace: &Trace,
    from: Duration,
    pred: impl Fn(&frps::Stats) -> bool,
) -> Option<Duration> {
    trace.entries().into_iter().find_map(|e| match e.event {
        Event::Stats(s) if e.at >= from && pred(&s) => Some(e.at),
        _ => None,
    })
}

/// What frps should hold once everything has settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Logged-in clients.
    pub clients: usize,
    /// Proxy names, sorted.
    pub proxies: Vec<String>,
    /// Members per group, sorted by name.
    pub groups: Vec<(String, usize)>,
    /// Pooled work connections at rest: `poolCount` per client. frps asks for a replacement
    /// for every connection it takes and, when the pool was empty, for the one it waits for
    /// too (as frp's `GetWorkConn` does), so the pool may grow up to its capacity,
    /// `poolCount + POOL_SLACK` per client.
    pub pooled_work_conns: usize,
}

/// The pool capacity frps adds to `poolCount` per client (frp `server/control.go`:
/// `workConnCh` is `make(chan net.Conn, poolCount+10)`).
pub const POOL_SLACK: usize = 10;

/// frps holds exactly the configured clients and proxies, each once, and its task count is
/// back to `baseline_tasks` (no session, listener or connection leaked).
pub fn settled(
    stats: Option<&frps::Stats>,
    want: &Expected,
    baseline_tasks: usize,
) -> anyhow::Result<()> {
    let Some(s) = stats else {
        bail!("frps is not running");
    };
    let got = Expected {
        clients: s.clients,
        proxies: s.proxies.clone(),
        groups: s.groups.clone(),
        pooled_work_conns: want.pooled_work_conns,
    };
    ensure!(&got == want, "frps state {s:?}, want {want:?}");
    let most = want.pooled_work_conns + POOL_SLACK * want.clients;
    ensure!(
        (want.pooled_work_conns..=most).contains(&s.pooled_work_conns),
        "frps pools hold {} work connections, want {}..={most}",
        s.pooled_work_conns,
        want.pooled_work_conns
    );
    ensure!(
        s.tasks == baseline_tasks,
        "frps has {} tasks, {baseline_tasks} at the baseline: {s:?}",
        s.tasks
    );
    Ok(())
}

/// The last count of established TCP connections on frps's host recorded at or before `at`.
pub fn sockets_at(trace: &Trace, at: Duration) -> Option<usize> {
    trace
        .entries()
        .into_iter()
        .rev()
        .filter(|e| e.at <= at)
        .find_map(|e| match e.event {
            Event::Sockets(n) => Some(n),
            _ => None,
        })
}

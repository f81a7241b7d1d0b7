//! The property checks themselves, on hand-written traces: each must accept frp's schedule
//! and reject the failure it exists to catch.

use std::time::Duration;

use sim::trace::DialResult;
use sim::{checks, Event, Trace, TransferOutcome};

fn dial(trace: &Trace, started_ms: u64, ended_ms: u64, result: DialResult) {
    trace.record_at(
        Duration::from_millis(ended_ms),
        Event::Dial {
            from: "frpc".into(),
            to: "frps".into(),
            port: 7000,
            started: Duration::from_millis(started_ms),
            result,
        },
    );
}

#[test]
fn backoff_accepts_frp_schedule() {
    let t = Trace::new();
    dial(&t, 0, 10, DialResult::Connected);
    // Session ends; re-login refused, then 2.1 s, 4.3 s, 8.9 s, 17.5 s, 20 s (capped).
    let mut at = 40_000;
    dial(&t, at, at, DialResult::Refused);
    for d in [2_100, 4_300, 8_900, 17_500, 20_000, 20_000] {
        at += d;
        dial(&t, at, at, DialResult::Refused);
    }
    dial(&t, at + 20_000, at + 20_010, DialResult::Connected);
    checks::backoff(&t, "frpc", 7000).expect("frp's schedule");
}

#[test]
fn backoff_rejects_a_reconnect_storm() {
    let t = Trace::new();
    dial(&t, 0, 10, DialResult::Connected);
    for i in 0..50 {
        dial(&t, 1_000 + i * 100, 1_000 + i * 100, DialResult::Refused);
    }
    assert!(checks::backoff(&t, "frpc", 7000).is_err());
}

#[test]
fn backoff_rejects_delays_that_do_not_grow() {
    let t = Trace::new();
    let mut at = 0;
    for _ in 0..5 {
        dial(&t, at, at, DialResult::Refused);
        at += 2_050;
    }
    assert!(checks::backoff(&t, "frpc", 7000).is_err());
}

fn transfer(trace: &Trace, id: u64, started: u64, ended: u64, complete: bool, corrupt: bool) {
    trace.record_at(
        Duration::from_secs(ended),
        Event::Transfer(TransferOutcome {
            id,
            started: Duration::from_secs(started),
            sent: 10,
            echoed: if complete { 10 } else { 4 },
            complete,
            error: (!complete).then(|| "read: stalled".to_string()),
            corrupt,
        }),
    );
}

#[test]
fn integrity_and_recovery() {
    let t = Trace::new();
    transfer(&t, 0, 1, 2, true, false);
    transfer(&t, 1, 3, 9, false, false);
    transfer(&t, 2, 10, 11, true, false);
    checks::integrity(&t).expect("no corruption");
    checks::recovered_by(&t, Duration::from_secs(10), 1).expect("recovered at 10 s");
    assert!(checks::recovered_by(&t, Duration::from_secs(3), 1).is_err());
    assert!(checks::recovered_by(&t, Duration::from_secs(12), 1).is_err());
    transfer(&t, 3, 12, 13, false, true);
    assert!(checks::integrity(&t).is_err());
}

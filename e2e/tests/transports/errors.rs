//! Transport errors (issue 3): "a QUIC handshake failure, an unreachable UDP port, a
//! certificate mismatch each give one log line naming the transport, the address and the
//! cause, then the normal reconnect backoff". The certificate mismatch is in `quic.rs`.
//!
//! frp 0.65.0 itself logs only `connect to server error: timeout: no recent network activity`
//! after quic-go's 5 s handshake timeout, naming neither the transport nor the address, so the
//! wording checks apply to ours only; the behaviour (frpc keeps retrying, spaced by frp's
//! backoff: 2 s after the first failure, then 4 s, 8 s ...) is checked for both.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use e2e::ports::free_udp_port;
use e2e::*;

use crate::common::names_transport_and_addr;

/// frp's line at the start of every login attempt (`client/service.go`, ours prints the same).
const ATTEMPT: &str = "try to connect to server";
/// Attempts to observe: the first and two retries.
const ATTEMPTS: usize = 3;
/// Real frpc needs ~16 s for three attempts (5 s handshake timeout, 2 s, 5 s, 4 s).
const ATTEMPTS_WITHIN: Duration = Duration::from_secs(35);
/// Lower bound between two attempt starts: frp's first backoff is 2 s (1 s × factor 2, plus up
/// to 10 % jitter); the margin covers log polling.
const MIN_GAP: Duration = Duration::from_millis(1500);
/// Words one of which must name the cause of an unanswered QUIC dial.
const CAUSES: &[&str] = &[
    "timeout",
    "timed out",
    "refused",
    "unreachable",
    "no recent network activity",
    "idle",
];

/// frpc with `protocol = "quic"` against a UDP port where nothing listens and
/// `loginFailExit = false`.
async fn quic_unreachable(ctx: Ctx) -> Result<()> {
    let port = free_udp_port()?;
    let addr = format!("127.0.0.1:{port}");
    let frpc = ctx.start_frpc(
        &FrpcConfig::new(port)
            .protocol(Protocol::Quic)
            .login_fail_exit(false),
    )?;

    // When each attempt first shows in the log.
    let started = Instant::now();
    let mut seen: Vec<Instant> = Vec::new();
    while seen.len() < ATTEMPTS {
        frpc.ensure_running()?;
        let count = frpc.log().matches(ATTEMPT).count();
        while seen.len() < count {
            seen.push(Instant::now());
        }
        if started.elapsed() > ATTEMPTS_WITHIN {
            bail!(
                "frpc made {} login attempts ({ATTEMPT:?}) in {ATTEMPTS_WITHIN:?}, expected \
                 {ATTEMPTS}: it must keep retrying an unreachable quic server",
                seen.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (i, pair) in seen.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        ensure!(
            gap >= MIN_GAP,
            "login attempts {} and {} only {gap:?} apart: frpc must back off (frp: 2 s, 4 s, ...)",
            i + 1,
            i + 2
        );
    }

    let log = frpc.log();
    if ctx.combo().frpc == Impl::Ours {
        let attempts = log.matches(ATTEMPT).count();
        let errors = log
            .lines()
            .filter(|l| {
                let lower = l.to_lowercase();
                names_transport_and_addr(l, "quic", &addr)
                    && CAUSES.iter().any(|c| lower.contains(c))
            })
            .count();
        // Every finished attempt has its line; the last attempt may still be running.
        ensure!(
            errors + 1 >= attempts && errors <= attempts,
            "frpc (ours) must log exactly one line per failed attempt naming \"quic\", {addr:?} \
             and the cause (one of {CAUSES:?}); found {errors} such lines for {attempts} \
             attempts in:\n{log}"
        );
    }
    frpc.ensure_running()?;
    Ok(())
}

per_impl_test!(quic_unreachable_port, quic_unreachable);

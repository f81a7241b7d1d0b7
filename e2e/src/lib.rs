//! Interop test harness for frp-rs: runs our `frps`/`frpc` and the real frp 0.65.0 binaries
//! against each other as black boxes.
//!
//! Layout:
//! - [`bins`]: [`Impl`] (ours or real) and where each binary lives.
//! - [`ports`]: free ports on 127.0.0.1.
//! - [`process`]: [`FrpProcess`], a kill-on-drop guard with bounded waits on log and port.
//! - [`config`]: TOML writers for frps/frpc ([`FrpsConfig`], [`FrpcConfig`], [`TcpProxy`]).
//! - [`echo`]: an echo backend and byte-for-byte round trips through a tunnel.
//! - [`tls`]: a test CA and server certificate for frp's TLS options.
//! - [`tls_proxy`]: [`TlsTerminator`], the TLS reverse proxy in front of frps for `wss`.
//! - [`ctx`]: [`Ctx`], one test's temp folder, launchers and log report.
//!
//! Tests are written once as `async fn(Ctx) -> anyhow::Result<()>` and instantiated per
//! combination of implementations with [`interop_test!`] (or [`per_impl_test!`]); the
//! entry point [`run`] gives each its own runtime, an overall time bound and, on failure, a
//! panic message holding the error chain and every process log.

pub mod bins;
pub mod config;
pub mod ctx;
pub mod echo;
pub mod ports;
pub mod process;
pub mod tls;
pub mod tls_proxy;

use std::future::Future;
use std::time::Duration;

pub use bins::{Impl, Role};
pub use config::{FrpcConfig, FrpsConfig, PortSpec, Protocol, QuicOptions, TcpProxy};
pub use ctx::{ensure_contains, Combo, Ctx, Frps};
pub use echo::{
    concurrent_round_trips, random_bytes, round_trip, tunnel_fails, wait_tunnel, EchoServer,
};
pub use process::{ensure_failed_exit, FrpProcess};
pub use tls_proxy::TlsTerminator;

/// Upper bound for one test body (the slowest, reconnect, needs about 30 s in the worst case).
pub const TEST_TIMEOUT: Duration = Duration::from_secs(75);
/// How long a freshly started frpc gets to make its tunnel work.
pub const TUNNEL_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs one interop test body for `combo` on its own tokio runtime, bounded by
/// [`TEST_TIMEOUT`]; panics on failure with the error chain and all process logs.
pub fn run<F, Fut>(combo: Combo, test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("building a tokio runtime: {e}"),
    };
    let ctx = match Ctx::new(combo) {
        Ok(ctx) => ctx,
        Err(e) => panic!("{combo}: {e:?}"),
    };
    let body = test(ctx.clone());
    let outcome = rt.block_on(async { tokio::time::timeout(TEST_TIMEOUT, body).await });
    // Dropping the runtime drops whatever the body left running (processes are killed).
    drop(rt);
    let err = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(_) => anyhow::anyhow!("test did not finish within {TEST_TIMEOUT:?}"),
    };
    panic!(
        "interop test failed ({combo}): {}\n\nprocess logs (temp folder {}):\n{}",
        error_chain(&err),
        ctx.dir().display(),
        ctx.logs_report()
    );
}

/// The error and its causes, one per line (without the backtrace `{:?}` would add when
/// `RUST_BACKTRACE` is set: it only shows harness frames).
fn error_chain(err: &anyhow::Error) -> String {
    let mut out = err.to_string();
    for cause in err.chain().skip(1) {
        out.push_str("\ncaused by: ");
        out.push_str(&cause.to_string());
    }
    out
}

/// Declares a module `$name` with one `#[test]` per (frps, frpc) combination —
/// `frps_real_frpc_real` (harness sanity), `frps_real_frpc_ours`, `frps_ours_frpc_real`,
/// `frps_ours_frpc_ours` — each calling `$body` (an `FnOnce(Ctx) -> impl Future<Output =
/// anyhow::Result<()>>`, evaluated inside the module, which glob-imports its parent).
#[macro_export]
macro_rules! interop_test {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn frps_real_frpc_real() {
                $crate::run(
                    $crate::Combo::new($crate::Impl::Real, $crate::Impl::Real),
                    $body,
                )
            }

            #[test]
            fn frps_real_frpc_ours() {
                $crate::run(
                    $crate::Combo::new($crate::Impl::Real, $crate::Impl::Ours),
                    $body,
                )
            }

            #[test]
            fn frps_ours_frpc_real() {
                $crate::run(
                    $crate::Combo::new($crate::Impl::Ours, $crate::Impl::Real),
                    $body,
                )
            }

            #[test]
            fn frps_ours_frpc_ours() {
                $crate::run(
                    $crate::Combo::new($crate::Impl::Ours, $crate::Impl::Ours),
                    $body,
                )
            }
        }
    };
}

/// Declares a module `$name` with tests `real` and `ours`, for checks of one implementation at
/// a time (both sides of the [`Combo`] are that implementation).
#[macro_export]
macro_rules! per_impl_test {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn real() {
                $crate::run(
                    $crate::Combo::new($crate::Impl::Real, $crate::Impl::Real),
                    $body,
                )
            }

            #[test]
            fn ours() {
                $crate::run(
                    $crate::Combo::new($crate::Impl::Ours, $crate::Impl::Ours),
                    $body,
                )
            }
        }
    };
}

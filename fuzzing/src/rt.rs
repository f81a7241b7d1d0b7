//! A per-thread tokio runtime for the targets that drive async code in memory.
//!
//! libFuzzer calls a target on one thread, many thousand times a second; building a
//! runtime per call would dominate, so each thread keeps one current-thread runtime.

use std::future::Future;
use std::time::Duration;

use tokio::runtime::{Builder, Runtime};

thread_local! {
    static RUNTIME: Runtime = Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
}

/// Time after which an in-memory exchange that should have finished counts as a hang.
/// Generous: the fuzzer runs instrumented builds on a loaded machine.
pub(crate) const HANG: Duration = Duration::from_secs(10);

/// Runs `f` to completion on this thread's runtime.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(f))
}

/// Runs `f`, panicking with `what` if it takes longer than [`HANG`].
pub(crate) fn block_on_bounded<F: Future>(what: &str, f: F) -> F::Output {
    block_on(async {
        match tokio::time::timeout(HANG, f).await {
            Ok(v) => v,
            Err(_) => panic!("hang: {what} did not finish within {HANG:?}"),
        }
    })
}

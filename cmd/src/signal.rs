//! Ctrl-C and SIGTERM as one future, and a runtime that turns them into cancellation, for the
//! binaries' graceful shutdown.

use std::future::Future;

use tokio_util::sync::CancellationToken;

/// Runs `service(shutdown)` to completion on a multi-threaded tokio runtime; SIGINT or SIGTERM
/// cancels `shutdown`. Fails only if the runtime cannot start.
///
/// The service runs as a spawned task, not as the `block_on` future: a `block_on` future is
/// polled on the main thread, outside the worker pool, so every task it spawned or woke (an
/// accept loop spawning one task per connection) would cost a cross-thread wake-up — a
/// `futex` call and a context switch per new connection on each side.
pub fn run_until_signal<F, Fut>(service: F) -> std::io::Result<Fut::Output>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let runtime = tokio::runtime::Runtime::new()?;
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    let task = {
        // Building the future inside the runtime's context, in case it touches tokio eagerly.
        let _context = runtime.enter();
        tokio::spawn(service(shutdown))
    };
    Ok(runtime.block_on(async move {
        tokio::spawn(async move {
            shutdown_signal().await;
            signal.cancel();
        });
        match task.await {
            Ok(out) => out,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => unreachable!("the service task is never aborted: {e}"),
        }
    }))
}

/// Resolves on SIGINT or (on Unix) SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    /// The service runs on a worker of the runtime, not on the thread that called
    /// `run_until_signal` (where tasks it spawns or wakes would each need a cross-thread
    /// wake-up).
    #[test]
    fn service_runs_on_a_runtime_worker() {
        let caller = std::thread::current().id();
        let (on_worker, cancelled_yet) = super::run_until_signal(|shutdown| async move {
            (
                std::thread::current().id() != caller,
                shutdown.is_cancelled(),
            )
        })
        .unwrap();
        assert!(on_worker);
        assert!(!cancelled_yet);
    }
}

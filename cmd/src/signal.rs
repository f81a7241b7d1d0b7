//! Ctrl-C and SIGTERM as one future, and a runtime that turns them into cancellation, for the
//! binaries' graceful shutdown.

use std::future::Future;

use tokio_util::sync::CancellationToken;

/// Runs `service(shutdown)` to completion on a multi-threaded tokio runtime; SIGINT or SIGTERM
/// cancels `shutdown`. Fails only if the runtime cannot start.
pub fn run_until_signal<F, Fut>(service: F) -> std::io::Result<Fut::Output>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future,
{
    let runtime = tokio::runtime::Runtime::new()?;
    Ok(runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            signal.cancel();
        });
        service(shutdown).await
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

//! Ctrl-C and SIGTERM as one future, and a runtime that turns them into cancellation, for the
//! binaries' graceful shutdown.

use std::future::Future;

use tokio_util::sync::CancellationToken;

/// Runs `service(shutdown)` to completion on one current-thread runtime per core
/// ([`transports::shard`]: each connection's tasks stay on the thread that owns its socket),
/// with malloc tuned for it first ([`crate::malloc`]); SIGINT or SIGTERM cancels `shutdown`.
/// Fails only if a runtime cannot start.
pub fn run_until_signal<F, Fut>(service: F) -> std::io::Result<Fut::Output>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let malloc = crate::malloc::tune();
    tracing::debug!("malloc thresholds: {malloc:?}");
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    transports::shard::run_sharded(transports::shard::default_count(), async move {
        tokio::spawn(async move {
            shutdown_signal().await;
            signal.cancel();
        });
        service(shutdown).await
    })
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
    /// The service runs on the calling thread's runtime, with the shards installed for the
    /// process (one per core, or per `TOKIO_WORKER_THREADS`).
    #[test]
    fn service_runs_with_shards_installed() {
        let caller = std::thread::current().id();
        let (here, shards, cancelled_yet) = super::run_until_signal(|shutdown| async move {
            (
                std::thread::current().id() == caller,
                transports::shard::installed().map(|s| s.len()),
                shutdown.is_cancelled(),
            )
        })
        .unwrap();
        assert!(here);
        assert!(crate::malloc::applied().is_some(), "malloc was not tuned");
        let count = transports::shard::default_count();
        assert_eq!(shards, (count > 1).then_some(count));
        assert!(!cancelled_yet);
    }
}

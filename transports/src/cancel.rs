//! A wait for a [`CancellationToken`] that is cheap to poll again and again.
//!
//! A long-lived task that races its work against cancellation (`select!` on
//! `token.cancelled()`) polls the cancellation future every time it wakes, and tokio-util's
//! future takes the token's mutex and then the `Notify`'s waiter lock on each of those polls.
//! In a relay woken twice per forwarded request, and in the yamux session task woken for every
//! batch of frames, that was 3–4 % of frps's samples on small requests (bench/NOTES.md,
//! "Cheaper polls on the request path").
//!
//! [`Cancelled`] polls tokio-util's future only on its first poll and after the token's
//! notification actually fired: it hands that future a waker of its own, which raises a flag and
//! then wakes the task. Every other poll is an atomic load and a waker comparison.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Completes once the token is cancelled; see the module doc.
pub struct Cancelled {
    inner: Pin<Box<WaitForCancellationFutureOwned>>,
    flag: Arc<Flag>,
    /// The task waker stored in `flag` (replaced when a poll brings another one).
    task: Option<Waker>,
    /// `inner` has been polled with the flag's waker, so it will raise the flag.
    armed: bool,
}

impl std::fmt::Debug for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancelled")
            .field("armed", &self.armed)
            .finish_non_exhaustive()
    }
}

/// The waker `inner` is polled with.
#[derive(Default)]
struct Flag {
    fired: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        // Not taken: the task may be polled again without the token being cancelled (a
        // spurious wake-up), and then keeps this waker registered.
        if let Some(task) = &*self.task.lock().unwrap_or_else(PoisonError::into_inner) {
            task.wake_by_ref();
        }
    }
}

impl Cancelled {
    /// Waits for `token` (a clone of it is kept).
    pub fn new(token: &CancellationToken) -> Self {
        Cancelled {
            inner: Box::pin(token.clone().cancelled_owned()),
            flag: Arc::default(),
            task: None,
            armed: false,
        }
    }
}

impl Future for Cancelled {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if !this.task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            let task = cx.waker().clone();
            *this
                .flag
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(task.clone());
            this.task = Some(task);
        }
        if this.armed
            && !(this.flag.fired.load(Ordering::Acquire)
                && this.flag.fired.swap(false, Ordering::AcqRel))
        {
            return Poll::Pending;
        }
        this.armed = true;
        let waker = Waker::from(this.flag.clone());
        this.inner.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(fut: &mut Cancelled, count: &Arc<Count>) -> Poll<()> {
        let waker = Waker::from(count.clone());
        Pin::new(fut).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn pending_until_cancelled_then_ready_and_task_woken() {
        let token = CancellationToken::new();
        let mut fut = Cancelled::new(&token);
        let count = Arc::new(Count::default());
        for _ in 0..3 {
            assert!(poll(&mut fut, &count).is_pending());
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        token.cancel();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the task is woken");
        assert!(poll(&mut fut, &count).is_ready());
    }

    #[test]
    fn already_cancelled_is_ready_at_once() {
        let token = CancellationToken::new();
        token.cancel();
        let mut fut = Cancelled::new(&token);
        assert!(poll(&mut fut, &Arc::new(Count::default())).is_ready());
    }

    #[test]
    fn a_parents_cancellation_reaches_a_child_token() {
        let parent = CancellationToken::new();
        let mut fut = Cancelled::new(&parent.child_token());
        let count = Arc::new(Count::default());
        assert!(poll(&mut fut, &count).is_pending());
        parent.cancel();
        assert!(poll(&mut fut, &count).is_ready());
    }

    #[test]
    fn the_latest_task_waker_is_the_one_woken() {
        let token = CancellationToken::new();
        let mut fut = Cancelled::new(&token);
        let (first, second) = (Arc::new(Count::default()), Arc::new(Count::default()));
        assert!(poll(&mut fut, &first).is_pending());
        assert!(poll(&mut fut, &second).is_pending());
        token.cancel();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut fut, &second).is_ready());
    }

    #[test]
    fn a_spurious_wake_up_keeps_it_waiting_and_registered() {
        let token = CancellationToken::new();
        let mut fut = Cancelled::new(&token);
        let count = Arc::new(Count::default());
        assert!(poll(&mut fut, &count).is_pending());
        // The flag raised without a cancellation: the inner future is polled again, stays
        // pending, and the cancellation still wakes the task afterwards.
        Waker::from(fut.flag.clone()).wake_by_ref();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut fut, &count).is_pending());
        token.cancel();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert!(poll(&mut fut, &count).is_ready());
    }

    #[tokio::test]
    async fn in_select_it_ends_a_task_that_polls_it_repeatedly() {
        let token = CancellationToken::new();
        let t = token.clone();
        let task = tokio::spawn(async move {
            let mut cancelled = Cancelled::new(&t);
            let mut ticks = 0u32;
            loop {
                tokio::select! {
                    _ = &mut cancelled => return ticks,
                    _ = tokio::task::yield_now() => ticks += 1,
                }
            }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        token.cancel();
        let ticks = tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .expect("the task ends")
            .expect("no panic");
        assert!(ticks > 0);
    }
}

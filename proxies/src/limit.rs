//! Bandwidth limiting for `transport.bandwidthLimit`: a shared token bucket and a stream wrapper.
//!
//! frp 0.65.0 builds one `rate.NewLimiter(limit, burst = limit)` (golang.org/x/time/rate) per
//! proxy (`server/proxy/proxy.go` `NewProxy`, `client/proxy/proxy.go` `NewProxy`) and shares it
//! by every connection of that proxy, both directions (`pkg/util/limit/{reader,writer}.go`):
//!
//! * the bucket starts full (`burst` tokens) and refills at `limit` tokens per second, capped at
//!   `burst`; a request for `n` tokens always succeeds immediately but may drive the balance
//!   negative, and the caller then waits until the balance would be back at zero
//!   (`Limiter.reserveN`); this is [`BandwidthLimiter::reserve`].
//! * reads are capped at `burst` bytes each and pay for the bytes read; writes are split into
//!   pieces of at most `burst` bytes, each paid for before it is written.
//!
//! Difference from Go: a Go reader waits *after* reading before it returns the data; tokio's
//! `poll_read` cannot hold data back once it is in the caller's buffer, so [`RateLimited`]
//! returns the data and waits before its *next* read. The long-run rate is the same.
//!
//! All time comes from `tokio::time`, so the limiter works under `tokio::time::pause()` and in
//! turmoil simulations.

use std::future::Future;
use std::io;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A token bucket counted in bytes: `limit` bytes per second, burst = `limit` (as frp).
/// Share it with `Arc` between every stream of one proxy.
#[derive(Debug)]
pub struct BandwidthLimiter {
    /// Refill rate in bytes per second.
    rate: f64,
    /// Bucket size in bytes; also the largest single read or write piece.
    burst: usize,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Current balance; negative while callers are waiting off a debt.
    tokens: f64,
    /// When `tokens` was last brought up to date; `None` = never used (bucket full).
    last: Option<Instant>,
}

impl BandwidthLimiter {
    /// A limiter for `bytes_per_sec` bytes per second with a burst of the same size.
    pub fn new(bytes_per_sec: NonZeroU64) -> Self {
        let burst = usize::try_from(bytes_per_sec.get()).unwrap_or(usize::MAX);
        Self {
            rate: bytes_per_sec.get() as f64,
            burst,
            bucket: Mutex::new(Bucket {
                tokens: burst as f64,
                last: None,
            }),
        }
    }

    /// The burst size in bytes (golang `Limiter.Burst`).
    pub fn burst(&self) -> usize {
        self.burst
    }

    /// Takes `n` tokens at time `now` and returns how long the caller must wait before it may
    /// use them (zero if the bucket had enough). Mirrors golang `Limiter.reserveN` with an
    /// unbounded wait; `n` should not exceed [`burst`](Self::burst).
    pub fn reserve(&self, now: Instant, n: usize) -> Duration {
        // A poisoned lock only means another stream panicked mid-update; the f64 state is
        // still usable.
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = b.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            b.tokens = (b.tokens + elapsed * self.rate).min(self.burst as f64);
        }
        // Never move `last` backwards (golang `advance` clamps the same way).
        b.last = Some(b.last.map_or(now, |l| l.max(now)));
        b.tokens -= n as f64;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / self.rate)
        }
    }
}

/// A re-armable timer, allocated once per direction.
#[derive(Debug, Default)]
struct Delay {
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl Delay {
    fn arm(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        match self.sleep.as_mut() {
            Some(s) => s.as_mut().reset(deadline),
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        self.armed = true;
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.armed {
            if let Some(s) = self.sleep.as_mut() {
                ready!(s.as_mut().poll(cx));
            }
            self.armed = false;
        }
        Poll::Ready(())
    }
}

/// A stream whose reads and writes draw from a shared [`BandwidthLimiter`]
/// (frp `limit.NewReader` + `limit.NewWriter`).
#[derive(Debug)]
pub struct RateLimited<S> {
    inner: S,
    limiter: Arc<BandwidthLimiter>,
    read_delay: Delay,
    write_delay: Delay,
    /// Bytes already paid for (possibly still waiting on `write_delay`) but not yet written.
    write_credit: usize,
}

impl<S> RateLimited<S> {
    /// Wraps `inner`, charging its traffic to `limiter`.
    pub fn new(inner: S, limiter: Arc<BandwidthLimiter>) -> Self {
        Self {
            inner,
            limiter,
            read_delay: Delay::default(),
            write_delay: Delay::default(),
            write_credit: 0,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner stream.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for RateLimited<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Pay off the previous read's debt first.
        ready!(this.read_delay.poll(cx));
        let burst = this.limiter.burst();
        let n = if buf.remaining() > burst {
            // Cap the read at `burst` bytes, as golib's limit.Reader does.
            let slice = buf.initialize_unfilled_to(burst);
            let mut sub = ReadBuf::new(slice);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut sub))?;
            let n = sub.filled().len();
            buf.advance(n);
            n
        } else {
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            buf.filled().len() - before
        };
        if n > 0 {
            let wait = this.limiter.reserve(Instant::now(), n);
            if !wait.is_zero() {
                this.read_delay.arm(wait);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RateLimited<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        loop {
            ready!(this.write_delay.poll(cx));
            if this.write_credit > 0 {
                break;
            }
            let n = buf.len().min(this.limiter.burst());
            let wait = this.limiter.reserve(Instant::now(), n);
            this.write_credit = n;
            if !wait.is_zero() {
                this.write_delay.arm(wait);
            }
        }
        let m = this.write_credit.min(buf.len());
        let written = ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..m]))?;
        this.write_credit -= written;
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limiter(rate: u64) -> Arc<BandwidthLimiter> {
        Arc::new(BandwidthLimiter::new(NonZeroU64::new(rate).unwrap()))
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_matches_golang_rate() {
        let l = limiter(1000);
        let t0 = Instant::now();
        // Starts full: the first burst is free.
        assert_eq!(l.reserve(t0, 1000), Duration::ZERO);
        // Debt of 500 bytes at 1000 B/s = 0.5 s.
        assert_eq!(l.reserve(t0, 500), Duration::from_millis(500));
        // Another caller queues behind the debt.
        assert_eq!(l.reserve(t0, 500), Duration::from_secs(1));
        // After 3 s the bucket is full again, never above burst.
        let t3 = t0 + Duration::from_secs(3);
        assert_eq!(l.reserve(t3, 1000), Duration::ZERO);
        assert_eq!(l.reserve(t3, 1), Duration::from_millis(1));
    }

    #[tokio::test(start_paused = true)]
    async fn writes_are_paced() {
        let l = limiter(1000);
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut w = RateLimited::new(a, l);
        let start = Instant::now();
        let reader = tokio::spawn(async move {
            let mut v = Vec::new();
            b.read_to_end(&mut v).await.unwrap();
            v.len()
        });
        w.write_all(&vec![7u8; 5000]).await.unwrap();
        // 1000 free, then 4000 more at 1000 B/s; each 1000-byte piece waits before it goes.
        assert_eq!(start.elapsed(), Duration::from_secs(4));
        w.shutdown().await.unwrap();
        drop(w);
        assert_eq!(reader.await.unwrap(), 5000);
    }

    #[tokio::test(start_paused = true)]
    async fn reads_are_capped_and_paced() {
        let l = limiter(100);
        let data = vec![1u8; 1000];
        let mut r = RateLimited::new(&data[..], l);
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        // Each read returns at most `burst` bytes.
        assert_eq!(r.read(&mut buf).await.unwrap(), 100);
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(r.read(&mut buf).await.unwrap(), 100);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest.len(), 800);
        // 1000 bytes at 100 B/s with a 100-byte free burst: ~9 s of waiting, the last debt
        // (paid before the EOF read) included.
        let secs = start.elapsed().as_secs_f64();
        assert!((8.9..=10.1).contains(&secs), "elapsed {secs}");
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_is_shared_between_streams() {
        let l = limiter(1000);
        let (a1, _b1) = tokio::io::duplex(1 << 16);
        let (a2, _b2) = tokio::io::duplex(1 << 16);
        let mut w1 = RateLimited::new(a1, l.clone());
        let mut w2 = RateLimited::new(a2, l);
        let start = Instant::now();
        w1.write_all(&[0u8; 1000]).await.unwrap();
        w2.write_all(&[0u8; 1000]).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}

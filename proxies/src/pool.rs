//! The relay's copy buffers, lent out only while data flows.
//!
//! A held connection that is not moving data should cost no copy buffer: the relay takes a
//! [`RelayBuf`] just before it reads and gives it back as soon as the read would block with
//! nothing left to write (see `relay::Direction`). Returned buffers go to a small free list per
//! thread, so a busy relay reuses the same few warm buffers instead of going to the allocator
//! on every wake-up, and a burst of traffic leaves at most [`POOL_CAP_PER_THREAD`] buffers
//! behind per thread. frp gets the same effect from golib's `sync.Pool` of 16 KiB buffers, but
//! holds one for the whole life of every joined connection.
//!
//! Per thread rather than global: the tokio worker that polls a relay takes and returns the
//! buffer within one poll most of the time, so there is nothing to share and nothing to lock.
//! A buffer taken on one worker and returned on another simply changes lists.

use std::cell::{Cell, RefCell};
use std::ops::{Deref, DerefMut};

/// Size of one copy buffer (golib `io.Join` copies through pooled 16 KiB buffers; a TLS record
/// carries at most 16 KiB of plaintext).
pub const RELAY_BUF_SIZE: usize = 16 * 1024;

/// How many free buffers each thread keeps (256 KiB); more are returned to the allocator.
pub const POOL_CAP_PER_THREAD: usize = 16;

thread_local! {
    static FREE: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
    /// Buffers taken on this thread minus buffers given back on it.
    static LENT: Cell<isize> = const { Cell::new(0) };
}

/// A [`RELAY_BUF_SIZE`] byte buffer from this thread's free list; back to a free list on drop.
#[derive(Debug)]
pub struct RelayBuf(Option<Box<[u8]>>);

impl RelayBuf {
    /// Takes a buffer from this thread's free list, or allocates one.
    pub fn take() -> Self {
        let reused = FREE.try_with(|f| f.borrow_mut().pop()).ok().flatten();
        let _ = LENT.try_with(|l| l.set(l.get() + 1));
        RelayBuf(Some(
            reused.unwrap_or_else(|| vec![0u8; RELAY_BUF_SIZE].into_boxed_slice()),
        ))
    }
}

impl Deref for RelayBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl DerefMut for RelayBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.0.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for RelayBuf {
    fn drop(&mut self) {
        let Some(buf) = self.0.take() else { return };
        let _ = LENT.try_with(|l| l.set(l.get() - 1));
        // During thread teardown the free list may be gone: then the buffer is just freed.
        let _ = FREE.try_with(|f| {
            let mut f = f.borrow_mut();
            if f.len() < POOL_CAP_PER_THREAD {
                f.push(buf);
            }
        });
    }
}

/// Free buffers waiting on this thread's list.
pub fn free_on_this_thread() -> usize {
    FREE.try_with(|f| f.borrow().len()).unwrap_or(0)
}

/// Buffers taken on this thread and not yet given back on it. Exact for a relay polled on one
/// thread only (a current-thread runtime); with work stealing, buffers may be given back on
/// another thread than the one that took them, so only the sum over all threads is meaningful.
pub fn lent_on_this_thread() -> isize {
    LENT.try_with(Cell::get).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_and_the_list_is_capped() {
        // Each test runs on its own thread, so these counters are this test's alone.
        assert_eq!(lent_on_this_thread(), 0);
        let bufs: Vec<RelayBuf> = (0..POOL_CAP_PER_THREAD + 4)
            .map(|_| RelayBuf::take())
            .collect();
        assert!(bufs.iter().all(|b| b.len() == RELAY_BUF_SIZE));
        assert_eq!(lent_on_this_thread(), (POOL_CAP_PER_THREAD + 4) as isize);
        assert_eq!(free_on_this_thread(), 0);
        drop(bufs);
        assert_eq!(lent_on_this_thread(), 0);
        assert_eq!(free_on_this_thread(), POOL_CAP_PER_THREAD);
        // Reuse takes from the list rather than allocating.
        let mut b = RelayBuf::take();
        assert_eq!(free_on_this_thread(), POOL_CAP_PER_THREAD - 1);
        b[0] = 7;
        drop(b);
        assert_eq!(free_on_this_thread(), POOL_CAP_PER_THREAD);
    }
}

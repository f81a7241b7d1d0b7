//! Helpers for a TCP socket lent to the session ([`super::MuxStream::attach_sink`]) and used
//! through shared references by both the session and the stream's relay
//! (`proxies::mux_relay::join_mux_tcp`), and for the queues of received slices both write from.

use std::collections::VecDeque;
use std::io;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// One non-blocking read or write on `tcp` of up to `len` bytes (`op`), as tokio's own
/// `TcpStream` IO does it: "would block" clears the socket's readiness for `interest`, and so
/// does a short transfer, which shows the socket drained (reads; epoll is edge-triggered) or
/// its send buffer full (writes). Without the latter, the next call would make one more
/// system call that could only find nothing (bench/NOTES.md, "Writing through").
pub fn try_op(
    tcp: &TcpStream,
    interest: Interest,
    len: usize,
    mut op: impl FnMut() -> io::Result<usize>,
) -> io::Result<usize> {
    let mut done = None;
    let r = tcp.try_io(interest, || {
        let n = op()?;
        done = Some(n);
        if n > 0 && n < len {
            // Reported as "would block" only so that `try_io` clears the readiness.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(())
    });
    match done {
        Some(n) => Ok(n),
        None => r.map(|()| 0),
    }
}

/// [`try_op`] once `tcp` is ready for `interest` (readable or writable), waiting (`Pending`,
/// waker registered) while it is not.
pub fn poll_op(
    tcp: &TcpStream,
    cx: &mut Context<'_>,
    interest: Interest,
    len: usize,
    mut op: impl FnMut() -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        if interest.is_readable() {
            ready!(tcp.poll_read_ready(cx))?;
        } else {
            ready!(tcp.poll_write_ready(cx))?;
        }
        match try_op(tcp, interest, len, &mut op) {
            // The readiness was stale, and is cleared: wait again.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            r => return Poll::Ready(r),
        }
    }
}

/// Drops the first `n` written bytes of `chunks`.
pub fn advance(chunks: &mut VecDeque<Bytes>, mut n: usize) {
    while n > 0 {
        let Some(front) = chunks.front_mut() else {
            return;
        };
        if n < front.len() {
            front.advance(n);
            return;
        }
        n -= front.len();
        chunks.pop_front();
    }
}

//! [`WsStream`]: a websocket connection seen as a plain byte stream.
//!
//! Reading: data frames (text or binary, never UTF-8 checked, since frp 0.65's
//! golang.org/x/net/websocket sends binary data in text frames) are delivered as bytes
//! while they arrive, so a frame's length never causes an allocation; fragments are
//! concatenated; pings are answered with pongs; a close frame ends the stream (EOF).
//! Writing: every write becomes one binary frame (masked from the client, unmasked from
//! the server, as RFC 6455 requires and x/net enforces); shutdown sends a close frame
//! (status 1000) and then shuts the inner stream down.
//!
//! Frames are queued whole into one outgoing buffer, so a pong never lands inside a
//! data frame. Like TLS streams, a write may sit in that buffer until the next write or
//! flush.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll, Wake, Waker};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::io::poll_read_buf;

use super::frame::{self, Header};

/// Which end of the websocket we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends masked frames, expects unmasked ones.
    Client,
    /// Sends unmasked frames, expects masked ones.
    Server,
}

/// Largest payload of one outgoing data frame (a larger write is split over calls).
const MAX_OUT_FRAME: usize = 64 * 1024;
/// Above this many queued bytes, `poll_write` waits for the inner stream.
const OUT_HIGH_WATER: usize = 128 * 1024;
/// How much to read from the inner stream at once.
const READ_CHUNK: usize = 16 * 1024;
/// Close status "normal closure".
const CLOSE_NORMAL: u16 = 1000;

#[derive(Clone, Copy, Debug)]
enum ReadState {
    /// Expecting a frame header.
    Header,
    /// Inside a data frame's payload.
    Payload {
        remaining: u64,
        mask: Option<[u8; 4]>,
        offset: usize,
    },
    /// A close frame was received (or the peer vanished at a frame boundary).
    Closed,
}

/// A websocket connection as an `AsyncRead + AsyncWrite` byte stream.
#[derive(Debug)]
pub struct WsStream<S> {
    inner: S,
    role: Role,
    /// Bytes read from `inner` and not consumed yet (bounded by `READ_CHUNK` + a
    /// control frame: only filled when a header or control frame is incomplete, or a
    /// payload needs bytes and the buffer is empty).
    rbuf: BytesMut,
    read: ReadState,
    /// A fragmented data message is in progress (continuation frames expected).
    in_message: bool,
    /// Encoded frames waiting for `inner`.
    out: BytesMut,
    close_sent: bool,
    /// The waker of a write waiting for `inner` (see `poll_read_side_drain`).
    write_waker: Option<Waker>,
}

impl<S> WsStream<S> {
    /// Wraps an upgraded connection; `leftover` holds bytes read past the HTTP head.
    pub fn new(inner: S, role: Role, leftover: BytesMut) -> Self {
        WsStream {
            inner,
            role,
            rbuf: leftover,
            read: ReadState::Header,
            in_message: false,
            out: BytesMut::new(),
            close_sent: false,
            write_waker: None,
        }
    }

    /// Queues one frame whole into the outgoing buffer (masking when we are the client).
    fn queue_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mask = match self.role {
            Role::Client => Some(rand::random::<[u8; 4]>()),
            Role::Server => None,
        };
        let header = Header {
            fin: true,
            opcode,
            mask,
            len: payload.len() as u64,
        };
        self.out.reserve(frame::MAX_HEADER_LEN + payload.len());
        frame::encode_header(&header, &mut self.out);
        let start = self.out.len();
        self.out.extend_from_slice(payload);
        if let Some(mask) = mask {
            frame::apply_mask(&mut self.out[start..], mask, 0);
        }
    }
}

fn protocol_error(msg: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("websocket: {msg}"))
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// [`Self::poll_drain`] from the write side: remembers the writer's waker while
    /// it waits, for `poll_read_side_drain`.
    fn poll_write_side_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let res = self.poll_drain(cx);
        self.write_waker = res.is_pending().then(|| cx.waker().clone());
        res
    }

    /// Pushes out pongs queued by reads (and any data left by writes). When reader and
    /// writer are different tasks (`tokio::io::split`), polling `inner`'s write side
    /// here replaces the writer's registration (a socket keeps one waker per
    /// direction), so both are woken when `inner` becomes writable. Errors surface on
    /// the write side.
    fn poll_read_side_drain(&mut self, cx: &mut Context<'_>) {
        if self.out.is_empty() {
            return;
        }
        let writer = self.write_waker.take();
        let waker = match &writer {
            Some(w) => Waker::from(Arc::new(BothWakers(cx.waker().clone(), w.clone()))),
            None => cx.waker().clone(),
        };
        match self.poll_drain(&mut Context::from_waker(&waker)) {
            Poll::Pending => self.write_waker = writer,
            Poll::Ready(res) => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "websocket: write failed while answering a ping");
                }
                // The writer may be waiting for exactly this.
                if let Some(w) = writer {
                    w.wake();
                }
            }
        }
    }

    /// Writes queued frames until the buffer is empty.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.advance(n);
        }
        Poll::Ready(Ok(()))
    }

    /// Reads more bytes into `rbuf`; `Ok(0)` at EOF.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.rbuf.reserve(READ_CHUNK);
        poll_read_buf(Pin::new(&mut self.inner), cx, &mut self.rbuf)
    }

    /// Handles the frame header at the start of `rbuf`. `Ok(false)` means more bytes
    /// are needed.
    fn handle_header(&mut self) -> io::Result<bool> {
        let Some((h, hlen)) = frame::decode_header(&self.rbuf).map_err(protocol_error)? else {
            return Ok(false);
        };
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(protocol_error("unmasked frame from client")),
            (Role::Client, true) => return Err(protocol_error("masked frame from server")),
            _ => {}
        }
        if h.is_control() {
            // `decode_header` bounded `h.len` to MAX_CONTROL_LEN.
            let total = hlen + h.len as usize;
            if self.rbuf.len() < total {
                return Ok(false);
            }
            let mut frame = self.rbuf.split_to(total);
            let mut payload = frame.split_off(hlen);
            if let Some(mask) = h.mask {
                frame::apply_mask(&mut payload, mask, 0);
            }
            self.handle_control(h.opcode, &payload);
            return Ok(true);
        }
        match (h.opcode, self.in_message) {
            (frame::OP_CONTINUATION, false) => {
                return Err(protocol_error("continuation frame outside a message"))
            }
            (frame::OP_TEXT | frame::OP_BINARY, true) => {
                return Err(protocol_error("new message inside a fragmented message"))
            }
            _ => {}
        }
        self.in_message = !h.fin;
        self.rbuf.advance(hlen);
        self.read = ReadState::Payload {
            remaining: h.len,
            mask: h.mask,
            offset: 0,
        };
        Ok(true)
    }

    fn handle_control(&mut self, opcode: u8, payload: &[u8]) {
        match opcode {
            // Answer unless we are closing; under a flood of pings while the peer does
            // not read, only the most recent ones get an answer (RFC 6455 §5.5.3).
            frame::OP_PING
                if !self.close_sent && self.out.len() < OUT_HIGH_WATER + MAX_OUT_FRAME =>
            {
                self.queue_frame(frame::OP_PONG, payload);
            }
            frame::OP_CLOSE => {
                // The close reply is sent when our side shuts down: the peer may be
                // half-closing (our own peer does on shutdown) and we may still write.
                self.read = ReadState::Closed;
            }
            _ => {} // Unsolicited pongs are ignored.
        }
    }

    /// Copies payload bytes of the current data frame into `buf`.
    fn poll_payload(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
        remaining: u64,
        mask: Option<[u8; 4]>,
        offset: usize,
    ) -> Poll<io::Result<()>> {
        let want = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(buf.remaining());
        let n = if self.rbuf.is_empty() {
            // Read straight into the caller's buffer, at most up to the frame's end.
            let dst = &mut buf.initialize_unfilled_to(want)[..want];
            let mut sub = ReadBuf::new(dst);
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut sub))?;
            let n = sub.filled().len();
            if n == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "websocket: connection closed inside a frame",
                )));
            }
            if let Some(mask) = mask {
                frame::apply_mask(&mut dst[..n], mask, offset);
            }
            buf.advance(n);
            n
        } else {
            let n = want.min(self.rbuf.len());
            let mut chunk = self.rbuf.split_to(n);
            if let Some(mask) = mask {
                frame::apply_mask(&mut chunk, mask, offset);
            }
            buf.put_slice(&chunk);
            n
        };
        let remaining = remaining - n as u64;
        self.read = if remaining == 0 {
            ReadState::Header
        } else {
            ReadState::Payload {
                remaining,
                mask,
                offset: offset + n,
            }
        };
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            this.poll_read_side_drain(cx);
            match this.read {
                ReadState::Closed => return Poll::Ready(Ok(())),
                ReadState::Payload { remaining: 0, .. } => this.read = ReadState::Header,
                ReadState::Payload {
                    remaining,
                    mask,
                    offset,
                } => return this.poll_payload(cx, buf, remaining, mask, offset),
                ReadState::Header => {
                    if this.handle_header()? {
                        continue;
                    }
                    if ready!(this.poll_fill(cx))? == 0 {
                        if this.rbuf.is_empty() && !this.in_message {
                            // The peer closed the connection without a close frame.
                            this.read = ReadState::Closed;
                            return Poll::Ready(Ok(()));
                        }
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "websocket: connection closed inside a frame",
                        )));
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.close_sent {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "websocket: write after close",
            )));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.out.len() >= OUT_HIGH_WATER {
            ready!(this.poll_write_side_drain(cx))?;
        }
        let n = data.len().min(MAX_OUT_FRAME);
        this.queue_frame(frame::OP_BINARY, &data[..n]);
        // Start sending now; whatever does not fit goes out on the next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_write_side_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_side_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent {
            this.queue_frame(frame::OP_CLOSE, &CLOSE_NORMAL.to_be_bytes());
            this.close_sent = true;
        }
        ready!(this.poll_write_side_drain(cx))?;
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// Wakes the reading and the writing task together.
struct BothWakers(Waker, Waker);

impl Wake for BothWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.wake_by_ref();
        self.1.wake_by_ref();
    }
}

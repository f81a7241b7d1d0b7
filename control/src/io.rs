//! Reading and writing single frames on any tokio byte stream.
//!
//! This is the one place in `control` that touches an async stream, and it does so through
//! the stream the caller hands in: no sockets are opened here.
//!
//! [`read_msg`] reads exactly one frame and nothing more (1 byte, then 8, then the body, as
//! golib's `readMsg` does), because after `StartWorkConn` or `NewVisitorConnResp` the same
//! stream carries raw proxied bytes that must stay in the stream. Do not put a `BufReader`
//! under it unless the buffered remainder is handed on.
//!
//! [`write_msg`] sends the whole frame with one buffer, like golib's `WriteMsg`, so frames
//! from concurrent writers on a shared encrypted stream cannot interleave mid-frame.

use std::io::ErrorKind;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use bytes::BytesMut;

use crate::codec::{encode, parse_body, parse_len, parse_type, HEADER_LEN};
use crate::error::ProtocolError;
use crate::msg::Message;

/// Maps an EOF inside a frame to [`ProtocolError::Truncated`].
fn mid_frame(e: std::io::Error) -> ProtocolError {
    if e.kind() == ErrorKind::UnexpectedEof {
        ProtocolError::Truncated
    } else {
        ProtocolError::Io(e)
    }
}

/// Reads exactly one frame from `r`.
///
/// A clean end of stream before the first byte is [`ProtocolError::Closed`]. Memory use is
/// bounded by [`crate::codec::MAX_MSG_LENGTH`] whatever the peer claims.
///
/// Not cancel-safe: dropping the future mid-frame loses the bytes read so far. Use
/// [`crate::codec::MsgCodec`] with `FramedRead` where a read must race other events.
pub async fn read_msg<R: AsyncRead + Unpin + ?Sized>(r: &mut R) -> Result<Message, ProtocolError> {
    let mut head = [0u8; HEADER_LEN];
    loop {
        match r.read(&mut head[..1]).await {
            Ok(0) => return Err(ProtocolError::Closed),
            Ok(_) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(ProtocolError::Io(e)),
        }
    }
    let kind = parse_type(head[0])?;
    r.read_exact(&mut head[1..]).await.map_err(mid_frame)?;
    let mut raw_len = [0u8; 8];
    raw_len.copy_from_slice(&head[1..]);
    let len = parse_len(raw_len)?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.map_err(mid_frame)?;
    parse_body(kind, &body)
}

/// Writes one frame for `msg` to `w` from a single buffer, then flushes.
///
/// The flush matters for layered writers (TLS, the control-connection cipher) that buffer.
pub async fn write_msg<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    msg: &Message,
) -> Result<(), ProtocolError> {
    let mut frame = BytesMut::new();
    encode(msg, &mut frame)?;
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// Writes each message from `rx` as one frame until the queue closes or `cancel` fires, then
/// shuts the writer down. A failed write fires `cancel`, so the session owning the reader ends
/// too. This is the sending half of a control connection on both sides (frp's
/// `msg.Dispatcher` send loop).
///
/// Messages already queued when the writer wakes leave together, in order, in one write and
/// one flush (up to [`WRITE_BATCH`] bytes): a burst of `ReqWorkConn` under a burst of user
/// connections then costs one pass through the stream's cipher and one frame, not one each.
pub async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: tokio::sync::mpsc::Receiver<Message>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let mut buf = BytesMut::new();
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => break,
            m = rx.recv() => match m {
                Some(m) => m,
                None => break,
            },
        };
        buf.clear();
        let mut encoded = encode(&first, &mut buf);
        while encoded.is_ok() && buf.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(m) => encoded = encode(&m, &mut buf),
                Err(_) => break,
            }
        }
        let written = match encoded {
            Ok(()) => write_all_flush(&mut wr, &buf).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::debug!("write to control connection: {e}");
            cancel.cancel();
            break;
        }
        if buf.capacity() > WRITE_BATCH * 2 {
            buf = BytesMut::new();
        }
    }
    let _ = wr.shutdown().await;
}

/// Bytes of queued frames [`write_loop`] gathers into one write.
pub const WRITE_BATCH: usize = 16 * 1024;

async fn write_all_flush<W: AsyncWrite + Unpin>(
    w: &mut W,
    buf: &[u8],
) -> Result<(), ProtocolError> {
    w.write_all(buf).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_to_vec;
    use crate::msg::{NewWorkConn, Ping, StartWorkConn};

    #[tokio::test]
    async fn read_msg_leaves_trailing_bytes_in_the_stream() {
        let start = StartWorkConn {
            proxy_name: "t1".into(),
            ..Default::default()
        };
        let mut wire = encode_to_vec(&start.clone().into()).unwrap();
        wire.extend_from_slice(b"proxied payload");
        let mut r = &wire[..];
        assert_eq!(read_msg(&mut r).await.unwrap(), start.into());
        assert_eq!(r, b"proxied payload");
    }

    #[tokio::test]
    async fn write_then_read_over_a_duplex() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let msg: Message = NewWorkConn {
            run_id: "0123456789abcdef".into(),
            ..Default::default()
        }
        .into();
        let sent = msg.clone();
        let writer = async move {
            write_msg(&mut a, &sent).await.unwrap();
            write_msg(&mut a, &Ping::default().into()).await.unwrap();
        };
        let reader = async {
            let first = read_msg(&mut b).await.unwrap();
            let second = read_msg(&mut b).await.unwrap();
            (first, second)
        };
        let ((), (first, second)) = tokio::join!(writer, reader);
        assert_eq!(first, msg);
        assert_eq!(second, Ping::default().into());
        assert!(matches!(read_msg(&mut b).await, Err(ProtocolError::Closed)));
    }

    #[tokio::test]
    async fn eof_inside_a_frame_is_truncation() {
        let mut r: &[u8] = b"h\0\0\0\0\0\0\0\x05{}";
        assert!(matches!(
            read_msg(&mut r).await,
            Err(ProtocolError::Truncated)
        ));
        let mut r: &[u8] = b"h\0\0";
        assert!(matches!(
            read_msg(&mut r).await,
            Err(ProtocolError::Truncated)
        ));
    }

    #[tokio::test]
    async fn bad_header_fails_without_reading_the_body() {
        let mut r: &[u8] = b"h\x7f\xff\xff\xff\xff\xff\xff\xffrest";
        assert!(matches!(
            read_msg(&mut r).await,
            Err(ProtocolError::TooLong { .. })
        ));
        assert_eq!(r, b"rest");
        let mut r: &[u8] = b"Zrest";
        assert!(matches!(
            read_msg(&mut r).await,
            Err(ProtocolError::UnknownType(b'Z'))
        ));
        assert_eq!(r, b"rest");
    }

    /// Records each write it is given.
    struct Writes(Vec<Vec<u8>>);

    impl AsyncWrite for Writes {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.0.push(buf.to_vec());
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn write_loop_sends_queued_messages_in_one_write_in_order() {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let msgs: Vec<Message> = (0..40)
            .map(|i| {
                StartWorkConn {
                    proxy_name: format!("p{i}"),
                    ..Default::default()
                }
                .into()
            })
            .collect();
        for m in &msgs {
            tx.send(m.clone()).await.unwrap();
        }
        drop(tx);
        let mut out = Writes(Vec::new());
        write_loop(&mut out, rx, tokio_util::sync::CancellationToken::new()).await;
        assert_eq!(out.0.len(), 1, "one write for the queued burst");
        let mut r = &out.0[0][..];
        for m in &msgs {
            assert_eq!(&read_msg(&mut r).await.unwrap(), m);
        }
        assert!(r.is_empty());
    }

    #[tokio::test]
    async fn write_loop_splits_a_long_queue_into_batches() {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let m: Message = StartWorkConn {
            proxy_name: "x".repeat(200),
            ..Default::default()
        }
        .into();
        let frame = encode_to_vec(&m).unwrap().len();
        let n = 3 * WRITE_BATCH / frame;
        for _ in 0..n {
            tx.send(m.clone()).await.unwrap();
        }
        drop(tx);
        let mut out = Writes(Vec::new());
        write_loop(&mut out, rx, tokio_util::sync::CancellationToken::new()).await;
        assert!(out.0.len() >= 3, "{} writes", out.0.len());
        assert!(out.0.iter().all(|w| w.len() < WRITE_BATCH + frame));
        assert_eq!(out.0.iter().map(Vec::len).sum::<usize>(), n * frame);
    }
}

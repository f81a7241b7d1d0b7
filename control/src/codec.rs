//! frp's v1 message framing (golib v0.5.1 `msg/json`), as pure functions and a
//! `tokio_util` codec.
//!
//! ```text
//! +--------+-------------------------------+----------------------+
//! | type   | length: i64, big-endian       | body: JSON (UTF-8)   |
//! | 1 byte | 8 bytes                       | `length` bytes       |
//! +--------+-------------------------------+----------------------+
//! ```
//!
//! Checks happen in golib's order: the type byte as soon as it arrives, then the length
//! (negative or above [`MAX_MSG_LENGTH`] is fatal) before any buffer is sized from it.
//! The encoder refuses bodies above the limit too: Go would send them, but the peer would
//! only drop the connection, so failing locally gives the clearer error.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::ProtocolError;
use crate::msg::{Message, MessageType};

/// Largest accepted body (golib `defaultMaxMsgLength`; frp never changes it).
pub const MAX_MSG_LENGTH: usize = 10240;
/// Type byte plus the 8-byte length.
pub const HEADER_LEN: usize = 9;
/// Largest complete frame.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_MSG_LENGTH;

/// Validates a type byte.
pub(crate) fn parse_type(byte: u8) -> Result<MessageType, ProtocolError> {
    MessageType::from_type_byte(byte).ok_or(ProtocolError::UnknownType(byte))
}

/// Validates a big-endian length field and returns the body length.
pub(crate) fn parse_len(raw: [u8; 8]) -> Result<usize, ProtocolError> {
    let len = i64::from_be_bytes(raw);
    if len < 0 {
        return Err(ProtocolError::NegativeLength(len));
    }
    match usize::try_from(len) {
        Ok(n) if n <= MAX_MSG_LENGTH => Ok(n),
        _ => Err(ProtocolError::TooLong {
            len,
            max: MAX_MSG_LENGTH,
        }),
    }
}

/// Parses a body once its type and length have been validated.
pub(crate) fn parse_body(kind: MessageType, body: &[u8]) -> Result<Message, ProtocolError> {
    Message::from_json(kind, body).map_err(|source| ProtocolError::BadJson { kind, source })
}

/// Appends one frame for `msg` to `dst`. On error `dst` is left as it was.
pub fn encode(msg: &Message, dst: &mut BytesMut) -> Result<(), ProtocolError> {
    let start = dst.len();
    dst.reserve(HEADER_LEN + 128);
    dst.put_u8(msg.type_byte());
    dst.put_i64(0); // patched below once the body length is known
    let body_start = dst.len();
    let written = msg.write_json((&mut *dst).writer());
    let body_len = dst.len() - body_start;
    let result = match written {
        Err(source) => Err(ProtocolError::Serialize {
            kind: msg.msg_type(),
            source,
        }),
        Ok(()) if body_len > MAX_MSG_LENGTH => Err(ProtocolError::TooLong {
            len: i64::try_from(body_len).unwrap_or(i64::MAX),
            max: MAX_MSG_LENGTH,
        }),
        Ok(()) => Ok(()),
    };
    match result {
        Ok(()) => {
            // body_len <= MAX_MSG_LENGTH, so the cast is lossless.
            dst[start + 1..body_start].copy_from_slice(&(body_len as i64).to_be_bytes());
            Ok(())
        }
        Err(e) => {
            dst.truncate(start);
            Err(e)
        }
    }
}

/// One complete frame for `msg` as a fresh buffer (for writers that must send it at once).
pub fn encode_to_vec(msg: &Message) -> Result<Vec<u8>, ProtocolError> {
    let mut buf = BytesMut::new();
    encode(msg, &mut buf)?;
    Ok(buf.to_vec())
}

/// Takes one frame off the front of `src`.
///
/// `Ok(None)` means more bytes are needed; `src` then holds at most one partial frame and has
/// been reserved no further than [`MAX_FRAME_LEN`]. Errors are fatal for the stream.
pub fn decode(src: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
    let Some(&type_byte) = src.first() else {
        return Ok(None);
    };
    let kind = parse_type(type_byte)?;
    if src.len() < HEADER_LEN {
        return Ok(None);
    }
    let mut raw_len = [0u8; 8];
    raw_len.copy_from_slice(&src[1..HEADER_LEN]);
    let total = HEADER_LEN + parse_len(raw_len)?;
    if src.len() < total {
        // Bounded by MAX_FRAME_LEN thanks to parse_len.
        src.reserve(total - src.len());
        return Ok(None);
    }
    let frame = src.split_to(total);
    parse_body(kind, &frame[HEADER_LEN..]).map(Some)
}

/// The frame codec for `tokio_util::codec::Framed` and friends.
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgCodec;

impl Decoder for MsgCodec {
    type Item = Message;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        decode(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        match decode(src)? {
            Some(msg) => Ok(Some(msg)),
            None if src.is_empty() => Ok(None),
            None => {
                src.advance(src.len());
                Err(ProtocolError::Truncated)
            }
        }
    }
}

impl Encoder<&Message> for MsgCodec {
    type Error = ProtocolError;

    fn encode(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        encode(msg, dst)
    }
}

impl Encoder<Message> for MsgCodec {
    type Error = ProtocolError;

    fn encode(&mut self, msg: Message, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        encode(&msg, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{CloseProxy, Ping, ReqWorkConn};

    fn frame(ty: u8, len: i64, body: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        b.put_u8(ty);
        b.put_i64(len);
        b.put_slice(body);
        b
    }

    #[test]
    fn encodes_req_work_conn_exactly() {
        let mut b = BytesMut::new();
        encode(&ReqWorkConn {}.into(), &mut b).unwrap();
        assert_eq!(&b[..], b"r\0\0\0\0\0\0\0\x02{}");
    }

    #[test]
    fn partial_input_waits_then_decodes() {
        let full = frame(b'h', 2, b"{}");
        for cut in 0..full.len() {
            let mut part = BytesMut::from(&full[..cut]);
            assert!(decode(&mut part).unwrap().is_none(), "cut {cut}");
            assert_eq!(part.len(), cut, "nothing consumed");
        }
        let mut two = full.clone();
        two.extend_from_slice(&full);
        assert_eq!(decode(&mut two).unwrap(), Some(Ping::default().into()));
        assert_eq!(decode(&mut two).unwrap(), Some(Ping::default().into()));
        assert!(two.is_empty());
    }

    #[test]
    fn each_failure_has_its_own_error() {
        let mut b = BytesMut::from(&b"x"[..]);
        assert!(matches!(
            decode(&mut b),
            Err(ProtocolError::UnknownType(b'x'))
        ));
        let mut b = frame(b'h', -1, b"");
        assert!(matches!(
            decode(&mut b),
            Err(ProtocolError::NegativeLength(-1))
        ));
        let mut b = frame(b'h', 10241, b"");
        let err = decode(&mut b).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::TooLong {
                len: 10241,
                max: 10240
            }
        ));
        assert_eq!(
            err.to_string(),
            "message length 10241 exceeds the limit of 10240 bytes"
        );
        let mut b = frame(b'h', i64::MAX, b"");
        assert!(matches!(decode(&mut b), Err(ProtocolError::TooLong { .. })));
        let mut b = frame(b'h', 3, b"{x}");
        let err = decode(&mut b).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::BadJson {
                kind: MessageType::Ping,
                ..
            }
        ));
        assert!(err.to_string().starts_with("malformed Ping message body"));
    }

    #[test]
    fn limit_is_inclusive_and_checked_before_allocating() {
        let mut b = frame(b'h', MAX_MSG_LENGTH as i64, b"");
        assert!(decode(&mut b).unwrap().is_none());
        assert!(b.capacity() <= 2 * MAX_FRAME_LEN);
    }

    #[test]
    fn encoder_refuses_oversize_and_leaves_buffer_intact() {
        let mut b = BytesMut::from(&b"keep"[..]);
        let big = CloseProxy {
            proxy_name: "a".repeat(MAX_MSG_LENGTH),
        };
        let err = encode(&big.into(), &mut b).unwrap_err();
        assert!(matches!(err, ProtocolError::TooLong { .. }));
        assert_eq!(&b[..], b"keep");
    }

    #[test]
    fn decode_eof_reports_truncation() {
        let mut c = MsgCodec;
        let mut b = BytesMut::from(&b"h\0\0"[..]);
        assert!(matches!(
            c.decode_eof(&mut b),
            Err(ProtocolError::Truncated)
        ));
        let mut empty = BytesMut::new();
        assert!(c.decode_eof(&mut empty).unwrap().is_none());
    }
}

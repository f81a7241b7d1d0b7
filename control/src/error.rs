//! The error type of the frame layer ([`crate::codec`], [`crate::io`]).
//!
//! Each way a peer can break framing is a distinct variant, because frp reacts the same way
//! to all of them (drop the connection) but operators need to tell them apart in logs
//! (golib `msg/json/process.go`: `ErrMsgType`, `ErrMaxMsgLength`, `ErrMsgLength`, plus JSON).

use std::io;

use crate::msg::MessageType;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The type byte is not one of frp's 18 message types.
    #[error("unknown message type byte {0:#04x}")]
    UnknownType(u8),
    /// The length field is negative.
    #[error("negative message length {0}")]
    NegativeLength(i64),
    /// The length field (or an encoded body) exceeds frp's 10240-byte limit.
    #[error("message length {len} exceeds the limit of {max} bytes")]
    TooLong {
        /// The offending length.
        len: i64,
        /// The limit, [`crate::codec::MAX_MSG_LENGTH`].
        max: usize,
    },
    /// The body is not valid JSON for its message type.
    #[error("malformed {kind} message body: {source}")]
    BadJson {
        /// The type announced by the type byte.
        kind: MessageType,
        /// What serde_json found wrong.
        #[source]
        source: serde_json::Error,
    },
    /// Serializing an outgoing message failed (not expected for frp's message types).
    #[error("failed to serialize {kind} message: {source}")]
    Serialize {
        /// The message type being written.
        kind: MessageType,
        /// What serde_json reported.
        #[source]
        source: serde_json::Error,
    },
    /// The peer closed the stream cleanly between two frames.
    #[error("connection closed by peer")]
    Closed,
    /// The stream ended in the middle of a frame.
    #[error("connection closed in the middle of a message")]
    Truncated,
    /// The underlying stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

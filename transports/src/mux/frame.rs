//! The yamux frame header (hashicorp `spec.md`), pure encode/decode.
//!
//! ```text
//! version u8 (=0) | type u8 | flags u16 | stream_id u32 | length u32   (big-endian)
//! ```
//! `length` is the payload size for Data, the window delta for WindowUpdate, the opaque
//! ping id for Ping and the error code for GoAway.

/// Size of a frame header.
pub(crate) const HEADER_LEN: usize = 12;
/// The only protocol version.
const VERSION: u8 = 0;

/// Flag: opens a stream.
pub(crate) const SYN: u16 = 1;
/// Flag: acknowledges a stream (or answers a ping).
pub(crate) const ACK: u16 = 2;
/// Flag: half-closes a stream.
pub(crate) const FIN: u16 = 4;
/// Flag: resets a stream.
pub(crate) const RST: u16 = 8;

/// GoAway code: normal termination.
pub(crate) const GO_AWAY_NORMAL: u32 = 0;
/// GoAway code: protocol error.
pub(crate) const GO_AWAY_PROTOCOL_ERROR: u32 = 1;

/// The frame type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameType {
    /// Stream data; `length` payload bytes follow.
    Data,
    /// Stream window update and/or flags.
    WindowUpdate,
    /// Session keepalive.
    Ping,
    /// Session termination.
    GoAway,
}

/// A decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) ty: FrameType,
    pub(crate) flags: u16,
    pub(crate) stream_id: u32,
    pub(crate) length: u32,
}

/// A header that violates the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HeaderError {
    #[error("unsupported yamux version {0}")]
    Version(u8),
    #[error("invalid yamux frame type {0}")]
    Type(u8),
}

impl Header {
    pub(crate) fn new(ty: FrameType, flags: u16, stream_id: u32, length: u32) -> Self {
        Header {
            ty,
            flags,
            stream_id,
            length,
        }
    }

    pub(crate) fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = VERSION;
        b[1] = match self.ty {
            FrameType::Data => 0,
            FrameType::WindowUpdate => 1,
            FrameType::Ping => 2,
            FrameType::GoAway => 3,
        };
        b[2..4].copy_from_slice(&self.flags.to_be_bytes());
        b[4..8].copy_from_slice(&self.stream_id.to_be_bytes());
        b[8..12].copy_from_slice(&self.length.to_be_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8; HEADER_LEN]) -> Result<Self, HeaderError> {
        if b[0] != VERSION {
            return Err(HeaderError::Version(b[0]));
        }
        let ty = match b[1] {
            0 => FrameType::Data,
            1 => FrameType::WindowUpdate,
            2 => FrameType::Ping,
            3 => FrameType::GoAway,
            other => return Err(HeaderError::Type(other)),
        };
        Ok(Header {
            ty,
            flags: u16::from_be_bytes([b[2], b[3]]),
            stream_id: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            length: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_go_frpc_capture() {
        // frpc's first frame (frp-protocol.md §6): WindowUpdate, SYN, stream 1, 6 MiB - 256 KiB.
        let bytes = [0, 1, 0, 1, 0, 0, 0, 1, 0, 0x5c, 0, 0];
        let h = Header::decode(&bytes).unwrap();
        assert_eq!(
            h,
            Header::new(
                FrameType::WindowUpdate,
                SYN,
                1,
                6 * 1024 * 1024 - 256 * 1024
            )
        );
        assert_eq!(h.encode(), bytes);
        assert_eq!(Header::decode(&[1; 12]), Err(HeaderError::Version(1)));
        let mut bad = bytes;
        bad[1] = 4;
        assert_eq!(Header::decode(&bad), Err(HeaderError::Type(4)));
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_roundtrips(b in proptest::array::uniform12(any::<u8>())) {
            if let Ok(h) = Header::decode(&b) {
                prop_assert_eq!(h.encode(), b);
            }
        }
    }
}

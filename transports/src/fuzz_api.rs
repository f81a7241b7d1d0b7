//! Entry points for the fuzz targets of the `fuzzing` crate (`fuzz/` runs them under
//! libFuzzer): thin wrappers over crate-private decoders that have no public API of their
//! own. Hidden from the docs and not a stable API; nothing in frp-rs calls them.

use crate::mux::frame::{FrameType, Header};

/// A yamux frame header as plain numbers (see `mux::frame`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct YamuxHeader {
    /// Wire type byte: 0 data, 1 window update, 2 ping, 3 go away.
    pub ty: u8,
    /// Flag bits (SYN 1, ACK 2, FIN 4, RST 8; others are carried as is).
    pub flags: u16,
    /// Stream id.
    pub stream_id: u32,
    /// Payload length, window delta, ping id or GoAway code, depending on the type.
    pub length: u32,
}

/// Decodes 12 header bytes as the session reader does; `None` when the reader would end
/// the session with a protocol error (bad version or type).
pub fn yamux_decode_header(bytes: &[u8; 12]) -> Option<YamuxHeader> {
    let h = Header::decode(bytes).ok()?;
    let ty = match h.ty {
        FrameType::Data => 0,
        FrameType::WindowUpdate => 1,
        FrameType::Ping => 2,
        FrameType::GoAway => 3,
    };
    Some(YamuxHeader {
        ty,
        flags: h.flags,
        stream_id: h.stream_id,
        length: h.length,
    })
}

/// Encodes a header as the session writer does; `None` for a type byte above 3.
pub fn yamux_encode_header(h: YamuxHeader) -> Option<[u8; 12]> {
    let ty = match h.ty {
        0 => FrameType::Data,
        1 => FrameType::WindowUpdate,
        2 => FrameType::Ping,
        3 => FrameType::GoAway,
        _ => return None,
    };
    Some(Header::new(ty, h.flags, h.stream_id, h.length).encode())
}

//! Websocket frame headers (RFC 6455 §5.2), pure and total: parsing never panics and
//! never allocates from a length field.
//!
//! Limits: control frames carry at most 125 bytes and are never fragmented (RFC 6455
//! §5.5); data frames carry at most [`MAX_DATA_FRAME_LEN`] bytes. Payloads are not
//! buffered by the stream (they are copied to the reader as they arrive), so the limit
//! only exists to refuse absurd lengths early: Go frp never produces frames larger than
//! its 6 MiB yamux window.

use bytes::BufMut;

/// Continuation of a fragmented message.
pub const OP_CONTINUATION: u8 = 0x0;
/// Text frame. golang.org/x/net/websocket (frp 0.65) sends binary data in these.
pub const OP_TEXT: u8 = 0x1;
/// Binary frame (what we send).
pub const OP_BINARY: u8 = 0x2;
/// Connection close.
pub const OP_CLOSE: u8 = 0x8;
/// Ping.
pub const OP_PING: u8 = 0x9;
/// Pong.
pub const OP_PONG: u8 = 0xA;

/// Largest payload of a control frame.
pub const MAX_CONTROL_LEN: usize = 125;
/// Largest data frame payload we accept.
pub const MAX_DATA_FRAME_LEN: u64 = 64 * 1024 * 1024;
/// Largest encoded header: 2 bytes + 8-byte length + 4-byte mask.
pub const MAX_HEADER_LEN: usize = 14;

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Final fragment of a message.
    pub fin: bool,
    /// The opcode (one of the `OP_*` constants once validated).
    pub opcode: u8,
    /// The masking key (present on client-to-server frames).
    pub mask: Option<[u8; 4]>,
    /// Payload length.
    pub len: u64,
}

impl Header {
    /// Whether this is a control frame (close, ping, pong).
    pub fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }
}

/// Why a frame header is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// RSV bits set although no extension was negotiated.
    #[error("reserved bits set in websocket frame header")]
    ReservedBits,
    /// An opcode RFC 6455 does not define.
    #[error("unknown websocket opcode {0:#x}")]
    UnknownOpcode(u8),
    /// A control frame longer than 125 bytes or fragmented.
    #[error("invalid websocket control frame (length {0}, or fragmented)")]
    BadControl(u64),
    /// A data frame above [`MAX_DATA_FRAME_LEN`].
    #[error("websocket frame of {0} bytes exceeds the {MAX_DATA_FRAME_LEN}-byte limit")]
    TooLong(u64),
}

/// Decodes a frame header from the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, else the header and its encoded length.
pub fn decode_header(buf: &[u8]) -> Result<Option<(Header, usize)>, FrameError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(FrameError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0F;
    if !matches!(
        opcode,
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
    ) {
        return Err(FrameError::UnknownOpcode(opcode));
    }
    let masked = b1 & 0x80 != 0;
    let (len, mut pos) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let header = Header {
        fin,
        opcode,
        mask: None,
        len,
    };
    if header.is_control() {
        if !fin || len > MAX_CONTROL_LEN as u64 {
            return Err(FrameError::BadControl(len));
        }
    } else if len > MAX_DATA_FRAME_LEN {
        return Err(FrameError::TooLong(len));
    }
    let mask = if masked {
        match buf
            .get(pos..pos + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
        {
            Some(m) => {
                pos += 4;
                Some(m)
            }
            None => return Ok(None),
        }
    } else {
        None
    };
    Ok(Some((Header { mask, ..header }, pos)))
}

/// Appends the encoded `header` to `out` (minimal length encoding).
pub fn encode_header(header: &Header, out: &mut impl BufMut) {
    let b0 = (u8::from(header.fin) << 7) | (header.opcode & 0x0F);
    let mask_bit = if header.mask.is_some() { 0x80 } else { 0 };
    out.put_u8(b0);
    match header.len {
        n @ 0..=125 => out.put_u8(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            out.put_u8(mask_bit | 126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(mask_bit | 127);
            out.put_u64(n);
        }
    }
    if let Some(mask) = header.mask {
        out.put_slice(&mask);
    }
}

/// XORs `data` with `mask`, where `data` starts `offset` bytes into the payload.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut key = [0u8; 4];
    for (i, k) in key.iter_mut().enumerate() {
        *k = mask[(offset + i) % 4];
    }
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(h: &Header) -> Vec<u8> {
        let mut v = Vec::new();
        encode_header(h, &mut v);
        v
    }

    #[test]
    fn go_text_frame_from_capture() {
        // frp-protocol.md §12: Go frpc's first frame (fin, text, masked, 12 bytes).
        let mut frame = vec![0x81, 0x8C, 1, 2, 3, 4];
        let payload = hex::decode("0001000100000001005c0000").unwrap();
        let mut masked = payload.clone();
        apply_mask(&mut masked, [1, 2, 3, 4], 0);
        frame.extend_from_slice(&masked);
        let (h, n) = decode_header(&frame).unwrap().unwrap();
        assert_eq!(n, 6);
        assert_eq!(
            h,
            Header {
                fin: true,
                opcode: OP_TEXT,
                mask: Some([1, 2, 3, 4]),
                len: 12
            }
        );
        let mut body = frame[n..].to_vec();
        apply_mask(&mut body, [1, 2, 3, 4], 0);
        assert_eq!(body, payload);
    }

    #[test]
    fn absurd_lengths_are_refused() {
        let mut h = vec![0x82, 127];
        h.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(decode_header(&h), Err(FrameError::TooLong(u64::MAX)));
        let mut h = vec![0x82, 127];
        h.extend_from_slice(&(MAX_DATA_FRAME_LEN + 1).to_be_bytes());
        assert!(matches!(decode_header(&h), Err(FrameError::TooLong(_))));
        // A 126-byte ping and a fragmented close are invalid control frames.
        assert!(decode_header(&[0x89, 126, 0, 126]).is_err());
        assert!(decode_header(&[0x08, 0]).is_err());
        assert_eq!(decode_header(&[0xC2, 0]), Err(FrameError::ReservedBits));
        assert_eq!(decode_header(&[0x83, 0]), Err(FrameError::UnknownOpcode(3)));
    }

    #[test]
    fn partial_headers_need_more() {
        let full = encode(&Header {
            fin: true,
            opcode: OP_BINARY,
            mask: Some([9, 9, 9, 9]),
            len: 70_000,
        });
        assert_eq!(full.len(), MAX_HEADER_LEN);
        for cut in 0..full.len() {
            assert_eq!(decode_header(&full[..cut]), Ok(None), "cut at {cut}");
        }
    }

    proptest! {
        #[test]
        fn header_roundtrip(fin: bool, op in prop::sample::select(vec![0u8, 1, 2]),
                            mask: Option<[u8; 4]>, len in 0..=MAX_DATA_FRAME_LEN,
                            tail in prop::collection::vec(any::<u8>(), 0..4)) {
            let h = Header { fin, opcode: op, mask, len };
            let mut bytes = encode(&h);
            let n = bytes.len();
            bytes.extend_from_slice(&tail);
            prop_assert_eq!(decode_header(&bytes), Ok(Some((h, n))));
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..20)) {
            let _ = decode_header(&bytes);
        }

        #[test]
        fn mask_is_an_involution_at_any_offset(data in prop::collection::vec(any::<u8>(), 0..100),
                                               mask: [u8; 4], split in 0usize..100) {
            let split = split.min(data.len());
            let mut whole = data.clone();
            apply_mask(&mut whole, mask, 0);
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, mask, 0);
            apply_mask(b, mask, split);
            prop_assert_eq!(&whole, &pieces);
            for (i, (x, y)) in data.iter().zip(&whole).enumerate() {
                prop_assert_eq!(*x ^ mask[i % 4], *y);
            }
        }
    }
}

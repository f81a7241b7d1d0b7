//! `codec`: the frp message frame decoder (`type | i64 length | JSON`) on arbitrary bytes.

use bytes::BytesMut;

/// Decodes frames off `data` until the decoder needs more bytes or fails. Properties:
///
/// * decoding never panics and, while waiting for more, holds at most one partial frame;
/// * every decoded message encodes (when it fits the 10240-byte limit) and decodes back to
///   itself, and encoding is canonical: re-encoding the re-decoded message gives the same
///   bytes.
pub fn codec(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    loop {
        match control::decode(&mut buf) {
            Ok(Some(msg)) => {
                let mut again = BytesMut::new();
                if control::encode(&msg, &mut again).is_err() {
                    // Only an oversized body may fail to encode (the limit is on the
                    // encoded length, and Go's escaping can make a body longer).
                    continue;
                }
                let first = again.clone();
                let back = control::decode(&mut again)
                    .expect("re-decoding our own frame")
                    .expect("our own frame is complete");
                assert!(again.is_empty(), "re-decoding left bytes behind");
                assert_eq!(back, msg, "message changed in a round trip");
                let mut twice = BytesMut::new();
                control::encode(&back, &mut twice).expect("encoding a message again");
                assert_eq!(twice, first, "encoding is not canonical");
            }
            Ok(None) => {
                assert!(
                    buf.len() < control::MAX_FRAME_LEN,
                    "decoder waits for more with a complete frame's worth buffered"
                );
                break;
            }
            Err(_) => break,
        }
    }
}

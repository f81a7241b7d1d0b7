//! The frp message codec fed arbitrary bytes: decoding must never panic, never allocate past the
//! 10240-byte body limit, and every message it yields must encode and decode back to itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(msg)) = control::decode(&mut buf) {
        let mut again = BytesMut::new();
        if control::encode(&msg, &mut again).is_ok() {
            let back = control::decode(&mut again).expect("re-decode").expect("whole frame");
            assert_eq!(back, msg);
        }
    }
});

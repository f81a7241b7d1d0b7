//! libFuzzer entry for `fuzzing::yamux_frame` (properties documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::yamux_frame(data));

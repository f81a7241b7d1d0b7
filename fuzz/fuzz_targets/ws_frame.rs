//! libFuzzer entry for `fuzzing::ws_frame` (properties documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::ws_frame(data));

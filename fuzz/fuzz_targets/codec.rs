//! libFuzzer entry for `fuzzing::codec` (properties documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::codec(data));

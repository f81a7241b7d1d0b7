//! libFuzzer entry for `fuzzing::sniff` (properties documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::sniff(data));

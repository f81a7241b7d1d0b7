//! libFuzzer entry for `fuzzing::control_sequence` (properties documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::control_sequence(data));

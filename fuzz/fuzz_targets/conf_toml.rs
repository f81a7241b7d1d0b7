//! libFuzzer entry for `fuzzing::conf_toml` (properties documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::conf_toml(data));

//! libFuzzer entry for `fuzzing::kcp_fec` (properties documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::kcp_fec(data));

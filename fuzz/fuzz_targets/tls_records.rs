//! libFuzzer entry for `fuzzing::tls_records` (properties documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::tls_records(data));

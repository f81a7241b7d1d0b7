//! The bodies of frp-rs's fuzz targets, as plain functions over `&[u8]`.
//!
//! Each function feeds one byte format a peer (or, for the config targets, a config file)
//! can hand us to the real decoder and asserts the properties that must hold, panicking
//! when one does not. They are called from two places:
//!
//! * the cargo-fuzz targets in `fuzz/fuzz_targets/` (libFuzzer, see `fuzz/README.md`);
//! * `tests/corpus.rs`, which replays every file of `fuzz/corpus/<target>/` and
//!   `fuzz/regressions/<target>/` on stable Rust, so `cargo test --workspace` keeps every
//!   crash the fuzzer found fixed.
//!
//! # Targets
//!
//! * [`codec`]: the frp message frame decoder and its re-encode round trip.
//! * [`control_sequence`]: a real frps fed a login and arbitrary control traffic.
//! * [`conf_toml`], [`conf_template`]: config parsing (TOML, YAML, JSON, INI) and the
//!   Go-template renderer.
//! * [`yamux_frame`]: the yamux header codec and a yamux session fed as the remote peer.
//! * [`kcp_fec`]: kcp-go's FEC decoder and the KCP core on arbitrary datagrams.
//! * [`ws_frame`]: websocket frame headers, the upgrade handshakes and the frame reader.
//! * [`sniff`]: frps's first-bytes classifier.
//! * [`tls_records`]: our TLS 1.3 record layer, fed records sealed with the real keys.

mod codec_target;
mod conf_targets;
mod control_target;
mod kcp_target;
mod records;
mod rt;
mod sniff_target;
mod tls_records_target;
mod ws_target;
mod yamux_target;

pub use codec_target::codec;
pub use conf_targets::{conf_template, conf_toml};
pub use control_target::control_sequence;
pub use kcp_target::kcp_fec;
pub use sniff_target::sniff;
pub use tls_records_target::tls_records;
pub use ws_target::ws_frame;
pub use yamux_target::yamux_frame;

/// A target body.
pub type Target = fn(&[u8]);

/// Every target by name, as the directories under `fuzz/corpus/` are named.
pub const TARGETS: &[(&str, Target)] = &[
    ("codec", codec),
    ("control_sequence", control_sequence),
    ("conf_toml", conf_toml),
    ("conf_template", conf_template),
    ("yamux_frame", yamux_frame),
    ("kcp_fec", kcp_fec),
    ("ws_frame", ws_frame),
    ("sniff", sniff),
    ("tls_records", tls_records),
];

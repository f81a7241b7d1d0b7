//! Replays every fuzz corpus and regression input through its target on stable Rust, so
//! `cargo test --workspace` keeps each crash the fuzzer found fixed (`fuzz/README.md`).

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The input files of `fuzz/<kind>/<target>/`, sorted (none if the directory is absent).
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().is_none_or(|n| n != "README.md"))
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, run) = fuzzing::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no target {target}"));
    let corpus = inputs("corpus", target);
    assert!(!corpus.is_empty(), "fuzz/corpus/{target}/ has no seeds");
    for path in corpus.iter().chain(&inputs("regressions", target)) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        eprintln!("{target}: {}", path.display());
        run(&data);
    }
}

#[test]
fn codec() {
    replay("codec");
}

#[test]
fn control_sequence() {
    replay("control_sequence");
}

#[test]
fn conf_toml() {
    replay("conf_toml");
}

#[test]
fn conf_template() {
    replay("conf_template");
}

#[test]
fn yamux_frame() {
    replay("yamux_frame");
}

#[test]
fn kcp_fec() {
    replay("kcp_fec");
}

#[test]
fn ws_frame() {
    replay("ws_frame");
}

#[test]
fn sniff() {
    replay("sniff");
}

#[test]
fn tls_records() {
    replay("tls_records");
}

/// Every target has a test above.
#[test]
fn all_targets_listed() {
    let src = include_str!("corpus.rs");
    for (name, _) in fuzzing::TARGETS {
        assert!(src.contains(&format!("fn {name}()")), "no test for {name}");
    }
}

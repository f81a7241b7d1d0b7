#!/usr/bin/env bash
# The whole test suite: fetches the real frp 0.65.0 binaries for the interop tests, checks
# formatting and lints, builds both binaries and runs every test in the workspace, then checks
# and tests the benchmark's reference relays (bench/floor).
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-off build gains nothing from incremental state, which is several GB on disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
./scripts/fetch-frp.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins --locked
cargo test --workspace --locked
# The benchmark's reference relays (bench/floor, its own crate): the figures the suite quotes
# for them are only worth something if they move every byte intact.
floor=(--manifest-path bench/floor/Cargo.toml)
cargo fmt "${floor[@]}" -- --check
cargo clippy "${floor[@]}" --release --all-targets --locked --target-dir target/floor -- -D warnings
cargo test "${floor[@]}" --release --locked --target-dir target/floor

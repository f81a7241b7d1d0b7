#!/usr/bin/env bash
# The whole test suite: fetches the real frp 0.65.0 binaries for the interop tests, checks
# formatting and lints, builds both binaries and runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-off build gains nothing from incremental state, which is several GB on disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
./scripts/fetch-frp.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins --locked
cargo test --workspace --locked

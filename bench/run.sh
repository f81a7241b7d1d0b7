#!/usr/bin/env bash
# The benchmark suite (issue 5), one command: frp-rs, the real frp 0.65.0 and rathole 0.5.0 side
# by side on loopback, interleaved, several repeats, medians and spread. Writes its section of
# bench/RESULTS.md (between the suite markers) and the raw JSON to .cache/bench/. Not part of the
# test suite. About 45 minutes with the defaults on a 2-core machine (lossy runs included).
#
#   bench/run.sh                          # everything
#   bench/run.sh --repeats 1 --secs 3 --no-growth --only 'ours|frp default'   # a quick look
#   bench/run.sh --help                   # all options (bench/suite.py)
#
# Set-up it does: installs iperf3, wrk and nginx with apt-get when missing (as root), fetches and
# verifies frp 0.65.0 (scripts/fetch-frp.sh), installs rathole 0.5.0 into .cache/rathole-0.5.0
# (cargo install; without --locked, which fails on this toolchain), builds ours in release and
# the floor relays (bench/floor).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

missing=()
for tool in iperf3 wrk nginx; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "run.sh: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]/nginx/nginx-light}" >&2 \
      || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; }
  else
    echo "run.sh: missing ${missing[*]}; install them (Debian: apt-get install iperf3 wrk nginx)" >&2
    exit 2
  fi
fi

scripts/fetch-frp.sh >&2
rathole="$root/.cache/rathole-0.5.0/bin/rathole"
if [ ! -x "$rathole" ]; then
  echo "run.sh: installing rathole 0.5.0 into .cache/rathole-0.5.0" >&2
  cargo install rathole --version 0.5.0 --root "$root/.cache/rathole-0.5.0" >&2
fi
cargo build --release --bins >&2
# Reference relays and the AES cost for the bounds (bench/floor; its own crate, not in the workspace).
cargo build --release --manifest-path bench/floor/Cargo.toml --target-dir target/floor >&2
exec python3 "$root/bench/suite.py" "$@"

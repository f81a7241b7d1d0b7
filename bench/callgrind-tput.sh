#!/usr/bin/env bash
# User-space instructions per MB of one iperf3 stream through one side of the tunnel, counted by
# valgrind's callgrind: the bulk-transfer counterpart of bench/callgrind-ka.sh, repeatable where
# wall-clock CPU per GB swings ±10 % on this shared VM.
#
#   bench/callgrind-tput.sh [--keep DIR] BIN_DIR frps|frpc [MB]
#
# Starts an iperf3 server, frps and frpc from BIN_DIR (default config: TLS + tcpMux; one tcp
# proxy to iperf3), the chosen side under callgrind. After a 50 MB warm-up it zeroes the
# counters, sends MB megabytes (default 400) from the frps side to the frpc side, dumps, and
# prints instructions per MB. Only user space is counted. Under callgrind the side runs ~50×
# slower and so batches differently than at full speed; compare builds, not absolute figures,
# and expect a run now and then to read 10–20 % off (repeat it). `--keep DIR` keeps the output.
# Loopback only, ports picked by the OS; every process started is stopped.
set -euo pipefail
keep=""
if [ "${1:-}" = --keep ]; then keep=$2; shift 2; fi
dir=${1:?BIN_DIR}; side=${2:?frps or frpc}; mb=${3:-400}
case $side in frps | frpc) ;; *) echo "side must be frps or frpc" >&2; exit 2 ;; esac
. "$(dirname "$0")/lib/probe.sh"
probe_need callgrind-tput.sh valgrind callgrind_control iperf3 ss
dir=$(cd "$dir" && pwd)

sink=$(free_port); bind=$(free_port); remote=$(free_port)
probe_init
iperf3 -s -p "$sink" > /dev/null 2>&1 & pids+=($!)
probe_frp_configs "$bind" "$sink" "$remote" sink

vg=(valgrind --tool=callgrind "--callgrind-out-file=$w/cg.out")
if [ "$side" = frps ]; then "${vg[@]}" "$dir/frps" -c "$w/s.toml" > "$w/s.log" 2>&1 & else "$dir/frps" -c "$w/s.toml" > "$w/s.log" 2>&1 & fi
pids+=($!)
sleep 2
if [ "$side" = frpc ]; then "${vg[@]}" "$dir/frpc" -c "$w/c.toml" > "$w/c.log" 2>&1 & else "$dir/frpc" -c "$w/c.toml" > "$w/c.log" 2>&1 & fi
pids+=($!)
# Wait for the proxy's port without connecting to it (a connection would open a work stream).
probe_wait_port "$remote" 300 listen
sleep 2
iperf3 -c 127.0.0.1 -p "$remote" -n 50M > /dev/null
callgrind_control -z > /dev/null 2>&1
iperf3 -c 127.0.0.1 -p "$remote" -n "${mb}M" > "$w/iperf.txt"
callgrind_control -d > /dev/null 2>&1
sleep 0.5
instructions=$(cat "$w"/cg.out.* | awk '/^summary:/{s+=$2} END{print s+0}')
[ "$instructions" -gt 0 ] || { echo "callgrind-tput.sh: no counts" >&2; exit 1; }
echo "$side mb=$mb instructions=$instructions per_mb=$((instructions / mb))"
if [ -n "$keep" ]; then mkdir -p "$keep" && cp "$w"/cg.out.* "$keep"/; fi

#!/usr/bin/env bash
# User-space instructions per keep-alive request of one side of the tunnel, counted by
# valgrind's callgrind: repeatable where wall-clock rates swing ±10 % on this shared VM.
#
#   bench/callgrind-ka.sh [--keep DIR] BIN_DIR frps|frpc [CONNS] [SECS]
#
# Starts nginx (1 worker, a 128-byte file), frps and frpc from BIN_DIR (default config: TLS +
# tcpMux; one tcp proxy to nginx), the chosen side under callgrind. After a 2 s warm-up it zeroes
# the counters, runs `wrk -t 1 -c CONNS -d SECS` (defaults 16 and 4) through the tunnel, dumps,
# and prints requests, instructions and instructions per request. Only user space is counted
# (kernel work, the larger part of a request's cost, is not). The side under callgrind is ~50×
# slower, so it batches more requests per wake-up than at full speed: compare builds with the same
# CONNS, and read CONNS=1 (one request per wake-up) as the unbatched cost. `--keep DIR` keeps the
# callgrind output for `callgrind_annotate --auto=no --threshold=100 DIR/cg.out.1`.
# Loopback only, ports picked by the OS; every process started is stopped.
set -euo pipefail
keep=""
if [ "${1:-}" = --keep ]; then keep=$2; shift 2; fi
dir=${1:?BIN_DIR}; side=${2:?frps or frpc}; conns=${3:-16}; secs=${4:-4}
case $side in frps | frpc) ;; *) echo "side must be frps or frpc" >&2; exit 2 ;; esac
. "$(dirname "$0")/lib/probe.sh"
probe_need callgrind-ka.sh valgrind callgrind_control wrk nginx
dir=$(cd "$dir" && pwd)

web=$(free_port); bind=$(free_port); remote=$(free_port)
probe_init
probe_nginx "$web"
probe_frp_configs "$bind" "$web" "$remote" web

vg=(valgrind --tool=callgrind "--callgrind-out-file=$w/cg.out")
if [ "$side" = frps ]; then "${vg[@]}" "$dir/frps" -c "$w/s.toml" > "$w/s.log" 2>&1 & else "$dir/frps" -c "$w/s.toml" > "$w/s.log" 2>&1 & fi
pids+=($!)
sleep 2
if [ "$side" = frpc ]; then "${vg[@]}" "$dir/frpc" -c "$w/c.toml" > "$w/c.log" 2>&1 & else "$dir/frpc" -c "$w/c.toml" > "$w/c.log" 2>&1 & fi
pids+=($!)
probe_wait_port "$remote" 300
sleep 1
wrk -t 1 -c "$conns" -d 2s "http://127.0.0.1:$remote/128.bin" > /dev/null
callgrind_control -z > /dev/null 2>&1
wrk -t 1 -c "$conns" -d "${secs}s" "http://127.0.0.1:$remote/128.bin" > "$w/wrk.txt"
callgrind_control -d > /dev/null 2>&1
sleep 0.5
requests=$(awk '/requests in/{print $1}' "$w/wrk.txt")
instructions=$(cat "$w"/cg.out.* | awk '/^summary:/{s+=$2} END{print s+0}')
[ "${requests:-0}" -gt 0 ] || { echo "callgrind-ka.sh: wrk made no request" >&2; cat "$w/wrk.txt" >&2; exit 1; }
echo "$side conns=$conns requests=$requests instructions=$instructions per_request=$((instructions / requests))"
if [ -n "$keep" ]; then mkdir -p "$keep" && cp "$w"/cg.out.* "$keep"/; fi

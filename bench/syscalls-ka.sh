#!/usr/bin/env bash
# System calls per keep-alive request on each side of a tunnel, counted by the kernel's syscall
# tracepoints (`perf stat -e syscalls:sys_enter_*`): how close a relay is to the floor of one
# receive and one send on the user socket per request and side.
#
#   bench/syscalls-ka.sh BIN_DIR|rathole [CONNS] [SECS]
#
# Starts nginx (1 worker, a 128-byte file) and the tunnel: frps and frpc from BIN_DIR (default
# config: TLS + tcpMux; one tcp proxy to nginx), or rathole 0.5.0 from .cache/rathole-0.5.0
# (`bench/run.sh` installs it). Runs `wrk -t 2 -c CONNS` (default 64, as the suite) for SECS + 3
# seconds (default 3), counts each side's calls over SECS seconds in the middle, and prints them
# per request. Unlike callgrind this runs at full speed, so batching is as in the suite.
# Needs perf with access to tracepoints (root). Loopback only, ports picked by the OS; every
# process started is stopped.
set -euo pipefail
dir=${1:?BIN_DIR or rathole}; conns=${2:-64}; secs=${3:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib/probe.sh"
probe_need syscalls-ka.sh perf wrk nginx
events=syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_read,syscalls:sys_enter_readv,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex
perf stat -x, -e "$events" -- true > /dev/null 2>&1 \
  || { echo "syscalls-ka.sh: perf cannot read syscall tracepoints here (run as root)" >&2; exit 2; }

web=$(free_port); bind=$(free_port); remote=$(free_port)
probe_init
probe_nginx "$web"

if [ "$dir" = rathole ]; then
  bin="$root/.cache/rathole-0.5.0/bin/rathole"
  [ -x "$bin" ] || { echo "syscalls-ka.sh: no $bin (bench/run.sh installs it)" >&2; exit 2; }
  printf '[server]\nbind_addr = "127.0.0.1:%s"\ndefault_token = "bench"\n[server.services.web]\nbind_addr = "127.0.0.1:%s"\n' \
    "$bind" "$remote" > "$w/s.toml"
  printf '[client]\nremote_addr = "127.0.0.1:%s"\ndefault_token = "bench"\n[client.services.web]\nlocal_addr = "127.0.0.1:%s"\n' \
    "$bind" "$web" > "$w/c.toml"
  server=("$bin" -s "$w/s.toml"); client=("$bin" -c "$w/c.toml")
else
  dir=$(cd "$dir" && pwd)
  probe_frp_configs "$bind" "$web" "$remote" web
  server=("$dir/frps" -c "$w/s.toml"); client=("$dir/frpc" -c "$w/c.toml")
fi
"${server[@]}" > "$w/s.log" 2>&1 & spid=$!; pids+=($spid)
sleep 0.5
"${client[@]}" > "$w/c.log" 2>&1 & cpid=$!; pids+=($cpid)
probe_wait_port "$remote" 50
sleep 0.5

wrk -t 2 -c "$conns" -d "$((secs + 3))s" --latency "http://127.0.0.1:$remote/128.bin" > "$w/wrk.txt" &
wpid=$!; pids+=($wpid)
sleep 1.5
perf stat -x, -e "$events" -p "$spid" -o "$w/server.csv" -- sleep "$secs" > /dev/null 2>&1 &
perf stat -x, -e "$events" -p "$cpid" -o "$w/client.csv" -- sleep "$secs" > /dev/null 2>&1
wait "$wpid" 2>/dev/null || true
sleep 0.2
rps=$(awk '/Requests\/sec/{print $2}' "$w/wrk.txt")
[ -n "$rps" ] || { echo "syscalls-ka.sh: wrk made no request" >&2; cat "$w/wrk.txt" >&2; exit 1; }
echo "tunnel=$([ "$dir" = rathole ] && echo rathole || echo "$dir") conns=$conns req/s=$rps"
for side in server client; do
  awk -F, -v side="$side" -v rps="$rps" -v secs="$secs" '
    $1 ~ /^[0-9]+$/ { split($3, e, "sys_enter_"); if ($1 > 0) out = out sprintf(" %s=%.3f", e[2], $1 / secs / rps) }
    END { print side ": calls per request" out }' "$w/$side.csv"
done

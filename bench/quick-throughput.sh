#!/usr/bin/env bash
# First point of reference (issue 2): iperf3 goodput through one tcp proxy, ours against the real
# frp 0.65.0, same machine, same run, interleaved. Not the benchmark suite (that is issue 5).
# Usage: bench/quick-throughput.sh [seconds per run] [repeats]
# Needs iperf3 and a release build (cargo build --release --bins). Loopback only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-5}
reps=${2:-3}
"$root/scripts/fetch-frp.sh" >/dev/null
real="$root/.cache/frp-0.65.0"
ours="$root/target/release"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

iperf_port=$(free_port)
iperf3 -s -p "$iperf_port" -D --pidfile "$work/iperf.pid" >/dev/null
sleep 0.3
pids+=("$(cat "$work/iperf.pid")")

# variant name, extra frpc transport lines (frps keeps the same tcpMux setting)
run_one() { # impl variant mux tls
  local impl=$1 variant=$2 mux=$3 tls=$4 dir bind remote
  case $impl in real) dir=$real ;; ours) dir=$ours ;; esac
  bind=$(free_port); remote=$(free_port)
  cat > "$work/frps.toml" <<EOT
bindAddr = "127.0.0.1"
bindPort = $bind
transport.tcpMux = $mux
log.level = "warn"
EOT
  cat > "$work/frpc.toml" <<EOT
serverAddr = "127.0.0.1"
serverPort = $bind
transport.tcpMux = $mux
transport.tls.enable = $tls
log.level = "warn"
[[proxies]]
name = "iperf"
type = "tcp"
localPort = $iperf_port
remotePort = $remote
EOT
  "$dir/frps" -c "$work/frps.toml" >"$work/frps.log" 2>&1 & local sp=$!
  sleep 0.4
  "$dir/frpc" -c "$work/frpc.toml" >"$work/frpc.log" 2>&1 & local cp=$!
  for _ in $(seq 150); do
    if timeout 1 bash -c "echo > /dev/tcp/127.0.0.1/$remote" 2>/dev/null; then break; fi
    sleep 0.1
  done
  local gbps
  gbps=$(iperf3 -c 127.0.0.1 -p "$remote" -t "$secs" -J | python3 -c 'import json,sys; d=json.load(sys.stdin); e=d.get("error"); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9) if not e else "ERR:"+e.replace(" ","_"))')
  kill $cp $sp 2>/dev/null; wait $cp $sp 2>/dev/null || true
  echo "$variant $impl $gbps"
}

results="$work/results"
for r in $(seq "$reps"); do
  for v in "default(tls+mux):true:true" "mux,no-tls:true:false" "no-mux,no-tls:false:false"; do
    IFS=: read -r name mux tls <<<"$v"
    for impl in real ours; do run_one "$impl" "$name" "$mux" "$tls" >>"$results"; done
  done
done
echo "| variant | frp 0.65.0 Gbit/s (median) | frp-rs Gbit/s (median) | ratio |"
echo "|---|---|---|---|"
python3 - "$results" <<'EOT'
import sys, statistics, collections
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    v, impl, g = line.split()
    if g.startswith("ERR"):
        print(f"<!-- {v} {impl}: iperf3 {g} -->")
        continue
    d[(v, impl)].append(float(g))
for v in dict.fromkeys(k[0] for k in d):
    r, o = statistics.median(d[(v, "real")]), statistics.median(d[(v, "ours")])
    print(f"| {v} | {r:.2f} {d[(v,'real')]} | {o:.2f} {d[(v,'ours')]} | {o/r:.2f}x |")
EOT

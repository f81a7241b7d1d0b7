#!/usr/bin/env bash
# Quick point of reference (issues 2 and 5): iperf3 goodput through one tcp proxy, ours against
# the real frp 0.65.0 (and rathole 0.5.0's plaintext TCP when it is installed), same machine,
# same run, interleaved; with the CPU seconds that frps+frpc spent per GB moved.
#
# Usage: bench/quick-throughput.sh [seconds per run] [repeats]
# Environment:
#   VARIANTS  space-separated subset of: default mux-notls plain   (default: all three)
#             default = TLS + tcpMux (frp's defaults), mux-notls = tcpMux without TLS,
#             plain = neither
#   PARALLEL  space-separated iperf3 -P values (default: "1")
#   IMPLS     space-separated subset of: real ours rathole   (default: all that are present)
#   OURS_DIR  folder with our frps/frpc (default: target/release)
#   IPERF_ARGS extra iperf3 client arguments, e.g. "-b 2G" to compare CPU s/GB at a fixed rate
#   BASE_DIR  another build of ours to compare against, run as impl "base" (add it to IMPLS)
#             (any IMPLS entry of the form name=/folder runs the frps/frpc in that folder too)
# Needs iperf3, python3 and a release build (cargo build --release --bins). Loopback only.
# CPU s/GB = (utime+stime of frps and frpc over the iperf3 run, from /proc/<pid>/stat) divided
# by the GB iperf3 received.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-5}
reps=${2:-3}
variants=${VARIANTS:-"default mux-notls plain"}
parallel=${PARALLEL:-1}
"$root/scripts/fetch-frp.sh" >/dev/null
real="$root/.cache/frp-0.65.0"
ours=${OURS_DIR:-$root/target/release}
rathole="$root/.cache/rathole-0.5.0/bin/rathole"
if [ -z "${IMPLS:-}" ]; then
  impls="real ours"
  [ -x "$rathole" ] && impls="$impls rathole"
else
  impls=$IMPLS
fi
clk=$(getconf CLK_TCK)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Waits until something accepts on 127.0.0.1:$1 (at most ~15 s).
wait_port() { for _ in $(seq 150); do
  if timeout 1 bash -c "echo > /dev/tcp/127.0.0.1/$1" 2>/dev/null; then return 0; fi; sleep 0.1; done; return 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# utime+stime in clock ticks of the given pids
cpu_ticks() { local t=0 p v; for p in "$@"; do v=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null) || return 1; t=$((t + v)); done; echo $t; }

iperf_port=$(free_port)
iperf3 -s -p "$iperf_port" -D --pidfile "$work/iperf.pid" >/dev/null
sleep 0.3
pids+=("$(cat "$work/iperf.pid")")

start_frp() { # dir mux tls bind remote
  local dir=$1 mux=$2 tls=$3 bind=$4 remote=$5
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
  "$dir/frps" -c "$work/frps.toml" >"$work/frps.log" 2>&1 & sp=$!
  wait_port "$bind" || true
  "$dir/frpc" -c "$work/frpc.toml" >"$work/frpc.log" 2>&1 & cp=$!
}

start_rathole() { # bind remote
  local bind=$1 remote=$2
  cat > "$work/rs.toml" <<EOT
[server]
bind_addr = "127.0.0.1:$bind"
[server.services.iperf]
token = "bench"
bind_addr = "127.0.0.1:$remote"
EOT
  cat > "$work/rc.toml" <<EOT
[client]
remote_addr = "127.0.0.1:$bind"
[client.services.iperf]
token = "bench"
local_addr = "127.0.0.1:$iperf_port"
EOT
  "$rathole" -s "$work/rs.toml" >"$work/frps.log" 2>&1 & sp=$!
  wait_port "$bind" || true
  "$rathole" -c "$work/rc.toml" >"$work/frpc.log" 2>&1 & cp=$!
}

run_one() { # impl variant mux tls streams
  local impl=$1 variant=$2 mux=$3 tls=$4 streams=$5 bind remote sp cp
  bind=$(free_port); remote=$(free_port)
  case $impl in
    real) start_frp "$real" "$mux" "$tls" "$bind" "$remote" ;;
    ours) start_frp "$ours" "$mux" "$tls" "$bind" "$remote" ;;
    base) start_frp "${BASE_DIR:?BASE_DIR}" "$mux" "$tls" "$bind" "$remote" ;;
    *=*) start_frp "${impl#*=}" "$mux" "$tls" "$bind" "$remote" ;;
    rathole) start_rathole "$bind" "$remote" ;;
  esac
  wait_port "$remote" || true
  # rathole opens its data channel lazily; give it a moment after the port is up.
  [ "$impl" = rathole ] && sleep 0.5
  local t0 t1 out
  if ! t0=$(cpu_ticks $sp $cp); then
    echo "$variant P$streams ${impl%%=*} ERR:server_or_client_exited 0"
    { echo "== $impl exited early"; tail -n 5 "$work/frps.log"; tail -n 5 "$work/frpc.log"; } >&2
    kill $cp $sp 2>/dev/null; wait $cp $sp 2>/dev/null || true
    return
  fi
  out=$(iperf3 -c 127.0.0.1 -p "$remote" -t "$secs" -P "$streams" ${IPERF_ARGS:-} -J || true)
  t1=$(cpu_ticks $sp $cp 2>/dev/null || echo "$t0")
  kill $cp $sp 2>/dev/null; wait $cp $sp 2>/dev/null || true
  python3 -c '
import json, sys
d = json.loads(sys.argv[1]); e = d.get("error")
s = d.get("end", {}).get("sum_received", {})
if e or not s:
    print("ERR:" + (e or "no_result").replace(" ", "_"), 0); sys.exit()
gb = s["bytes"] / 1e9
print("%.3f %.3f" % (s["bits_per_second"] / 1e9, (int(sys.argv[2]) / int(sys.argv[3])) / gb))
' "$out" "$((t1 - t0))" "$clk" | sed "s|^|$variant P$streams ${impl%%=*} |"
}

results="$work/results"
for r in $(seq "$reps"); do
  for p in $parallel; do
    for v in $variants; do
      case $v in
        default) mux=true tls=true ;;
        mux-notls) mux=true tls=false ;;
        plain) mux=false tls=false ;;
        *) echo "unknown variant $v" >&2; exit 2 ;;
      esac
      for impl in $impls; do
        # rathole has one transport (plaintext TCP, one connection per visitor): run it once per repeat.
        if [ "$impl" = rathole ] && [ "$v" != "$(echo $variants | cut -d' ' -f1)" ]; then continue; fi
        run_one "$impl" "$v" "$mux" "$tls" "$p" >>"$results"
      done
    done
  done
done
[ -n "${KEEP_RAW:-}" ] && cp "$results" "$KEEP_RAW"
python3 - "$results" <<'EOT'
import sys, statistics, collections
g = collections.defaultdict(list); c = collections.defaultdict(list)
for line in open(sys.argv[1]):
    v, p, impl, gb, cpu = line.split()
    if gb.startswith("ERR"):
        print(f"<!-- {v} {p} {impl}: iperf3 {gb} -->")
        continue
    g[(v, p, impl)].append(float(gb)); c[(v, p, impl)].append(float(cpu))
print("| variant | streams | impl | Gbit/s median (runs) | CPU s/GB median | vs frp (Gbit/s) |")
print("|---|---|---|---|---|---|")
for (v, p, impl) in sorted(g, key=lambda k: (k[1], k[0], k[2])):
    m = statistics.median(g[(v, p, impl)])
    ref = g.get((v, p, "real"))
    ratio = f"{m / statistics.median(ref):.2f}x" if ref and impl != "real" else ""
    runs = ", ".join(f"{x:.2f}" for x in g[(v, p, impl)])
    name = {"rathole": "rathole (plain TCP)", "real": "frp 0.65.0", "ours": "frp-rs", "base": "frp-rs (BASE_DIR)"}.get(impl, impl)
    vv = "-" if impl == "rathole" else v
    print(f"| {vv} | {p[1:]} | {name} | {m:.2f} ({runs}) | {statistics.median(c[(v, p, impl)]):.2f} | {ratio} |")
EOT

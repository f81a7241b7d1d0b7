#!/usr/bin/env bash
# Loopback throughput of the UDP transports (issue 5): one iperf3 TCP stream through one tcp
# proxy whose frpc↔frps link is QUIC or KCP, ours against the real frp 0.65.0, same run,
# interleaved within each repeat; medians and ratios. Also CPU seconds per GB moved, from
# utime+stime (/proc/<pid>/stat) of frps+frpc over the iperf3 run only.
#
# Usage: bench/transport-throughput.sh [seconds per run] [repeats] [variants...]
#   variants: quic kcp kcp-fast direct (default: direct quic kcp kcp-fast)
#   quic      frpc transport.protocol = "quic", frps quicBindPort; all else default (TLS on)
#   kcp       transport.protocol = "kcp", frps kcpBindPort; default tuning (compat for ours)
#   kcp-fast  as kcp; ours with transport.kcp.tuning = "fast" on both ends (frp: plain kcp)
#   direct    iperf3 straight to its server (no proxy), for scale
# Env: OURS_DIR (our binaries; default target/release), IPERF_LEN (iperf3 -l, default iperf3's 128 KiB), KEEP=1 keeps the work dir (logs).
# Needs iperf3 and a release build (cargo build --release -p frps -p frpc). Loopback only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-5}
reps=${2:-3}
shift $(( $# > 2 ? 2 : $# )) || true
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(direct quic kcp kcp-fast)
"$root/scripts/fetch-frp.sh" >/dev/null
real="$root/.cache/frp-0.65.0"
ours=${OURS_DIR:-$root/target/release}
work=$(mktemp -d)
pids=()
cleanup() {
  # run_one runs in a subshell: it records its pids in $work/pids.
  for p in "${pids[@]:-}" $(cat "$work/pids" 2>/dev/null); do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  if [ "${KEEP:-0}" = 1 ]; then echo "work dir: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
hz=$(getconf CLK_TCK)
len_arg=()
[ -n "${IPERF_LEN:-}" ] && len_arg=(-l "$IPERF_LEN")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
free_udp_port() { python3 -c 'import socket; s=socket.socket(type=socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# utime+stime in clock ticks of the given pids (0 for a pid that is gone).
cpu_ticks() { local t=0 p f; for p in "$@"; do f=$(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null || true)
  [ -n "$f" ] && t=$((t + $(awk '{print $12 + $13}' <<<"$f"))); done; echo $t; }

iperf_port=$(free_port)
iperf3 -s -p "$iperf_port" -D --pidfile "$work/iperf.pid" >/dev/null
sleep 0.3
pids+=("$(cat "$work/iperf.pid")")

# Prints "gbit bytes" of one iperf3 run to 127.0.0.1:$1, or "ERR:<reason> 0".
iperf_run() {
  iperf3 -c 127.0.0.1 -p "$1" -t "$secs" "${len_arg[@]}" -J 2>/dev/null | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except Exception as e:
    print("ERR:no_json 0"); sys.exit()
e = d.get("error")
if e:
    print("ERR:" + e.replace(" ", "_") + " 0")
else:
    r = d["end"]["sum_received"]
    print("%.3f %d" % (r["bits_per_second"] / 1e9, r["bytes"]))'
}

run_one() { # impl variant
  local impl=$1 variant=$2 dir proto bindkey tuning="" port remote sp cp
  if [ "$variant" = direct ]; then
    [ "$impl" = ours ] && return 0
    read -r gbps bytes < <(iperf_run "$iperf_port")
    echo "$variant direct $gbps 0"
    return 0
  fi
  case $impl in real) dir=$real ;; ours) dir=$ours ;; esac
  case $variant in
    quic) proto=quic; bindkey=quicBindPort ;;
    kcp) proto=kcp; bindkey=kcpBindPort ;;
    kcp-fast) proto=kcp; bindkey=kcpBindPort
      [ "$impl" = ours ] && tuning='transport.kcp.tuning = "fast"' ;;
  esac
  local bind; bind=$(free_port); port=$(free_udp_port); remote=$(free_port)
  cat > "$work/frps.toml" <<EOT
bindAddr = "127.0.0.1"
bindPort = $bind
$bindkey = $port
log.level = "warn"
$tuning
EOT
  cat > "$work/frpc.toml" <<EOT
serverAddr = "127.0.0.1"
serverPort = $port
transport.protocol = "$proto"
log.level = "warn"
$tuning
[[proxies]]
name = "iperf"
type = "tcp"
localPort = $iperf_port
remotePort = $remote
EOT
  "$dir/frps" -c "$work/frps.toml" >"$work/frps-$impl-$variant.log" 2>&1 & sp=$!
  echo $sp >>"$work/pids"
  sleep 0.4
  "$dir/frpc" -c "$work/frpc.toml" >"$work/frpc-$impl-$variant.log" 2>&1 & cp=$!
  echo $cp >>"$work/pids"
  for _ in $(seq 150); do
    if timeout 1 bash -c "echo > /dev/tcp/127.0.0.1/$remote" 2>/dev/null; then break; fi
    sleep 0.1
  done
  sleep 0.3
  local t0 t1 gbps bytes cpu
  t0=$(cpu_ticks $sp $cp)
  read -r gbps bytes < <(iperf_run "$remote")
  t1=$(cpu_ticks $sp $cp)
  kill $cp $sp 2>/dev/null; wait $cp $sp 2>/dev/null || true
  cpu=$(python3 -c "print('%.3f' % (($t1 - $t0) / $hz))")
  echo "$variant $impl $gbps $bytes $cpu"
}

results="$work/results"
: > "$results"
for r in $(seq "$reps"); do
  for v in "${variants[@]}"; do
    for impl in real ours; do
      line=$(run_one "$impl" "$v")
      [ -n "$line" ] && { echo "$line" >>"$results"; echo "# rep $r: $line" >&2; }
    done
  done
done

echo "## transport throughput on loopback ($(date -u '+%Y-%m-%d %H:%M UTC'), ${secs}s x $reps, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| variant | frp 0.65.0 Gbit/s median (runs) | frp-rs Gbit/s median (runs) | ratio | frp CPU s/GB | frp-rs CPU s/GB |"
echo "|---|---|---|---|---|---|"
python3 - "$results" <<'EOT'
import sys, statistics, collections
g = collections.defaultdict(list)
c = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split()
    v, impl, gb = f[0], f[1], f[2]
    if gb.startswith("ERR"):
        print(f"<!-- {v} {impl}: iperf3 {gb} -->")
        continue
    g[(v, impl)].append(float(gb))
    if impl != "direct" and int(f[3]) > 0:
        c[(v, impl)].append(float(f[4]) / (int(f[3]) / 1e9))
med = lambda xs: statistics.median(xs) if xs else float("nan")
for v in dict.fromkeys(k[0] for k in g):
    if (v, "direct") in g:
        print(f"| {v} | {med(g[(v,'direct')]):.2f} {g[(v,'direct')]} | | | | |")
        continue
    r, o = med(g[(v, "real")]), med(g[(v, "ours")])
    ratio = o / r if r == r and r > 0 else float("nan")
    print(f"| {v} | {r:.2f} {g[(v,'real')]} | {o:.2f} {g[(v,'ours')]} | {ratio:.2f}x "
          f"| {med(c[(v,'real')]):.2f} | {med(c[(v,'ours')]):.2f} |")
EOT

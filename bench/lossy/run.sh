#!/usr/bin/env bash
# Lossy-link benchmark (issue 3): iperf3 goodput through one tcp proxy over a path with added
# delay and random loss, for each frpc<->frps transport, frp 0.65.0 and frp-rs side by side
# (interleaved in the same run); then the round-trip latency each transport adds, on loopback
# and over the delayed path. Not part of the test suite. Needs root (namespaces, TUN devices).
# How it works and its limits: bench/lossy/README.md.
#
#   sudo bench/lossy/run.sh                      # full run, 10-20 minutes
#   SECS=5 REPS=1 ONLY='tcp' bench/lossy/run.sh  # a quick subset
#
# Knobs (environment): SECS (iperf3 seconds, 10), REPS (repeats, 3), LOSSES ("0 1 3", percent),
# DELAY_MS (added one-way delay frps->frpc, 30), RDELAY_MS (frpc->frps, 0), RLOSS (1 = the loss
# applies frpc->frps too, 0 = data direction only; default 0), ONLY (extended regex on labels),
# LAT_N (loopback ping-pongs, 200), PATH_LAT_N (ping-pongs over the path, 30),
# BUILD (1 = cargo build --release --bins first; built anyway when the binaries are missing),
# IMPAIR_PRIO (a command prefix for the link program, e.g. "chrt -f 10" or "nice -n -5"; none),
# LOG_LEVEL (frps/frpc log.level, warn; the logs of every failed measurement are kept in the raw
# data folder, under failures/),
# OUT (markdown result file; default /tmp/frp-lossy-<date>.md).
set -euo pipefail

# ---------------------------------------------------------------------------------------------
# Variant table: one row per tunnel measured, in this order, interleaved within each repeat.
#   label | impl | protocol | extra frps.toml lines | extra frpc.toml lines
# impl: "frp" (the real frp 0.65.0 in .cache/frp-0.65.0) or "ours" (target/release).
# protocol: tcp, quic or kcp (frps gets kcpBindPort = bindPort or quicBindPort accordingly).
# Extra lines: top-level TOML keys, several separated by ';'. Everything else is default
# (TLS on, tcpMux on, as frp). A row whose binaries refuse the config or the protocol shows the
# error in the table and the run goes on.
# The keys of our extras below are placeholders until the transports land: adjust them here.
# ---------------------------------------------------------------------------------------------
VARIANTS=(
  "frp tcp               | frp  | tcp  | | "
  "ours tcp              | ours | tcp  | | "
  "frp quic              | frp  | quic | | "
  "ours quic (bbr)       | ours | quic | transport.quic.congestion = \"bbr\" | transport.quic.congestion = \"bbr\""
  "ours quic (cubic)     | ours | quic | transport.quic.congestion = \"cubic\" | transport.quic.congestion = \"cubic\""
  "frp kcp               | frp  | kcp  | | "
  "ours kcp (frp tuning) | ours | kcp  | transport.kcp.tuning = \"compat\" | transport.kcp.tuning = \"compat\""
  "ours kcp (fast)       | ours | kcp  | transport.kcp.tuning = \"fast\" | transport.kcp.tuning = \"fast\""
)

SECS=${SECS:-10}
REPS=${REPS:-3}
LOSSES=${LOSSES:-"0 1 3"}
DELAY_MS=${DELAY_MS:-30}
RDELAY_MS=${RDELAY_MS:-0}
RLOSS=${RLOSS:-0}
ONLY=${ONLY:-}
LAT_N=${LAT_N:-200}
PATH_LAT_N=${PATH_LAT_N:-30}
BUILD=${BUILD:-0}
IMPAIR_PRIO=${IMPAIR_PRIO:-}
LOG_LEVEL=${LOG_LEVEL:-warn}
OUT=${OUT:-/tmp/frp-lossy-$(date -u +%Y%m%dT%H%M%SZ).md}
UP_TIMEOUT=20 # seconds for a tunnel to come up (login + proxy registered)

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/lossy"
started=$(date -u '+%Y-%m-%d %H:%M UTC')
cmdline="bench/lossy/run.sh${*:+ $*}"

[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (network namespaces, TUN devices)" >&2; exit 1; }
for t in ip ss iperf3 python3 timeout cargo; do
  command -v "$t" >/dev/null || { echo "run.sh: $t not found" >&2; exit 1; }
done
[ -c /dev/net/tun ] || { echo "run.sh: /dev/net/tun missing" >&2; exit 1; }

# --- processes and namespaces we own; everything is torn down on exit -------------------------
NS_S="frplossy-s-$$" # frps, iperf3 client, ping-pong client
NS_C="frplossy-c-$$" # frpc, iperf3 server, echo server
NS_L="frplossy-l-$$" # loopback-only namespace for the latency-on-loopback phase
work=$(mktemp -d /tmp/frp-lossy.XXXXXX)
declare -A live=() # pids of our background processes that have not been reaped yet
impair_pid=

cleanup() {
  set +e
  [ -n "$impair_pid" ] && kill "$impair_pid" 2>/dev/null
  for p in "${!live[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.3
  for ns in "$NS_S" "$NS_C" "$NS_L"; do
    # Anything still running inside our namespaces was started by this script.
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bg() { # bg NS LOGFILE CMD... : start CMD in namespace NS, remember its pid in $bg_pid
  local ns=$1 log=$2
  shift 2
  ip netns exec "$ns" "$@" >"$log" 2>&1 &
  bg_pid=$!
  live[$bg_pid]=1
}
stop() { # PID...: terminate and reap
  local p
  kill "$@" 2>/dev/null || true
  for p in "$@"; do
    wait "$p" 2>/dev/null || true
    unset "live[$p]"
  done
}
listening() { ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q .; }
wait_listen() { # NS PORT SECONDS
  local i
  for i in $(seq $(($3 * 10))); do listening "$1" "$2" && return 0; sleep 0.1; done
  return 1
}
trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; printf %s "${s%"${s##*[![:space:]]}"}"; }

# --- binaries ----------------------------------------------------------------------------------
"$root/scripts/fetch-frp.sh" >/dev/null
FRP_DIR="$root/.cache/frp-0.65.0"
OURS_DIR="$root/target/release"
if [ "$BUILD" = 1 ] || [ ! -x "$OURS_DIR/frps" ] || [ ! -x "$OURS_DIR/frpc" ]; then
  (cd "$root" && cargo build --release --bins)
fi
IMPAIR_TARGET="$root/target/lossy-impair"
(cargo build --quiet --release --offline --manifest-path "$here/impair/Cargo.toml" \
  --target-dir "$IMPAIR_TARGET" 2>/dev/null ||
  cargo build --quiet --release --manifest-path "$here/impair/Cargo.toml" --target-dir "$IMPAIR_TARGET")
IMPAIR="$IMPAIR_TARGET/release/impair"
PINGPONG="$here/pingpong.py"

# --- namespaces: S and C joined by two TUN devices that `impair` bridges ------------------------
S_ADDR=10.201.0.1
C_ADDR=10.201.0.2
for ns in "$NS_S" "$NS_C" "$NS_L"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
for ns in "$NS_S" "$NS_C"; do
  ip netns exec "$ns" ip tuntap add dev tl0 mode tun
  ip -n "$ns" link set tl0 mtu 1500 txqueuelen 1000 up
done
ip -n "$NS_S" addr add "$S_ADDR" peer "$C_ADDR" dev tl0
ip -n "$NS_C" addr add "$C_ADDR" peer "$S_ADDR" dev tl0

start_impair() { # LOSS_PCT DELAY_MS RDELAY_MS : (re)start the link with these settings
  local loss=$1 rloss=0
  [ "$RLOSS" = 1 ] && rloss=$loss
  [ -n "$impair_pid" ] && stop "$impair_pid"
  echo "== link: S->C delay $2 ms loss $loss %, C->S delay $3 ms loss $rloss %" >>"$work/impair.log"
  $IMPAIR_PRIO "$IMPAIR" --a "$NS_S:tl0" --b "$NS_C:tl0" --ab "$2:$loss" --ba "$3:$rloss" \
    2>>"$work/impair.log" &
  impair_pid=$!
  sleep 0.3
  kill -0 "$impair_pid" 2>/dev/null || { cat "$work/impair.log" >&2; exit 1; }
}

# --- one tunnel ----------------------------------------------------------------------------------
port_seq=20000
tunnel_pids=()
remote=
tunnel_err=
# start_tunnel MODE IMPL PROTO SX CX LOCAL_PORT: MODE "path" (frps in S, frpc in C, over the
# link) or "lo" (both in L, on 127.0.0.1). On success sets $remote (the proxy's port, in frps's
# namespace) and returns 0; otherwise sets $tunnel_err and returns 1 with nothing left running.
start_tunnel() {
  local mode=$1 impl=$2 proto=$3 sx=$4 cx=$5 lport=$6 dir sns cns saddr bind sport extra=
  tunnel_err=
  case $impl in
    frp) dir=$FRP_DIR ;;
    ours) dir=$OURS_DIR ;;
    *) tunnel_err="unknown impl $impl"; return 1 ;;
  esac
  if [ "$mode" = path ]; then sns=$NS_S cns=$NS_C saddr=$S_ADDR; else sns=$NS_L cns=$NS_L saddr=127.0.0.1; fi
  # Fresh ports for every tunnel, so no TIME_WAIT or lingering UDP socket is ever in the way.
  port_seq=$((port_seq + 3))
  bind=$port_seq remote=$((port_seq + 1)) sport=$port_seq
  case $proto in
    tcp) ;;
    kcp) extra="kcpBindPort = $bind" ;;
    quic) sport=$((port_seq + 2)) extra="quicBindPort = $sport" ;;
    *) tunnel_err="unknown protocol $proto"; return 1 ;;
  esac
  {
    echo 'bindAddr = "0.0.0.0"'
    echo "bindPort = $bind"
    echo "$extra"
    echo "log.level = \"$LOG_LEVEL\""
    tr ';' '\n' <<<"$sx"
  } >"$work/frps.toml"
  {
    echo "serverAddr = \"$saddr\""
    echo "serverPort = $sport"
    echo 'loginFailExit = true'
    echo "log.level = \"$LOG_LEVEL\""
    echo "transport.protocol = \"$proto\""
    tr ';' '\n' <<<"$cx"
    printf '[[proxies]]\nname = "bench"\ntype = "tcp"\nlocalIP = "127.0.0.1"\n'
    printf 'localPort = %s\nremotePort = %s\n' "$lport" "$remote"
  } >"$work/frpc.toml"
  bg "$sns" "$work/frps.log" "$dir/frps" -c "$work/frps.toml"
  local sp=$bg_pid cp i
  wait_listen "$sns" "$bind" 5 || true
  bg "$cns" "$work/frpc.log" "$dir/frpc" -c "$work/frpc.toml"
  cp=$bg_pid
  tunnel_pids=("$sp" "$cp")
  for i in $(seq $((UP_TIMEOUT * 10))); do
    listening "$sns" "$remote" && return 0
    if ! kill -0 "$sp" 2>/dev/null || ! kill -0 "$cp" 2>/dev/null; then break; fi
    sleep 0.1
  done
  stop_tunnel
  tunnel_err=$( (grep -ihE 'error|fail|unknown|not supported|unsupported|panic' \
    "$work/frpc.log" "$work/frps.log" || tail -n 1 "$work/frpc.log") | head -n 1 |
    sed -E -e 's/\x1b\[[0-9;]*m//g' -e "s#$work/##g" | cut -c1-160 | tr '|\t' '/ ')
  [ -n "$tunnel_err" ] || tunnel_err="proxy not up after ${UP_TIMEOUT}s"
  return 1
}
stop_tunnel() {
  [ ${#tunnel_pids[@]} -eq 0 ] || stop "${tunnel_pids[@]}"
  tunnel_pids=()
}

# --- measurements: each prints one value (number, or ERR:reason) -----------------------------------
# goodput HOST PORT: one iperf3 run (client in S, server in C), Mbit/s at the receiver.
goodput() {
  bg "$NS_C" "$work/iperf3s.log" iperf3 -s -p 5201
  local ip=$bg_pid out d0 d1
  wait_listen "$NS_C" 5201 5 || true
  d0=$(udp_rcvbuf_errors "$NS_C")
  out=$(ip netns exec "$NS_S" timeout $((SECS + 40)) iperf3 -c "$1" -p "$2" -t "$SECS" -J \
    --connect-timeout 10000 2>/dev/null || true)
  d1=$(udp_rcvbuf_errors "$NS_C")
  stop "$ip"
  local v
  v=$(goodput_of <<<"$out")
  case $v in
    ERR*) echo "$v" ;;
    *) echo "$v udp_rcvbuf_drops=$((d1 - d0))" ;;
  esac
}
# UDP datagrams the kernel dropped in namespace NS because a socket's receive buffer was full.
udp_rcvbuf_errors() {
  ip netns exec "$1" awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) c[$i] = i; h = 1 } else print $c["RcvbufErrors"] }' /proc/net/snmp
}
goodput_of() { # iperf3 -J output on stdin -> Mbit/s at the receiver, or ERR:reason
  python3 -c '
import json, sys
try:
    d = json.loads(sys.stdin.read())
except ValueError:
    print("ERR:iperf3 gave no result"); sys.exit()
e = d.get("error")
r = d.get("end", {}).get("sum_received", {}).get("bits_per_second")
print("%.1f" % (r / 1e6) if r and not e else "ERR:iperf3: " + (e or "no result"))'
}
# pingpong NS N HOST PORT: median and p90 round trip in microseconds.
pingpong() { ip netns exec "$1" timeout 120 python3 "$PINGPONG" ping "$3" "$4" "$2" || echo "ERR:timeout"; }

# measure CMD ARGS...: runs a measurement into $value. In the background with `wait`, so that a
# TERM or INT interrupts it at once (bash runs traps only between foreground commands).
measure() {
  "$@" >"$work/value" 2>>"$work/measure.log" &
  local m=$!
  live[$m]=1
  wait "$m" || true
  unset "live[$m]"
  value=$(head -n 1 "$work/value")
  [ -n "$value" ] || value="ERR:no output from $1"
}

results="$work/results.tsv" # phase <TAB> label <TAB> value
record() {
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$results"
  printf '  %-12s %-24s %s\n' "$1" "$2" "$3"
}

selected=()
for row in "${VARIANTS[@]}"; do
  IFS='|' read -r label _ <<<"$row"
  label=$(trim "$label")
  if [ -z "$ONLY" ] || grep -qE -- "$ONLY" <<<"$label"; then selected+=("$row"); fi
done
[ ${#selected[@]} -gt 0 ] || { echo "run.sh: no variant matches ONLY=$ONLY" >&2; exit 1; }
declare -A broken # label -> why its tunnel could not come up on the first try
first_pass=1

# run_variant PHASE MODE ROW LOCAL_PORT MEASURE ARGS...: bring the tunnel up, run
# "MEASURE ARGS... 127.0.0.1 $remote", record the value, tear the tunnel down.
run_variant() {
  local phase=$1 mode=$2 row=$3 lport=$4 label impl proto sx cx
  shift 4
  IFS='|' read -r label impl proto sx cx <<<"$row"
  label=$(trim "$label") impl=$(trim "$impl") proto=$(trim "$proto") sx=$(trim "$sx") cx=$(trim "$cx")
  if [ -n "${broken[$label]:-}" ]; then
    record "$phase" "$label" "ERR:${broken[$label]}"
    return
  fi
  if ! start_tunnel "$mode" "$impl" "$proto" "$sx" "$cx" "$lport"; then
    # A tunnel that does not come up on its first, clean try (config refused, protocol not
    # implemented) will not later either: skip it from now on instead of waiting each time.
    [ "$first_pass" = 1 ] && broken[$label]=$tunnel_err
    value="ERR:$tunnel_err"
    record "$phase" "$label" "$value"
    keep_failure_logs "$phase" "$label" frps.log frpc.log
    return
  fi
  measure "$@" 127.0.0.1 "$remote"
  record "$phase" "$label" "$value"
  stop_tunnel
  if [ "$1" = goodput ]; then
    keep_failure_logs "$phase" "$label" frps.log frpc.log iperf3s.log
  else
    keep_failure_logs "$phase" "$label" frps.log frpc.log
  fi
}

# keep_failure_logs PHASE LABEL LOG...: when the value just recorded is a failure, copies the
# logs named (those that exist under $work) to $work/failures/N-PHASE-LABEL/, for the report's
# raw data folder.
fail_seq=0
keep_failure_logs() {
  local phase=$1 label=$2 d f
  shift 2
  case $value in ERR*) ;; *) return 0 ;; esac
  fail_seq=$((fail_seq + 1))
  d="$work/failures/$fail_seq-$phase-$(tr -c 'A-Za-z0-9._-' '_' <<<"$label")"
  mkdir -p "$d"
  printf '%s\n' "$value" >"$d/value"
  for f in "$@"; do [ ! -f "$work/$f" ] || cp "$work/$f" "$d/"; done
}

# --- environment record ------------------------------------------------------------------------
{
  echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "kernel=$(uname -r)"
  echo "frp=$("$FRP_DIR/frps" -v) (frps sha256 $(sha256sum "$FRP_DIR/frps" | cut -c1-12))"
  echo "ours=$("$OURS_DIR/frps" -v 2>&1 | head -n 1), git $(git -C "$root" rev-parse --short HEAD 2>/dev/null)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes'), built $(date -u -r "$OURS_DIR/frps" '+%Y-%m-%d %H:%M UTC')"
  echo "iperf3=$(iperf3 --version | head -n 1)"
  echo "load.start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "buffers=tcp_rmem [$(ip netns exec "$NS_S" sysctl -n net.ipv4.tcp_rmem | tr '\t' ' ')], tcp_wmem [$(ip netns exec "$NS_S" sysctl -n net.ipv4.tcp_wmem | tr '\t' ' ')], core.rmem_max $(ip netns exec "$NS_S" sysctl -n net.core.rmem_max), core.wmem_max $(ip netns exec "$NS_S" sysctl -n net.core.wmem_max)"
  echo "cc.S=$(ip netns exec "$NS_S" sysctl -n net.ipv4.tcp_congestion_control)"
  echo "cc.C=$(ip netns exec "$NS_C" sysctl -n net.ipv4.tcp_congestion_control)"
  echo "date=$started"
  echo "command=$cmdline"
  echo "params=SECS=$SECS REPS=$REPS LOSSES=\"$LOSSES\" DELAY_MS=$DELAY_MS RDELAY_MS=$RDELAY_MS RLOSS=$RLOSS${ONLY:+ ONLY='$ONLY'}${IMPAIR_PRIO:+ IMPAIR_PRIO='$IMPAIR_PRIO'}"
  echo "param.losses=$LOSSES"
  echo "param.delay=$DELAY_MS"
  echo "param.rdelay=$RDELAY_MS"
  echo "param.rloss=$RLOSS"
} >"$work/meta"
cat "$work/meta"
started_s=$(date +%s)

# --- phase 1: what the link itself forwards (no delay, no loss, no proxy) -----------------------
echo "== link capacity: direct TCP through impair, no delay, no loss"
start_impair 0 0 0
for r in $(seq "$REPS"); do
  measure goodput "$C_ADDR" 5201
  record cap "direct (no proxy)" "$value"
done

# --- phase 2: goodput at each loss rate, all variants interleaved within each repeat ------------
for loss in $LOSSES; do
  echo "== goodput: ${DELAY_MS} ms, ${loss} % loss"
  start_impair "$loss" "$DELAY_MS" "$RDELAY_MS"
  for r in $(seq "$REPS"); do
    measure goodput "$C_ADDR" 5201
    record "gp@$loss" "direct (no proxy)" "$value"
    keep_failure_logs "gp@$loss" "direct (no proxy)" iperf3s.log
    for row in "${selected[@]}"; do run_variant "gp@$loss" path "$row" 5201 goodput; done
    first_pass=0
  done
done

# --- phase 3: round trip over the delayed path (no loss) ----------------------------------------
echo "== ping-pong over the ${DELAY_MS} ms path, no loss"
start_impair 0 "$DELAY_MS" "$RDELAY_MS"
bg "$NS_C" "$work/echo-c.log" python3 "$PINGPONG" serve 5300 0.0.0.0
wait_listen "$NS_C" 5300 5 || true
measure pingpong "$NS_S" "$PATH_LAT_N" "$C_ADDR" 5300
record latpath "direct (no proxy)" "$value"
for row in "${selected[@]}"; do
  run_variant latpath path "$row" 5300 pingpong "$NS_S" "$PATH_LAT_N"
done
measure pingpong "$NS_S" "$PATH_LAT_N" "$C_ADDR" 5300
record latpath "direct (no proxy)" "$value"

# --- phase 4: round trip on loopback (frps and frpc side by side, no link) -----------------------
echo "== ping-pong on loopback"
bg "$NS_L" "$work/echo-l.log" python3 "$PINGPONG" serve 5300
wait_listen "$NS_L" 5300 5 || true
measure pingpong "$NS_L" "$LAT_N" 127.0.0.1 5300
record latlo "direct (no proxy)" "$value"
for row in "${selected[@]}"; do
  run_variant latlo lo "$row" 5300 pingpong "$NS_L" "$LAT_N"
done
measure pingpong "$NS_L" "$LAT_N" 127.0.0.1 5300
record latlo "direct (no proxy)" "$value"
stop "$impair_pid"
impair_pid=
echo "load.end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/meta"

# --- report --------------------------------------------------------------------------------------
# The raw data stays next to the report, so report.py can render it again.
data="${OUT%.md}-data"
mkdir -p "$data"
cp "$results" "$work/meta" "$work/impair.log" "$data/"
[ ! -d "$work/failures" ] || cp -r "$work/failures" "$data/"
python3 "$here/report.py" "$data" >"$OUT"
echo
cat "$OUT"
echo "(written to $OUT, raw data in $data/; took $(($(date +%s) - started_s)) s)"

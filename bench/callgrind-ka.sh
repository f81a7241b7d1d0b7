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
for tool in valgrind callgrind_control wrk nginx; do
  command -v $tool >/dev/null || { echo "callgrind-ka.sh: needs $tool" >&2; exit 2; }
done
dir=$(cd "$dir" && pwd)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
web=$(free_port); bind=$(free_port); remote=$(free_port)
w=$(mktemp -d); chmod 755 "$w"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$w"
}
trap cleanup EXIT

mkdir "$w/www" "$w/tmp"
python3 -c "open('$w/www/128.bin','wb').write(b'x'*127+b'\n')"
cat > "$w/nginx.conf" <<E
worker_processes 1;
pid $w/nginx.pid;
error_log $w/nginx-error.log warn;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 120s;
 client_body_temp_path $w/tmp; proxy_temp_path $w/tmp; fastcgi_temp_path $w/tmp; uwsgi_temp_path $w/tmp; scgi_temp_path $w/tmp;
 server { listen 127.0.0.1:$web backlog=4096; location / { root $w/www; } } }
E
[ "$(id -u)" = 0 ] && sed -i '1a user root;' "$w/nginx.conf"
nginx -c "$w/nginx.conf" -g 'daemon off;' & pids+=($!)
printf 'bindAddr = "127.0.0.1"\nbindPort = %s\nlog.level = "warn"\n' "$bind" > "$w/s.toml"
printf 'serverAddr = "127.0.0.1"\nserverPort = %s\nlog.level = "warn"\n[[proxies]]\nname = "web"\ntype = "tcp"\nlocalPort = %s\nremotePort = %s\n' \
  "$bind" "$web" "$remote" > "$w/c.toml"

vg=(valgrind --tool=callgrind "--callgrind-out-file=$w/cg.out")
if [ "$side" = frps ]; then "${vg[@]}" "$dir/frps" -c "$w/s.toml" > "$w/s.log" 2>&1 & else "$dir/frps" -c "$w/s.toml" > "$w/s.log" 2>&1 & fi
pids+=($!)
sleep 2
if [ "$side" = frpc ]; then "${vg[@]}" "$dir/frpc" -c "$w/c.toml" > "$w/c.log" 2>&1 & else "$dir/frpc" -c "$w/c.toml" > "$w/c.log" 2>&1 & fi
pids+=($!)
up=""
for _ in $(seq 300); do
  if timeout 1 bash -c "echo > /dev/tcp/127.0.0.1/$remote" 2>/dev/null; then up=1; break; fi
  sleep 0.2
done
[ -n "$up" ] || { echo "callgrind-ka.sh: the proxy did not come up" >&2; tail -n 5 "$w"/*.log >&2; exit 1; }
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

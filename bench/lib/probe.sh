# Shared set-up of the single-measurement probes (bench/callgrind-ka.sh, callgrind-tput.sh,
# syscalls-ka.sh): sourced, not run. Loopback only, ports picked by the OS; every process
# registered in `pids` is stopped and the work directory removed on exit.

# Exits with 2, naming what is missing, unless every tool after the script's name ($1) is on PATH.
probe_need() {
  local name=$1 tool
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$name: needs $tool" >&2; exit 2; }
  done
}

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Creates the work directory `$w` and the `pids` list, and stops both on exit.
probe_init() {
  w=$(mktemp -d); chmod 755 "$w"
  pids=()
  trap probe_cleanup EXIT
}

probe_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$w"
}

# nginx with 1 worker serving a 128-byte file (`/128.bin`) on 127.0.0.1:$1, as the suite runs it.
probe_nginx() {
  mkdir "$w/www" "$w/tmp"
  python3 -c "open('$w/www/128.bin','wb').write(b'x'*127+b'\n')"
  cat > "$w/nginx.conf" <<E
worker_processes 1;
pid $w/nginx.pid;
error_log $w/nginx-error.log warn;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 120s;
 client_body_temp_path $w/tmp; proxy_temp_path $w/tmp; fastcgi_temp_path $w/tmp; uwsgi_temp_path $w/tmp; scgi_temp_path $w/tmp;
 server { listen 127.0.0.1:$1 backlog=4096; location / { root $w/www; } } }
E
  if [ "$(id -u)" = 0 ]; then sed -i '1a user root;' "$w/nginx.conf"; fi
  nginx -c "$w/nginx.conf" -g 'daemon off;' & pids+=($!)
}

# frps and frpc configs at their defaults (TLS + tcpMux) in $w/s.toml and $w/c.toml: frps on
# 127.0.0.1:$1, one tcp proxy named $4 from remote port $3 to local port $2.
probe_frp_configs() {
  printf 'bindAddr = "127.0.0.1"\nbindPort = %s\nlog.level = "warn"\n' "$1" > "$w/s.toml"
  printf 'serverAddr = "127.0.0.1"\nserverPort = %s\nlog.level = "warn"\n[[proxies]]\nname = "%s"\ntype = "tcp"\nlocalPort = %s\nremotePort = %s\n' \
    "$1" "$4" "$2" "$3" > "$w/c.toml"
}

# Waits up to $2 tries (0.2 s apart) for 127.0.0.1:$1 to accept connections; with $3 = listen,
# only for the port to be listening (a connection to a proxy would open a work stream).
# Prints the logs and fails when it does not come up.
probe_wait_port() {
  local port=$1 tries=$2 how=${3:-connect}
  for _ in $(seq "$tries"); do
    if [ "$how" = listen ]; then
      ss -ltn | grep -q ":$port " && return 0
    else
      timeout 1 bash -c "echo > /dev/tcp/127.0.0.1/$port" 2>/dev/null && return 0
    fi
    sleep 0.2
  done
  echo "$(basename "$0"): the proxy did not come up" >&2
  tail -n 5 "$w"/*.log >&2
  return 1
}

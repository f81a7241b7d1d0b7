#!/usr/bin/env python3
"""TCP ping-pong for the lossy-link benchmark (bench/lossy/run.sh).

  pingpong.py serve PORT [ADDR]     echo server on ADDR:PORT (default 127.0.0.1; TCP_NODELAY),
                                    runs until killed
  pingpong.py ping HOST PORT N      N round trips of a 64-byte message over one connection;
                                    prints "median_us p90_us" (or "ERR:reason"), exit 0 either way

Each round trip sends 64 bytes and waits for all 64 to come back, so the figure is the
request/response latency an interactive user sees through the tunnel (connection setup is not
counted; 5 warm-up rounds are not counted either).
"""
import socket
import socketserver
import statistics
import sys
import time

MSG = b"x" * 64


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def ping(host, port, n):
    s = socket.create_connection((host, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(10)
    rtts = []
    for i in range(n + 5):
        t0 = time.perf_counter_ns()
        s.sendall(MSG)
        recv_exact(s, len(MSG))
        if i >= 5:
            rtts.append((time.perf_counter_ns() - t0) / 1000)
    s.close()
    rtts.sort()
    return statistics.median(rtts), rtts[max(0, int(len(rtts) * 0.9) - 1)]


def main():
    if len(sys.argv) in (3, 4) and sys.argv[1] == "serve":
        addr = sys.argv[3] if len(sys.argv) == 4 else "127.0.0.1"
        with Server((addr, int(sys.argv[2])), Echo) as srv:
            srv.serve_forever()
    elif len(sys.argv) == 5 and sys.argv[1] == "ping":
        try:
            med, p90 = ping(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
            print(f"{med:.0f} {p90:.0f}")
        except (OSError, ConnectionError) as e:
            print("ERR:" + str(e))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Memory held per idle connection through one tcp proxy (issue 5).

Starts frps and frpc on free 127.0.0.1 ports with one `tcp` proxy in front of a local service
that accepts connections and holds them (it echoes what it receives, so `--exchange` can move a
few bytes first). Opens N user connections through the proxy, waits until the service has
accepted all of them, lets them sit idle and reads VmRSS of frps and frpc from
/proc/<pid>/status before and after. Prints KiB per held connection for each side.

Usage:
  bench/held_conns.py [-n 1000] [--reps 1] [--exchange] \
      --impl ours:target/release/frps:target/release/frpc \
      --impl frp:.cache/frp-0.65.0/frps:.cache/frp-0.65.0/frpc

Without --impl both of the above are used (paths relative to the repository root). Two
variants run by default: `default` (TLS + tcpMux, frp's defaults) and `plain` (tcpMux off,
TLS off); pick with --variant. Connections are opened in batches of 50, each batch waiting
until the service has accepted the previous ones: this measures what a held connection
costs, not how a burst of connects is absorbed. Logs are at frp's default level (info).
Python 3 standard library only; loopback only; every process it starts is killed on exit.
"""

import argparse
import os
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VARIANTS = {
    # name: (tcpMux, tls.enable)
    "default": (True, True),
    "plain": (False, False),
}


# Connections opened before waiting for the service to have accepted them all.
BATCH = 50


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class Service:
    """Accepts and holds connections; echoes whatever arrives."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4096)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ)
        self.conns = []
        self.accepted = 0
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            for key, _ in self.sel.select(timeout=0.1):
                if key.fileobj is self.listener:
                    while True:
                        try:
                            c, _ = self.listener.accept()
                        except BlockingIOError:
                            break
                        c.setblocking(False)
                        self.conns.append(c)
                        self.sel.register(c, selectors.EVENT_READ)
                        self.accepted += 1
                else:
                    c = key.fileobj
                    try:
                        data = c.recv(65536)
                    except OSError:
                        data = b""
                    if data:
                        c.sendall(data)
                    else:
                        self.sel.unregister(c)

    def close_all(self):
        for c in self.conns:
            try:
                self.sel.unregister(c)
            except (KeyError, ValueError):
                pass
            c.close()
        self.conns = []
        self.accepted = 0

    def shutdown(self):
        self.stop = True
        self.thread.join()
        self.close_all()
        self.listener.close()


def wait_until(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def proxy_ready(port, service):
    """True once a connection through the proxy reaches the service and echoes."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"x")
            s.settimeout(2)
            return s.recv(1) == b"x"
    except OSError:
        return False


def run_one(name, frps, frpc, variant, n, exchange, service, work):
    mux, tls = VARIANTS[variant]
    bind, remote = free_port(), free_port()
    b = lambda v: "true" if v else "false"  # noqa: E731
    with open(os.path.join(work, "frps.toml"), "w") as f:
        f.write(
            f'bindAddr = "127.0.0.1"\nbindPort = {bind}\n'
            f'transport.tcpMux = {b(mux)}\nlog.level = "info"\n'
        )
    with open(os.path.join(work, "frpc.toml"), "w") as f:
        f.write(
            f'serverAddr = "127.0.0.1"\nserverPort = {bind}\nloginFailExit = false\n'
            f"transport.tcpMux = {b(mux)}\ntransport.tls.enable = {b(tls)}\n"
            f'log.level = "info"\n'
            f'[[proxies]]\nname = "held"\ntype = "tcp"\n'
            f'localIP = "127.0.0.1"\nlocalPort = {service.port}\nremotePort = {remote}\n'
        )
    procs = []
    clients = []
    try:
        log = open(os.path.join(work, f"{name}-{variant}.log"), "w")
        sp = subprocess.Popen(
            [frps, "-c", os.path.join(work, "frps.toml")], stdout=log, stderr=log
        )
        procs.append(sp)
        wait_until(lambda: _can_connect(bind), 15, "frps bind port")
        cp = subprocess.Popen(
            [frpc, "-c", os.path.join(work, "frpc.toml")], stdout=log, stderr=log
        )
        procs.append(cp)
        wait_until(lambda: proxy_ready(remote, service), 30, f"{name}: proxy through frpc")
        wait_until(lambda: service.accepted >= 1, 5, "probe")
        time.sleep(1.0)
        service.close_all()
        time.sleep(1.0)
        before = (rss_kib(sp.pid), rss_kib(cp.pid))
        for i in range(n):
            if i % BATCH == 0:
                # Open in batches: a burst of 1000 simultaneous connects measures burst
                # handling (work-connection requests queueing up), not held memory.
                wait_until(lambda: service.accepted >= i, 30, f"batch at {i}")
            c = socket.create_connection(("127.0.0.1", remote), timeout=10)
            clients.append(c)
            if exchange:
                c.sendall(b"y" * 1024)
                got = 0
                while got < 1024:
                    d = c.recv(1024 - got)
                    if not d:
                        raise RuntimeError("connection closed during exchange")
                    got += len(d)
        wait_until(
            lambda: service.accepted >= n,
            60,
            f"{n} connections at the service (have {service.accepted})",
        )
        time.sleep(2.0)
        after = (rss_kib(sp.pid), rss_kib(cp.pid))
        return [(a - b) / n for a, b in zip(after, before)], before, after
    except Exception:
        log.flush()
        with open(os.path.join(work, f"{name}-{variant}.log")) as f:
            lines = f.readlines()
        first = next((i for i, ln in enumerate(lines) if "[W]" in ln or "[E]" in ln), 0)
        sys.stderr.write("".join(lines[max(0, first - 5) : first + 10] + lines[-5:]))
        raise
    finally:
        for c in clients:
            c.close()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        service.close_all()


def _can_connect(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=1000, help="connections to hold")
    ap.add_argument("--reps", type=int, default=1, help="repetitions (median is printed)")
    ap.add_argument(
        "--impl",
        action="append",
        metavar="NAME:FRPS:FRPC",
        help="an implementation to measure (repeatable)",
    )
    ap.add_argument(
        "--variant", action="append", choices=sorted(VARIANTS), help="repeatable"
    )
    ap.add_argument("--log-dir", help="keep frps/frpc logs here (default: a temp dir)")
    ap.add_argument(
        "--exchange",
        action="store_true",
        help="echo 1 KiB through each connection before it goes idle",
    )
    args = ap.parse_args()
    impls = args.impl or [
        f"ours:{ROOT}/target/release/frps:{ROOT}/target/release/frpc",
        f"frp:{ROOT}/.cache/frp-0.65.0/frps:{ROOT}/.cache/frp-0.65.0/frpc",
    ]
    impls = [tuple(i.split(":", 2)) for i in impls]
    variants = args.variant or ["default", "plain"]

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, min(hard, 8 * args.n + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 3 * args.n + 256:
        sys.exit(f"fd limit {want} too low for {args.n} connections")

    service = Service()
    results = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = args.log_dir or tmp
            os.makedirs(work, exist_ok=True)
            for _ in range(args.reps):
                for variant in variants:
                    for name, frps, frpc in impls:
                        per, before, after = run_one(
                            name, frps, frpc, variant, args.n, args.exchange, service, work
                        )
                        results.setdefault((variant, name), []).append(per)
                        print(
                            f"# {variant} {name}: frps {before[0]}->{after[0]} KiB, "
                            f"frpc {before[1]}->{after[1]} KiB",
                            file=sys.stderr,
                        )
    finally:
        service.shutdown()

    mode = "after a 1 KiB echo" if args.exchange else "idle"
    print(f"KiB of RSS per held connection ({args.n} connections, {mode}, median of {args.reps})")
    print("| variant | impl | frps | frpc | total |")
    print("|---|---|---|---|---|")
    for (variant, name), runs in results.items():
        s = statistics.median(r[0] for r in runs)
        c = statistics.median(r[1] for r in runs)
        print(f"| {variant} | {name} | {s:.1f} | {c:.1f} | {s + c:.1f} |")


if __name__ == "__main__":
    main()

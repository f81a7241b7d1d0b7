#!/usr/bin/env python3
"""frp-rs benchmark suite (issue 5): ours, the real frp 0.65.0 and rathole 0.5.0 side by side.

Run through `bench/run.sh` (it fetches and builds everything first). Every variant runs once per
repeat, variants interleaved in a fresh random order each repeat; the report shows medians and
the spread (min-max). Loopback only, ports chosen by the OS; every process started is killed.

Figures per variant: iperf3 throughput (1 and 8 streams), CPU seconds per GB (utime+stime of the
tunnel's server and client processes over the 1-stream run, divided by the GB iperf3 received)
and their minor page faults per GB, wrk keep-alive requests/s with p50/p99 latency against nginx serving a 128-byte file, new
connections/s (wrk with `Connection: close`: one TCP connection per request), CPU µs per request
and per new connection (the tunnel's, and the whole machine's), idle RSS of each
side, and KiB of RSS per held idle connection (N connections opened through the tunnel to a
service that greets each with one byte, so each is known to be joined end to end).

A second table shows cost growth: RSS and CPU of each side with 10/100/1000/5000 held
connections and with 1/10/100 proxies, ours and frp (both at their defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRP_DIR = ROOT / ".cache" / "frp-0.65.0"
RATHOLE = ROOT / ".cache" / "rathole-0.5.0" / "bin" / "rathole"
# bench/floor: reference relays (only what each path needs) and the AES cost, for the bounds.
FLOOR = ROOT / "target" / "floor" / "release" / "floor"
OURS_DIR = Path(os.environ.get("FRP_RS_BIN_DIR", ROOT / "target" / "release"))
# A/B runs: another build of ours (e.g. a worktree of the previous commit), added as "base …"
# variants of every "ours …" variant when set.
BASE_DIR = Path(os.environ["FRP_RS_BASE_DIR"]) if os.environ.get("FRP_RS_BASE_DIR") else None
CLK_TCK = os.sysconf("SC_CLK_TCK")
UP_TIMEOUT = 30.0


# --------------------------------------------------------------------------------------------
# Variants
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    label: str
    impl: str  # direct | frp | ours | rathole | floor
    # frpc transport.protocol; for impl "floor", the floor relay: mux | mux-plain | splice | copy
    protocol: str = "tcp"
    mux: bool = True
    tls: bool = True
    extra_frps: tuple[str, ...] = ()
    extra_frpc: tuple[str, ...] = ()
    # Environment for both tunnel processes, e.g. (("TOKIO_WORKER_THREADS", "1"),).
    env: tuple[tuple[str, str], ...] = ()


VARIANTS = [
    Variant("direct (no tunnel)", "direct"),
    Variant("frp default (TLS + tcpMux)", "frp"),
    Variant("ours default (TLS + tcpMux)", "ours"),
    # Informational: one runtime thread per process instead of one per core (TOKIO_WORKER_THREADS
    # sets the number of shards, transports::shard).
    Variant("ours default, 1 worker thread", "ours", env=(("TOKIO_WORKER_THREADS", "1"),)),
    Variant("frp tcpMux off", "frp", mux=False),
    Variant("ours tcpMux off", "ours", mux=False),
    Variant("frp tcpMux off, TLS off", "frp", mux=False, tls=False),
    Variant("ours tcpMux off, TLS off", "ours", mux=False, tls=False),
    Variant("frp quic", "frp", protocol="quic"),
    Variant("ours quic", "ours", protocol="quic"),
    Variant("frp kcp", "frp", protocol="kcp"),
    # transport.kcp.tuning defaults to "fast"; "compat" is frp's own kcp-go tuning.
    Variant("ours kcp", "ours", protocol="kcp"),
    Variant(
        "ours kcp (compat)",
        "ours",
        protocol="kcp",
        extra_frps=('transport.kcp.tuning = "compat"',),
        extra_frpc=('transport.kcp.tuning = "compat"',),
    ),
    Variant("frp websocket", "frp", protocol="websocket"),
    Variant("ours websocket", "ours", protocol="websocket"),
    Variant("rathole 0.5 (tcp, plaintext)", "rathole"),
    # Reference relays, not tunnels (bench/floor): only what each path needs, in the plainest
    # code, on the same machine in the same run; they bound what a tunnel can reach (render_bounds).
    # Throughput only.
    Variant("reference: mux relay + AES-128-GCM records", "floor", protocol="mux"),
    Variant("reference: mux relay, no encryption", "floor", protocol="mux-plain", tls=False),
    Variant("reference: splice relays, 3 TCP hops", "floor", protocol="splice", mux=False, tls=False),
    Variant("reference: read/write relays, 3 TCP hops", "floor", protocol="copy", mux=False, tls=False),
]
FLOOR_LABELS = {v.protocol: v.label for v in VARIANTS if v.impl == "floor"}
if BASE_DIR is not None:
    VARIANTS += [
        Variant("base" + v.label[len("ours"):], "base", v.protocol, v.mux, v.tls, v.extra_frps, v.extra_frpc, v.env)
        for v in VARIANTS
        if v.impl == "ours"
    ]


# --------------------------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------------------------


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_udp_port() -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                with socket.socket() as t:
                    t.bind(("127.0.0.1", port))
                    return port
            except OSError:
                continue
    raise RuntimeError("no port free for both TCP and UDP")


def listening_tcp_ports() -> set[int]:
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A":
                        ports.add(int(parts[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass
    return ports


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def minor_faults(pid: int) -> int:
    """Minor page faults of `pid` so far (`minflt`): a steady stream of them means an allocator
    handing memory back to the kernel and faulting it in again (see bench/NOTES.md)."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return int(stat[stat.rindex(")") + 2 :].split()[7])


def run(cmd: list[str], timeout: float) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {p.returncode}: {p.stderr.strip()[-300:]}")
    return p.stdout


class Procs:
    """Processes started by the suite; all killed on exit."""

    def __init__(self, work: Path):
        self.work = work
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, cmd: list[str], env: tuple[tuple[str, str], ...] = ()) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "wb")
        p = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **dict(env)} if env else None,
        )
        log.close()
        self.procs.append(p)
        return p

    def log(self, name: str) -> str:
        try:
            return (self.work / f"{name}.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self, p: subprocess.Popen) -> None:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self) -> None:
        for p in list(self.procs):
            self.stop(p)


# --------------------------------------------------------------------------------------------
# Local services: iperf3, nginx, and the hold (greeter) service
# --------------------------------------------------------------------------------------------


class HoldServer:
    """Accepts connections, greets each with one byte, keeps them open until closed."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        while not self.stopped:
            for key, _ in sel.select(0.2):
                if key.fileobj is self.sock:
                    try:
                        c, _ = self.sock.accept()
                    except OSError:
                        continue
                    try:
                        c.sendall(b"!")
                    except OSError:
                        c.close()
                        continue
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ)
                    with self.lock:
                        self.conns.append(c)
                else:
                    c = key.fileobj
                    try:
                        data = c.recv(4096)
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(c)
                        c.close()
                        with self.lock:
                            if c in self.conns:
                                self.conns.remove(c)

    def count(self) -> int:
        with self.lock:
            return len(self.conns)

    def close(self) -> None:
        self.stopped = True
        self.thread.join(2)
        self.sock.close()
        with self.lock:
            for c in self.conns:
                c.close()
            self.conns.clear()


def open_held(port: int, n: int, timeout: float = 60.0) -> list[socket.socket]:
    """Opens n connections to port and waits for each one's greeting byte."""
    socks: list[socket.socket] = []
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    pending = 0
    batch = 100
    try:
        opened = 0
        while opened < n or pending:
            while opened < n and pending < batch:
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
                sel.register(s, selectors.EVENT_READ)
                socks.append(s)
                opened += 1
                pending += 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"held connections: {len(socks) - pending}/{n} greeted in time")
            for key, _ in sel.select(1.0):
                s = key.fileobj
                try:
                    data = s.recv(1)
                except OSError as e:
                    raise RuntimeError(f"held connection failed: {e}") from e
                if data != b"!":
                    raise RuntimeError("held connection closed before its greeting")
                sel.unregister(s)
                pending -= 1
        return socks
    except BaseException:
        for s in socks:
            s.close()
        raise
    finally:
        sel.close()


NGINX_CONF = """
worker_processes 1;
{user}
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    client_body_temp_path {work}/nginx-tmp;
    proxy_temp_path {work}/nginx-tmp;
    fastcgi_temp_path {work}/nginx-tmp;
    uwsgi_temp_path {work}/nginx-tmp;
    scgi_temp_path {work}/nginx-tmp;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ root {work}/www; }}
    }}
}}
"""


class Services:
    def __init__(self, procs: Procs, work: Path):
        self.iperf_port = free_port()
        procs.start("iperf3", ["iperf3", "-s", "-p", str(self.iperf_port)])
        (work / "www").mkdir()
        (work / "nginx-tmp").mkdir()
        (work / "www" / "128.bin").write_bytes(b"x" * 127 + b"\n")
        os.chmod(work, 0o755)
        self.http_port = free_port()
        conf = work / "nginx.conf"
        user = "user root;" if os.geteuid() == 0 else ""
        conf.write_text(NGINX_CONF.format(work=work, port=self.http_port, user=user))
        procs.start("nginx", ["nginx", "-c", str(conf), "-g", "daemon off;"])
        self.hold = HoldServer()
        deadline = time.monotonic() + 10
        while {self.iperf_port, self.http_port} - listening_tcp_ports():
            if time.monotonic() > deadline:
                raise RuntimeError("iperf3 or nginx did not start: " + procs.log("nginx"))
            time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# Tunnels
# --------------------------------------------------------------------------------------------


@dataclass
class Tunnel:
    """A running tunnel (or the direct path): the ports users connect to and its processes."""

    iperf: int
    http: int
    hold: int
    server: subprocess.Popen | None = None
    client: subprocess.Popen | None = None
    extra_ports: list[int] = field(default_factory=list)
    # Processes besides the measured pair (floor: the relays of the other services).
    others: list[subprocess.Popen] = field(default_factory=list)

    def pids(self) -> list[int]:
        return [p.pid for p in (self.server, self.client) if p is not None]


def frp_like_configs(v: Variant, svc: Services, proxies: list[tuple[str, int, int]]) -> tuple[str, str]:
    bind = free_tcp_udp_port() if v.protocol == "kcp" else free_port()
    frps = [
        'bindAddr = "127.0.0.1"',
        f"bindPort = {bind}",
        f"transport.tcpMux = {str(v.mux).lower()}",
        'log.level = "warn"',
    ]
    server_port = bind
    if v.protocol == "kcp":
        frps.append(f"kcpBindPort = {bind}")
    if v.protocol == "quic":
        server_port = free_port(socket.SOCK_DGRAM)
        frps.append(f"quicBindPort = {server_port}")
    frpc = [
        'serverAddr = "127.0.0.1"',
        f"serverPort = {server_port}",
        "loginFailExit = false",
        f'transport.protocol = "{v.protocol}"',
        f"transport.tcpMux = {str(v.mux).lower()}",
        f"transport.tls.enable = {str(v.tls).lower()}",
        'log.level = "warn"',
    ]
    frps += list(v.extra_frps)
    frpc += list(v.extra_frpc)
    for name, local, remote in proxies:
        frpc += [
            "",
            "[[proxies]]",
            f'name = "{name}"',
            'type = "tcp"',
            'localIP = "127.0.0.1"',
            f"localPort = {local}",
            f"remotePort = {remote}",
        ]
    return "\n".join(frps) + "\n", "\n".join(frpc) + "\n"


def rathole_configs(proxies: list[tuple[str, int, int]]) -> tuple[str, str]:
    bind = free_port()
    server = ["[server]", f'bind_addr = "127.0.0.1:{bind}"', 'default_token = "bench"']
    client = ["[client]", f'remote_addr = "127.0.0.1:{bind}"', 'default_token = "bench"']
    for name, local, remote in proxies:
        server += [f"[server.services.{name}]", f'bind_addr = "127.0.0.1:{remote}"']
        client += [f"[client.services.{name}]", f'local_addr = "127.0.0.1:{local}"']
    return "\n".join(server) + "\n", "\n".join(client) + "\n"


def start_tunnel(
    v: Variant, svc: Services, procs: Procs, work: Path, n_extra_proxies: int = 0, hold_only: bool = False
) -> Tunnel:
    """Starts the variant's tunnel with proxies for iperf3, nginx and the hold service (only
    the hold service with `hold_only`), plus `n_extra_proxies` more to the hold service."""
    if v.impl == "direct":
        return Tunnel(svc.iperf_port, svc.http_port, svc.hold.port)
    t = Tunnel(free_port(), free_port(), free_port())
    proxies = [("hold", svc.hold.port, t.hold)]
    if hold_only:
        t.iperf = t.http = t.hold
    else:
        proxies += [("iperf", svc.iperf_port, t.iperf), ("http", svc.http_port, t.http)]
    for i in range(n_extra_proxies):
        port = free_port()
        t.extra_ports.append(port)
        proxies.append((f"extra{i}", svc.hold.port, port))
    sconf, cconf = work / "server.toml", work / "client.toml"
    if v.impl == "floor":
        if hold_only:
            raise RuntimeError("reference relays are measured for throughput only")
        # One relay pair per service; the iperf3 pair is the one measured.
        for name, local, remote in proxies:
            mid = free_port()
            if v.protocol in ("splice", "copy"):
                scmd = [str(FLOOR), v.protocol, f"127.0.0.1:{remote}", f"127.0.0.1:{mid}"]
                ccmd = [str(FLOOR), v.protocol, f"127.0.0.1:{mid}", f"127.0.0.1:{local}"]
            else:
                plain = ["--plain"] if v.protocol == "mux-plain" else []
                scmd = [str(FLOOR), "mux-server", f"127.0.0.1:{remote}", f"127.0.0.1:{mid}", *plain]
                ccmd = [str(FLOOR), "mux-client", f"127.0.0.1:{mid}", f"127.0.0.1:{local}", *plain]
            sp = procs.start(f"server-{name}", scmd)
            time.sleep(0.1)
            cp = procs.start(f"client-{name}", ccmd)
            if name == "iperf":
                t.server, t.client = sp, cp
            else:
                t.others += [sp, cp]
    elif v.impl == "rathole":
        s, c = rathole_configs(proxies)
        sconf.write_text(s)
        cconf.write_text(c)
        t.server = procs.start("server", [str(RATHOLE), "-s", str(sconf)])
        time.sleep(0.2)
        t.client = procs.start("client", [str(RATHOLE), "-c", str(cconf)])
    else:
        d = {"frp": FRP_DIR, "base": BASE_DIR}.get(v.impl, OURS_DIR)
        s, c = frp_like_configs(v, svc, proxies)
        sconf.write_text(s)
        cconf.write_text(c)
        t.server = procs.start("server", [str(d / "frps"), "-c", str(sconf)], v.env)
        time.sleep(0.2)
        t.client = procs.start("client", [str(d / "frpc"), "-c", str(cconf)], v.env)
    wait_up(t, procs)
    return t


def wait_up(t: Tunnel, procs: Procs) -> None:
    """Waits until every proxy port listens and one greeting passes end to end."""
    deadline = time.monotonic() + UP_TIMEOUT
    want = {t.iperf, t.http, t.hold, *t.extra_ports}
    while True:
        for p, name in ((t.server, "server"), (t.client, "client")):
            if p is not None and p.poll() is not None:
                raise RuntimeError(f"{name} exited: {procs.log(name)}")
        if not (want - listening_tcp_ports()):
            try:
                for s in open_held(t.hold, 1, timeout=3):
                    s.close()
                return
            except RuntimeError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"tunnel not up in {UP_TIMEOUT}s: {procs.log('server')} {procs.log('client')}")
        time.sleep(0.1)


def stop_tunnel(t: Tunnel, procs: Procs) -> None:
    for p in (t.client, t.server, *t.others):
        if p is not None:
            procs.stop(p)


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------


def iperf(port: int, secs: int, streams: int) -> tuple[float, int]:
    """One iperf3 run; retried while the shared server is still finishing a previous client's
    test (a tunnel torn down mid-test leaves iperf3 -s busy for a few seconds), and once when
    iperf3 reports its control socket closed, which both frp's and our KCP tunnels (frp's
    tuning: 20 ms ticks) occasionally trigger while iperf3 sets up its streams."""
    retried_close = False
    for _ in range(10):
        try:
            return iperf_once(port, secs, streams)
        except RuntimeError as e:
            if "busy" in str(e):
                time.sleep(2)
            elif "control socket has closed" in str(e) and not retried_close:
                retried_close = True
                time.sleep(2)
            else:
                raise
    return iperf_once(port, secs, streams)


def iperf_once(port: int, secs: int, streams: int) -> tuple[float, int]:
    out = run(
        ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(secs), "-P", str(streams), "-J"],
        timeout=secs + 40,
    )
    d = json.loads(out)
    if d.get("error"):
        raise RuntimeError("iperf3: " + d["error"])
    r = d["end"]["sum_received"]
    return r["bits_per_second"] / 1e9, int(r["bytes"])


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(port: int, secs: int, close: bool, conns: int) -> dict:
    cmd = ["wrk", "-t", "2", "-c", str(conns), "-d", f"{secs}s", "--latency", "--timeout", "5s"]
    if close:
        cmd += ["-H", "Connection: close"]
    out = run(cmd + [f"http://127.0.0.1:{port}/128.bin"], timeout=secs + 40)
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    m = re.search(r"(\d+) requests in ", out)
    res["requests"] = int(m.group(1)) if m else 0
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        res[f"p{pct}"] = float(m.group(1)) * UNITS[m.group(2)] if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["errors"] = sum(map(int, m.groups())) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["errors"] += int(m.group(1)) if m else 0
    return res


def settle_rss(pids: list[int], secs: float = 1.0) -> list[int]:
    time.sleep(secs)
    return [rss_kib(p) for p in pids]


def machine_jiffies() -> tuple[int, int, int]:
    """(busy, total, steal) jiffies of all CPUs together, from /proc/stat (steal counts as busy:
    the core was not ours to use; it is also kept apart, to show how contended the host was)."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = parts
    return user + nice + system + irq + softirq + steal, sum(parts), steal


def busy_cores(j0: tuple[int, int, int], j1: tuple[int, int, int]) -> float:
    """Cores busy on average between two `machine_jiffies` readings (any process, not only the
    tunnel's): shows whether a run was CPU-bound (near `os.cpu_count()`) or latency-bound."""
    busy, total = j1[0] - j0[0], j1[1] - j0[1]
    return (os.cpu_count() or 1) * busy / total if total else 0.0


def stolen_cores(j0: tuple[int, int, int], j1: tuple[int, int, int]) -> float:
    """Of those, the cores the hypervisor gave to other guests (steal time) on average."""
    steal, total = j1[2] - j0[2], j1[1] - j0[1]
    return (os.cpu_count() or 1) * steal / total if total else 0.0


def measure_variant(v: Variant, svc: Services, procs: Procs, work: Path, a) -> dict:
    r: dict = {}
    metrics = set(a.metrics.split(","))
    if v.impl == "floor":
        metrics &= {"tput"}
    t = start_tunnel(v, svc, procs, work)
    try:
        pids = t.pids()
        if pids:
            r["idle_rss"] = settle_rss(pids)
        # Held idle connections first, on the fresh tunnel: after the traffic runs a process's
        # heap keeps memory it freed, and new connections would fit in it unseen.
        if pids and "held" in metrics:
            before = settle_rss(pids)
            socks = open_held(t.hold, a.held)
            try:
                after = settle_rss(pids, 2.0)
                r["held_kib"] = [(b - a0) / a.held for a0, b in zip(before, after)]
                r["held_rss"] = after
            finally:
                for s in socks:
                    s.close()
            time.sleep(1.0)  # let the tunnel tear the held connections down
        if "tput" in metrics:
            # 1 stream, with CPU accounting.
            cpu0 = sum(cpu_seconds(p) for p in pids)
            flt0 = [minor_faults(p) for p in pids]
            j0 = machine_jiffies()
            r["gbps1"], nbytes = iperf(t.iperf, a.secs, 1)
            j1 = machine_jiffies()
            r["busy1"], r["steal1"] = busy_cores(j0, j1), stolen_cores(j0, j1)
            if pids:
                r["cpu_per_gb"] = (sum(cpu_seconds(p) for p in pids) - cpu0) / (nbytes / 1e9)
                r["faults_per_gb"] = [(minor_faults(p) - f0) / (nbytes / 1e9) for p, f0 in zip(pids, flt0)]
            j0 = machine_jiffies()
            r["gbps8"], _ = iperf(t.iperf, a.secs, 8)
            j1 = machine_jiffies()
            r["busy8"], r["steal8"] = busy_cores(j0, j1), stolen_cores(j0, j1)
        if "rps" in metrics:
            ka = timed_wrk(r, "ka", t.http, a.secs, False, a.wrk_conns, pids)
            r.update(ka_rps=ka["rps"], ka_p50=ka["p50"], ka_p99=ka["p99"], ka_errors=ka["errors"])
        if "conns" in metrics:
            nc = timed_wrk(r, "nc", t.http, a.secs, True, a.wrk_close_conns, pids)
            r.update(nc_rps=nc["rps"], nc_p99=nc["p99"], nc_errors=nc["errors"])
    finally:
        stop_tunnel(t, procs)
    return r


def timed_wrk(r: dict, key: str, port: int, secs: int, close: bool, conns: int, pids: list[int]) -> dict:
    """Runs wrk and records in `r` the machine's busy and stolen cores over the run (`busy_KEY`,
    `steal_KEY`) and the CPU µs per request (or per new connection): the tunnel's server +
    client (`KEY_tunnel_us`, utime+stime; none for direct) and the whole machine's
    (`KEY_machine_us`: busy jiffies of every CPU, so nginx, wrk and the kernel's softirq work
    too). At a given machine busy, req/s is busy cores / machine CPU per request, so these say
    what a rate is made of. Returns wrk's figures."""
    cpu0 = sum(cpu_seconds(p) for p in pids)
    j0 = machine_jiffies()
    res = wrk(port, secs, close=close, conns=conns)
    j1 = machine_jiffies()
    r[f"busy_{key}"], r[f"steal_{key}"] = busy_cores(j0, j1), stolen_cores(j0, j1)
    if res["requests"]:
        r[f"{key}_machine_us"] = (j1[0] - j0[0]) / CLK_TCK / res["requests"] * 1e6
        if pids:
            r[f"{key}_tunnel_us"] = (sum(cpu_seconds(p) for p in pids) - cpu0) / res["requests"] * 1e6
    return res


def growth_point(v: Variant, svc: Services, procs: Procs, work: Path, held: list[int], proxies: int) -> dict:
    """RSS and CPU of each side with `proxies` tcp proxies: idle, then at each held count."""
    r: dict = {"held": {}}
    t = start_tunnel(v, svc, procs, work, n_extra_proxies=proxies - 1, hold_only=True)
    try:
        pids = t.pids()
        r["startup_cpu"] = [cpu_seconds(p) for p in pids]
        time.sleep(1.0)
        cpu0 = [cpu_seconds(p) for p in pids]
        time.sleep(5.0)
        r["idle_cpu_5s"] = [cpu_seconds(p) - c for p, c in zip(pids, cpu0)]
        r["idle_rss"] = [rss_kib(p) for p in pids]
        socks: list[socket.socket] = []
        try:
            for n in held:
                cpu0 = [cpu_seconds(p) for p in pids]
                socks += open_held(t.hold, n - len(socks), timeout=120)
                rss = settle_rss(pids, 2.0)
                cpu = [cpu_seconds(p) - c for p, c in zip(pids, cpu0)]
                r["held"][n] = {"rss": rss, "open_cpu": cpu}
        finally:
            for s in socks:
                s.close()
    finally:
        stop_tunnel(t, procs)
    return r


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def med(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def cell(xs: list, fmt: str, scale: float = 1.0) -> str:
    xs = [x * scale for x in xs if x is not None]
    if not xs:
        return "–"
    m = statistics.median(xs)
    if len(xs) == 1:
        return format(m, fmt)
    return f"{format(m, fmt)} ({format(min(xs), fmt)}–{format(max(xs), fmt)})"


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} cores, {mem:.0f} GiB, Linux {platform.release()}"


def rathole_version() -> str:
    try:
        out = subprocess.run([str(RATHOLE), "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError as e:
        return f"? ({e})"
    m = re.search(r"Build Version:\s*(\S+)", out)
    return m.group(1) if m else "?"


def nginx_version() -> str:
    try:
        p = subprocess.run(["nginx", "-v"], capture_output=True, text=True, timeout=10)
    except OSError as e:
        return f"nginx ? ({e})"
    return (p.stderr or p.stdout).strip().replace("nginx version: ", "")


def versions() -> str:
    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
        except Exception as e:  # noqa: BLE001 - a version string is best effort
            return f"? ({e})"

    rev = first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = first_line(["sh", "-c", f"git -C {ROOT} status --porcelain --untracked-files=no | wc -l"])
    return (
        f"frp-rs {rev}{' (+uncommitted changes)' if dirty not in ('0', '') else ''}, "
        f"frp {first_line([str(FRP_DIR / 'frps'), '--version'])}, "
        f"rathole {rathole_version()}, "
        f"{first_line(['iperf3', '--version'])}, {first_line(['wrk', '--version']).split(' [')[0]}, "
        f"{nginx_version()}, {first_line(['rustc', '--version'])}"
    )


def render(data: dict) -> str:
    a = data["args"]
    res = data["results"]
    out = []
    out.append(f"## Suite run {data['started']}\n")
    out.append(f"Command: `{data['command']}`  ")
    out.append(f"Machine: {data['machine']}  ")
    out.append(f"Versions: {data['versions']}  ")
    out.append(
        f"Method: {a['repeats']} repeats, variants interleaved in a random order each repeat; "
        f"cells are median (min–max). iperf3 {a['secs']} s; wrk 2 threads, {a['secs']} s, "
        f"{a['wrk_conns']} keep-alive connections / {a['wrk_close_conns']} with `Connection: close`, "
        f"nginx 1 worker serving 128 bytes; {a['held']} idle connections held through the tunnel. "
        "CPU s/GB: utime+stime of the tunnel's server and client over the 1-stream run. "
        "Everything on one loopback, all processes sharing the same 2 cores.\n"
    )
    out.append(
        "| variant | 1 stream Gbit/s | 8 streams Gbit/s | keep-alive req/s | p50 / p99 ms | "
        "new conns/s | p99 ms | KiB per held conn srv + cli | idle RSS MiB srv / cli | CPU s per GB |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for v in VARIANTS:
        rs = res.get(v.label)
        if not rs:
            continue
        ok = [r for r in rs if "error" not in r]
        errs = [r["error"] for r in rs if "error" in r]
        if not ok:
            out.append(f"| {v.label} | failed: {errs[0][:120]} |||||||||")
            continue
        g = lambda k, i=None: [r[k] if i is None else r[k][i] for r in ok if k in r]  # noqa: E731
        held = [sum(r["held_kib"]) for r in ok if "held_kib" in r]
        held_s, held_c = g("held_kib", 0), g("held_kib", 1)
        idle_s = [x / 1024 for x in g("idle_rss", 0)]
        idle_c = [x / 1024 for x in g("idle_rss", 1)]
        p = lambda k: "–" if med(g(k)) is None else f"{med(g(k)):.2f}"  # noqa: E731
        held_cell = "–" if not held else f"{med(held):.1f} ({med(held_s):.1f} + {med(held_c):.1f})"
        idle_cell = "–" if not idle_s else f"{med(idle_s):.1f} / {med(idle_c):.1f}"
        note = f" ({len(errs)} failed run(s): {errs[0][:80]})" if errs else ""
        out.append(
            f"| {v.label}{note} | {cell(g('gbps1'), '.2f')} | {cell(g('gbps8'), '.2f')} | "
            f"{cell(g('ka_rps'), '.1f', 1e-3)}k | {p('ka_p50')} / {p('ka_p99')} | "
            f"{cell(g('nc_rps'), '.1f', 1e-3)}k | {p('nc_p99')} | {held_cell} | {idle_cell} | "
            f"{cell(g('cpu_per_gb'), '.2f')} |"
        )
    errors = [
        f"{label}: wrk reported {sum(r.get('ka_errors', 0) + r.get('nc_errors', 0) for r in rs)} socket errors"
        for label, rs in res.items()
        if sum(r.get("ka_errors", 0) + r.get("nc_errors", 0) for r in rs if "error" not in r)
    ]
    if errors:
        out.append("\nwrk errors (counted in no figure above, listed for honesty): " + "; ".join(errors) + "\n")
    out.append("")
    out += render_busy(res)
    out += render_unit_costs(res)
    out += render_targets(res)
    out += render_bounds(res, data.get("aes_cpu_per_gb"))
    if data.get("growth"):
        out += render_growth(data["growth"], a)
    if data.get("lossy"):
        out.append(data["lossy"])
    return "\n".join(out) + "\n"


def metric(res: dict, label: str, key: str, idx: int | None = None) -> float | None:
    """Median of `key` (or of its `idx`-th element) over a variant's successful repeats."""
    rs = [r for r in res.get(label, []) if "error" not in r and key in r]
    return med([r[key] if idx is None else r[key][idx] for r in rs])


def ratio_rows(res: dict) -> list[tuple[str, float | None, float | None, str, bool | None]]:
    def m(label: str, key: str, idx: int | None = None):
        return metric(res, label, key, idx)

    rows = []

    def target(name, ours, theirs, want, cmp="ge"):
        if ours is None or theirs is None or theirs == 0:
            rows.append((name, ours, theirs, f"– (want {'≥' if cmp == 'ge' else '≤'} {want}×)", None))
            return
        ratio = ours / theirs
        ok = ratio >= want if cmp == "ge" else ratio <= want
        rows.append((name, ours, theirs, f"{ratio:.2f}× (want {'≥' if cmp == 'ge' else '≤'} {want}×)", ok))

    D, FD, OD = "direct (no tunnel)", "frp default (TLS + tcpMux)", "ours default (TLS + tcpMux)"
    FP, OP, RH = "frp tcpMux off, TLS off", "ours tcpMux off, TLS off", "rathole 0.5 (tcp, plaintext)"
    target("default: 1-stream Gbit/s vs frp default", m(OD, "gbps1"), m(FD, "gbps1"), 2.0)
    target("default: 1-stream Gbit/s vs rathole plaintext", m(OD, "gbps1"), m(RH, "gbps1"), 1.0)
    target("default: 8-stream Gbit/s vs frp default", m(OD, "gbps8"), m(FD, "gbps8"), 2.0)
    target("default: 8-stream Gbit/s vs rathole plaintext", m(OD, "gbps8"), m(RH, "gbps8"), 1.0)
    target("no mux, no TLS: 1-stream Gbit/s vs direct", m(OP, "gbps1"), m(D, "gbps1"), 0.6)
    target("no mux, no TLS: CPU s/GB vs frp's splice path", m(OP, "cpu_per_gb"), m(FP, "cpu_per_gb"), 1.0, "le")
    target("default: keep-alive req/s vs rathole", m(OD, "ka_rps"), m(RH, "ka_rps"), 1.2)
    target("no mux, no TLS: keep-alive req/s vs rathole", m(OP, "ka_rps"), m(RH, "ka_rps"), 1.2)
    target("default: new conns/s vs frp default", m(OD, "nc_rps"), m(FD, "nc_rps"), 3.0)
    for side, i in (("frps", 0), ("frpc", 1)):
        target(
            f"default: {side} KiB per held conn vs frp's",
            m(OD, "held_kib", i),
            m(FD, "held_kib", i),
            0.25,
            "le",
        )
        target(
            f"no mux, no TLS: {side} KiB per held conn vs frp's",
            m(OP, "held_kib", i),
            m(FP, "held_kib", i),
            0.25,
            "le",
        )
    target("quic: 1-stream Gbit/s vs frp quic", m("ours quic", "gbps1"), m("frp quic", "gbps1"), 3.0)
    target("kcp (default tuning): 1-stream Gbit/s vs frp kcp", m("ours kcp", "gbps1"), m("frp kcp", "gbps1"), 10.0)
    # Tuning, not the default (bench/NOTES.md): one runtime thread per process instead of one per core.
    O1 = "ours default, 1 worker thread"
    target("informational, 1 worker thread: 1-stream vs frp default", m(O1, "gbps1"), m(FD, "gbps1"), 2.0)
    target("informational, 1 worker thread: 1-stream vs rathole", m(O1, "gbps1"), m(RH, "gbps1"), 1.0)
    target("informational, 1 worker thread: keep-alive req/s vs rathole", m(O1, "ka_rps"), m(RH, "ka_rps"), 1.2)
    # frp's own KCP tuning caps both at ~0.27 Gbit/s (bench/NOTES.md): shown, not a target.
    target("kcp (compat: frp's tuning, informational): 1-stream vs frp kcp", m("ours kcp (compat)", "gbps1"), m("frp kcp", "gbps1"), 10.0)
    return rows


def render_busy(res: dict) -> list[str]:
    """Whole-machine CPU during the runs: a run near all cores busy is CPU-bound (its figure is
    cores / CPU per unit of work), one below is bound by latency or scheduling. Steal time (the
    hypervisor running other guests on our cores) is shown apart: it is counted as busy."""
    rows = []
    for v in VARIANTS:
        ok = [r for r in res.get(v.label, []) if "error" not in r]
        cells = []
        for busy, steal in (("busy1", "steal1"), ("busy8", "steal8"), ("busy_ka", "steal_ka")):
            b = med([r[busy] for r in ok if busy in r])
            st = med([r[steal] for r in ok if steal in r])
            if b is None:
                cells.append("–")
            elif st is None:
                cells.append(f"{b:.2f}")
            else:
                cells.append(f"{b:.2f} ({st:.2f})")
        faults = [r["faults_per_gb"] for r in ok if "faults_per_gb" in r]
        if faults:
            srv, cli = med([f[0] for f in faults]), med([f[1] for f in faults])
            cells.append(f"{srv / 1e3:.1f}k + {cli / 1e3:.1f}k")
        else:
            cells.append("–")
        if any(c != "–" for c in cells):
            rows.append(f"| {v.label} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    out = [
        f"Machine CPU busy during the runs, in cores of {os.cpu_count()} (all processes; medians; "
        "in brackets the part stolen by the hypervisor for other guests, where recorded); and the "
        "minor page faults the tunnel's server + client took per GB moved in the 1-stream run:\n"
    ]
    out.append("| variant | 1 stream | 8 streams | keep-alive | page faults per GB srv + cli |")
    out.append("|---|---|---|---|---|")
    return out + rows + [""]


def render_unit_costs(res: dict) -> list[str]:
    """CPU per keep-alive request and per new connection: the tunnel's own, and the machine's."""
    rows = []
    for v in VARIANTS:
        ok = [r for r in res.get(v.label, []) if "error" not in r]
        cells = []
        for key in ("ka", "nc"):
            t = med([r[f"{key}_tunnel_us"] for r in ok if f"{key}_tunnel_us" in r])
            mc = med([r[f"{key}_machine_us"] for r in ok if f"{key}_machine_us" in r])
            b = med([r[f"busy_{key}"] for r in ok if f"busy_{key}" in r])
            cells += ["–" if t is None else f"{t:.1f}", "–" if mc is None else f"{mc:.1f}", "–" if b is None else f"{b:.2f}"]
        if any(c != "–" for i, c in enumerate(cells) if i % 3 != 2):
            rows.append(f"| {v.label} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    out = [
        "CPU per keep-alive request and per new connection (medians), in µs: the tunnel's server + "
        "client (utime+stime), and the whole machine's (every CPU's busy time, so nginx, wrk and "
        "the kernel's softirq work too), with the machine's busy cores. A rate is busy cores ÷ "
        "machine CPU per request:\n",
        "| variant | keep-alive: tunnel µs/req | machine µs/req | busy | new conn: tunnel µs/conn "
        "| machine µs/conn | busy |",
        "|---|---|---|---|---|---|---|",
    ]
    out += rows
    out.append("")
    rr = [row for row in unit_cost_rows(res) if row[1] is not None]
    if rr:
        out.append(
            "Keep-alive, rathole against ours per request (a ratio above 1: ours costs less). The "
            "machine ratio is the req/s ratio the two would show at the same machine busy:\n"
        )
        out.append("| comparison | ours µs | rathole µs | rathole ÷ ours |")
        out.append("|---|---|---|---|")
        for name, ours, theirs in rr:
            ratio = "–" if not ours or theirs is None else f"{theirs / ours:.2f}×"
            f = lambda x: "–" if x is None else f"{x:.1f}"  # noqa: E731
            out.append(f"| {name} | {f(ours)} | {f(theirs)} | {ratio} |")
        out.append("")
    return out


def unit_cost_rows(res: dict) -> list[tuple[str, float | None, float | None]]:
    def m(label: str, key: str):
        return metric(res, label, key)

    OD, RH = "ours default (TLS + tcpMux)", "rathole 0.5 (tcp, plaintext)"
    return [
        ("default: tunnel CPU per keep-alive request", m(OD, "ka_tunnel_us"), m(RH, "ka_tunnel_us")),
        ("default: machine CPU per keep-alive request", m(OD, "ka_machine_us"), m(RH, "ka_machine_us")),
    ]


def render_targets(res: dict) -> list[str]:
    out = ["### Targets (issue 5), ratios of the medians above\n"]
    out.append("| target | ours | reference | ratio | met |")
    out.append("|---|---|---|---|---|")
    for name, ours, theirs, ratio, ok in ratio_rows(res):
        f = lambda x: "–" if x is None else (f"{x:.3g}" if x < 100 else f"{x:,.0f}")  # noqa: E731
        out.append(f"| {name} | {f(ours)} | {f(theirs)} | {ratio} | {'–' if ok is None else ('yes' if ok else '**no**')} |")
    out.append("")
    return out


def bound_rows(res: dict, aes: float | None) -> list[tuple[str, float | None, float | None, float, bool | None]]:
    """Reference relays (bench/floor) against the throughput targets, in the same run, and the
    accounting bound they give: a run that keeps every core busy moves at most
    cores / (machine CPU s per GB). A TLS tunnel does at least what a plaintext relay on the same
    path does plus AES-GCM sealing and opening (`aes`: CPU s per GB, measured by `floor aes` in
    this run), so cores / (the cheaper plaintext relay's machine CPU per GB + aes) bounds it."""

    def m(label: str, key: str):
        return metric(res, label, key)

    def cost(label: str, streams: str):
        # machine CPU s per GB moved: busy cores over GB/s
        xs = [
            r["busy" + streams] / (r["gbps" + streams] / 8)
            for r in res.get(label, [])
            if "error" not in r and r.get("gbps" + streams)
        ]
        return med(xs)

    def bound(label: str, streams: str):
        c = cost(label, streams)
        return None if c is None or aes is None else 8 * (os.cpu_count() or 1) / (c + aes)

    D, FD, OD = "direct (no tunnel)", "frp default (TLS + tcpMux)", "ours default (TLS + tcpMux)"
    OP, ON, RH = "ours tcpMux off, TLS off", "ours tcpMux off", "rathole 0.5 (tcp, plaintext)"
    FM, FMP = FLOOR_LABELS["mux"], FLOOR_LABELS["mux-plain"]
    FS, FC = FLOOR_LABELS["splice"], FLOOR_LABELS["copy"]
    rows = []
    for streams in ("1", "8"):
        k = "gbps" + streams
        for what, b in (
            ("bound for TLS, one connection per stream (read/write relay + AES)", bound(FC, streams)),
            ("bound for TLS in one connection (mux relay + AES)", bound(FMP, streams)),
        ):
            rows += [
                (f"{streams} stream(s): {what} vs 2× frp default", b, m(FD, k), 2.0),
                (f"{streams} stream(s): {what} vs rathole plaintext", b, m(RH, k), 1.0),
            ]
        rows += [
            (f"{streams} stream(s): mux relay + AES vs rathole plaintext", m(FM, k), m(RH, k), 1.0),
            (f"{streams} stream(s): mux relay, no encryption vs rathole", m(FMP, k), m(RH, k), 1.0),
            (f"{streams} stream(s): read/write relay (plaintext) vs rathole", m(FC, k), m(RH, k), 1.0),
            (f"{streams} stream(s): ours default vs the mux relay + AES", m(OD, k), m(FM, k), 1.0),
            (f"{streams} stream(s): ours, tcpMux off (TLS per stream) vs rathole", m(ON, k), m(RH, k), 1.0),
        ]
    rows += [
        ("1 stream: splice relays (3 hops) vs 0.6× direct", m(FS, "gbps1"), m(D, "gbps1"), 0.6),
        ("1 stream: read/write relays (3 hops) vs 0.6× direct", m(FC, "gbps1"), m(D, "gbps1"), 0.6),
        ("1 stream: ours, no mux, no TLS vs the splice relays", m(OP, "gbps1"), m(FS, "gbps1"), 1.0),
    ]
    return [(n, a, b, w, None if a is None or not b else a / b >= w) for n, a, b, w in rows]


def render_bounds(res: dict, aes: float | None) -> list[str]:
    rows = bound_rows(res, aes)
    if all(a is None for _, a, _, _, _ in rows):
        return []
    aes_note = "not measured" if aes is None else f"{aes:.3f} CPU s per GB"
    out = [
        "### Reference relays (bench/floor) and the bounds they give, same run\n",
        "The reference relays do only what their path needs, in the plainest code (blocking threads, "
        "no runtime; `bench/floor/src/main.rs`): splice or read/write relays with one TCP connection "
        "per stream, and a relay that puts every stream in one connection in TLS-sized records, "
        "AES-128-GCM sealed and opened in place or not at all. A bound is the Gbit/s a TLS tunnel "
        "could reach with every core busy and nothing beyond the plaintext relay's work but AES-GCM "
        f"(seal + open on this CPU: {aes_note}, from `floor aes`).\n",
        "| comparison | Gbit/s | reference Gbit/s | ratio | reaches the target |",
        "|---|---|---|---|---|",
    ]
    for name, a, b, want, ok in rows:
        f = lambda x: "–" if x is None else f"{x:.2f}"  # noqa: E731
        ratio = "–" if ok is None else f"{a / b:.2f}× (want ≥ {want}×)"
        out.append(f"| {name} | {f(a)} | {f(b)} | {ratio} | {'–' if ok is None else ('yes' if ok else '**no**')} |")
    out.append("")
    return out


def aes_cost() -> float | None:
    """CPU s per GB for AES-128-GCM seal + open of 16 KiB records in place (cache-resident)."""
    try:
        out = run([str(FLOOR), "aes"], timeout=120)
    except Exception:  # noqa: BLE001 - a bound we cannot compute is shown as not measured
        return None
    m = re.search(r"working set 4 MiB: seal \+ open ([0-9.]+) CPU s per GB", out)
    return float(m.group(1)) if m else None


def render_growth(growth: dict, a: dict) -> list[str]:
    out = ["### Cost growth (default config: TLS + tcpMux)\n"]
    out.append(
        "RSS in MiB of server / client; CPU s = server + client CPU spent opening the connections "
        "of that step (from the previous count), or, for proxies, starting up and then idling 5 s. "
        "Medians over the repeats.\n"
    )
    held = a["growth_held"]
    out.append("| impl | " + " | ".join(f"{n} held: RSS srv / cli, CPU s" for n in held) + " |")
    out.append("|---|" + "---|" * len(held))
    for impl, runs in growth.items():
        if "@" in impl:
            continue
        cells = []
        for n in held:
            pts = [r["held"].get(str(n)) or r["held"].get(n) for r in runs if "error" not in r]
            pts = [p for p in pts if p]
            if not pts:
                cells.append("–")
                continue
            s = med([p["rss"][0] / 1024 for p in pts])
            c = med([p["rss"][1] / 1024 for p in pts])
            cpu = med([sum(p["open_cpu"]) for p in pts])
            cells.append(f"{s:.1f} / {c:.1f}, {cpu:.2f}")
        out.append(f"| {impl} | " + " | ".join(cells) + " |")
    out.append("")
    proxies = a["growth_proxies"]
    out.append(
        "| impl | "
        + " | ".join(f"{n} proxies: RSS srv / cli, startup CPU s, idle CPU s per 5 s" for n in proxies)
        + " |"
    )
    out.append("|---|" + "---|" * len(proxies))
    for impl in growth:
        cells = []
        for n in proxies:
            rs = [r for r in growth.get(f"{impl}@{n}", []) if "error" not in r]
            if not rs:
                cells.append("–")
                continue
            s = med([r["idle_rss"][0] / 1024 for r in rs])
            c = med([r["idle_rss"][1] / 1024 for r in rs])
            st = med([sum(r["startup_cpu"]) for r in rs])
            idle = med([sum(r["idle_cpu_5s"]) for r in rs])
            cells.append(f"{s:.1f} / {c:.1f}, {st:.2f}, {idle:.3f}")
        if "@" not in impl:
            out.append(f"| {impl} | " + " | ".join(cells) + " |")
    out.append("")
    return out


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def run_lossy(repeats: int, out_dir: Path) -> str:
    """Runs the lossy-link benchmark (bench/lossy/run.sh) and returns its report (its `###`
    heading sits inside the suite's section as is)."""
    out = out_dir / "lossy.md"
    env = dict(os.environ, OUT=str(out), REPS=str(repeats))
    p = subprocess.run([str(ROOT / "bench" / "lossy" / "run.sh")], env=env, timeout=3600)
    if p.returncode != 0 or not out.exists():
        return f"### Lossy link\n\nbench/lossy/run.sh failed (exit {p.returncode}).\n"
    return out.read_text()


def splice_results(path: Path, section: str) -> None:
    """Replaces the suite's section of RESULTS.md (between markers), keeping everything else."""
    begin, end = "<!-- suite:begin -->", "<!-- suite:end -->"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    block = f"{begin}\n{section}{end}\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail.lstrip("\n")
    else:
        lines = text.split("\n", 1)
        text = lines[0] + "\n\n" + block + "\n" + (lines[1].lstrip("\n") if len(lines) > 1 else "")
    path.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--secs", type=int, default=5, help="seconds per iperf3/wrk run")
    ap.add_argument("--held", type=int, default=1000, help="idle connections held per variant")
    ap.add_argument("--wrk-conns", type=int, default=64)
    ap.add_argument("--wrk-close-conns", type=int, default=32)
    ap.add_argument("--only", default="", help="regex: run only variants whose label matches")
    ap.add_argument(
        "--metrics",
        default="tput,rps,conns,held",
        help="comma list of what to measure per variant: tput (iperf3 1 and 8 streams, CPU/GB), "
        "rps (keep-alive wrk), conns (wrk with Connection: close), held (idle RSS per held conn)",
    )
    ap.add_argument("--growth", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--growth-held", default="10,100,1000,5000")
    ap.add_argument("--growth-proxies", default="1,10,100")
    ap.add_argument(
        "--lossy",
        action=argparse.BooleanOptionalAction,
        default=os.geteuid() == 0,
        help="also run bench/lossy/run.sh (needs root; default: when root)",
    )
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"), help="markdown file to update ('-': stdout only)")
    ap.add_argument("--json", default=str(ROOT / ".cache" / "bench" / "suite-latest.json"))
    ap.add_argument("--render", help="only render a saved JSON file")
    ap.add_argument(
        "--merge",
        action="append",
        default=[],
        help="with --render: overlay another run's JSON (a variant's figures in it replace the same figures)",
    )
    a = ap.parse_args()

    if a.render:
        data = json.loads(Path(a.render).read_text())
        for extra in a.merge:
            # Results of a later partial run (e.g. --only) replace those variants' rows.
            more = json.loads(Path(extra).read_text())
            for label, runs in more["results"].items():
                mine = data["results"].get(label)
                if mine and len(mine) >= len(runs) and all("error" not in r for r in runs):
                    # A run of a subset of --metrics: its figures replace those keys only.
                    for dst, src in zip(mine, runs):
                        dst.update(src)
                    replaced = set().union(*(r.keys() for r in runs))
                    for dst in mine[len(runs) :]:
                        for key in replaced:
                            dst.pop(key, None)
                else:
                    data["results"][label] = runs
            data["growth"].update(more.get("growth") or {})
            data["command"] += f"; then {more['command']}"
        section = render(data)
        print(section)
        if a.out != "-":
            splice_results(Path(a.out), section)
        return 0

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    needed = max(max(int(x) for x in a.growth_held.split(",")), a.held) * 2 + 1000
    if hard < needed:
        print(f"warning: fd limit {hard} < {needed}; held-connection figures may fail", file=sys.stderr)

    for tool in ("iperf3", "wrk", "nginx"):
        if not shutil.which(tool):
            print(f"suite: {tool} not found (bench/run.sh installs it)", file=sys.stderr)
            return 2
    for need in (FRP_DIR / "frps", FRP_DIR / "frpc", OURS_DIR / "frps", OURS_DIR / "frpc", RATHOLE, FLOOR):
        if not need.exists():
            print(f"suite: {need} missing (bench/run.sh fetches/builds it)", file=sys.stderr)
            return 2

    variants = [v for v in VARIANTS if re.search(a.only, v.label)]
    work = Path(tempfile.mkdtemp(prefix="frp-bench-"))
    procs = Procs(work)
    stop = {"now": False}

    def on_signal(signum, _frame):
        stop["now"] = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    data = {
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "bench/run.sh " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "versions": versions(),
        "args": {
            "repeats": a.repeats,
            "secs": a.secs,
            "held": a.held,
            "wrk_conns": a.wrk_conns,
            "wrk_close_conns": a.wrk_close_conns,
            "growth_held": [int(x) for x in a.growth_held.split(",")],
            "growth_proxies": [int(x) for x in a.growth_proxies.split(",")],
        },
        "results": {},
        "growth": {},
    }
    json_path = Path(a.json)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    if any(v.impl == "floor" for v in variants):
        data["aes_cpu_per_gb"] = aes_cost()
        print(f"AES-128-GCM seal + open: {data['aes_cpu_per_gb']} CPU s per GB", flush=True)
    try:
        svc = Services(procs, work)
        for rep in range(a.repeats):
            order = variants[:]
            random.shuffle(order)
            for v in order:
                t0 = time.monotonic()
                try:
                    r = measure_variant(v, svc, procs, work, a)
                except Exception as e:  # noqa: BLE001 - one failed variant must not end the run
                    r = {"error": str(e).replace("\n", " ")}
                data["results"].setdefault(v.label, []).append(r)
                print(f"[{rep + 1}/{a.repeats}] {v.label}: {json.dumps(r)} ({time.monotonic() - t0:.0f}s)", flush=True)
                json_path.write_text(json.dumps(data, indent=1))
        if a.growth:
            impls = [Variant("frp default", "frp"), Variant("ours default", "ours")]
            impls = [v for v in impls if re.search(a.only, v.label) or not a.only]
            for rep in range(a.repeats):
                for v in random.sample(impls, len(impls)):
                    try:
                        r = growth_point(v, svc, procs, work, data["args"]["growth_held"], 1)
                    except Exception as e:  # noqa: BLE001
                        r = {"error": str(e).replace("\n", " ")}
                    data["growth"].setdefault(v.label, []).append(r)
                    print(f"[growth {rep + 1}] {v.label}: {json.dumps(r)}", flush=True)
                    for n in data["args"]["growth_proxies"]:
                        try:
                            r = growth_point(v, svc, procs, work, [], n)
                        except Exception as e:  # noqa: BLE001
                            r = {"error": str(e).replace("\n", " ")}
                        data["growth"].setdefault(f"{v.label}@{n}", []).append(r)
                        print(f"[growth {rep + 1}] {v.label} {n} proxies: {json.dumps(r)}", flush=True)
                    json_path.write_text(json.dumps(data, indent=1))
    except KeyboardInterrupt:
        print("interrupted; reporting what was measured", file=sys.stderr)
    finally:
        procs.stop_all()
        try:
            svc.hold.close()  # type: ignore[possibly-undefined]
        except Exception:  # noqa: BLE001
            pass
        shutil.rmtree(work, ignore_errors=True)
    json_path.write_text(json.dumps(data, indent=1))
    if a.lossy and not stop["now"]:
        data["lossy"] = run_lossy(a.repeats, json_path.parent)
        json_path.write_text(json.dumps(data, indent=1))
    section = render(data)
    print(section)
    if a.out != "-":
        splice_results(Path(a.out), section)
        print(f"wrote {a.out} (raw: {json_path})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

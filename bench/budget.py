#!/usr/bin/env python3
"""Where the CPU of one unit of work goes, and what a target rate leaves for the tunnel.

On this machine every process of a benchmark (load generator, server, frps, frpc) shares the
same 2 cores, so a rate is set by the total CPU one unit of work costs:
`rate = cores / (load + tunnel)`. This tool measures, per unit (GB moved by one iperf3 stream,
keep-alive request, new connection), the CPU of the load side (iperf3 client and server, or wrk
and nginx) and of the tunnel split into user and kernel time (utime/stime from /proc), for the
variants asked for. For a target rate R it prints the tunnel budget `cores / R - load` next to
the tunnel's kernel time alone: when the kernel part already exceeds the budget, the target is
out of reach even if our user-space code cost nothing.

    python3 bench/budget.py [--variants REGEX] [--secs 4] [--repeats 3]

It uses the suite's tunnel setup (bench/suite.py) and needs what bench/run.sh installs.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402


def times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, all its threads included."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / suite.CLK_TCK, int(fields[12]) / suite.CLK_TCK


def children_times() -> tuple[float, float]:
    t = os.times()
    return t.children_user, t.children_system


def pids_of(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def measure(tunnel_pids: list[int], server_pids: list[int], cmd: list[str]) -> dict:
    """Runs the load command; returns CPU seconds of the tunnel (user, sys) and of the load
    side (the command itself plus the long-running servers) and the command's output."""
    t0 = [times(p) for p in tunnel_pids]
    s0 = [times(p) for p in server_pids]
    c0 = children_times()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    c1 = children_times()
    t1 = [times(p) for p in tunnel_pids]
    s1 = [times(p) for p in server_pids]
    tu = sum(b[0] - a[0] for a, b in zip(t0, t1))
    ts = sum(b[1] - a[1] for a, b in zip(t0, t1))
    load = sum(b[0] + b[1] - a[0] - a[1] for a, b in zip(s0, s1)) + (c1[0] + c1[1] - c0[0] - c0[1])
    return {"tunnel_user": tu, "tunnel_sys": ts, "load": load, "out": out}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=r"^(ours default|rathole|ours tcpMux off, TLS off|frp default)")
    ap.add_argument("--secs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cores", type=float, default=os.cpu_count() or 2)
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="frp-budget-"))
    procs = suite.Procs(work)
    rows: dict[str, dict[str, list[dict]]] = {}
    try:
        svc = suite.Services(procs, work)
        servers = pids_of(f"iperf3 -s -p {svc.iperf_port}") + pids_of("nginx: worker")
        variants = [v for v in suite.VARIANTS if re.search(a.variants, v.label)]
        for _ in range(a.repeats):
            for v in variants:
                t = suite.start_tunnel(v, svc, procs, work)
                try:
                    pids = t.pids()
                    time.sleep(0.5)
                    r = rows.setdefault(v.label, {})
                    m = measure(pids, servers, ["iperf3", "-c", "127.0.0.1", "-p", str(t.iperf), "-t", str(a.secs), "-J"])
                    import json

                    gb = json.loads(m["out"])["end"]["sum_received"]["bytes"] / 1e9
                    r.setdefault("GB (1 stream)", []).append({**m, "units": gb})
                    url = f"http://127.0.0.1:{t.http}/128.bin"
                    for name, extra, conns in (("keep-alive request", [], 64), ("new connection", ["-H", "Connection: close"], 32)):
                        m = measure(pids, servers, ["wrk", "-t", "2", "-c", str(conns), "-d", f"{a.secs}s", *extra, url])
                        n = int(re.search(r"(\d+) requests in", m["out"]).group(1))
                        r.setdefault(name, []).append({**m, "units": n})
                finally:
                    suite.stop_tunnel(t, procs)
    finally:
        procs.stop_all()

    scale = {"GB (1 stream)": (1.0, "s"), "keep-alive request": (1e6, "µs"), "new connection": (1e6, "µs")}
    print(f"CPU per unit of work, medians of {a.repeats} runs of {a.secs} s ({a.cores:g} cores shared by all processes)\n")
    print("| variant | unit | rate | load side | tunnel user | tunnel kernel | tunnel total |")
    print("|---|---|---|---|---|---|---|")
    for label, per_unit in rows.items():
        for unit, runs in per_unit.items():
            k, u = scale[unit]
            med = lambda key: statistics.median(x[key] / x["units"] * k for x in runs)  # noqa: E731
            rate = statistics.median(x["units"] / a.secs for x in runs)
            tu, ts = med("tunnel_user"), med("tunnel_sys")
            print(f"| {label} | {unit} | {rate:,.1f}/s | {med('load'):.2f} {u} | {tu:.2f} {u} | {ts:.2f} {u} | {tu + ts:.2f} {u} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

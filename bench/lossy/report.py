#!/usr/bin/env python3
"""Renders a lossy-link run (bench/lossy/run.sh) as markdown.

  report.py RUN_DIR        RUN_DIR holds results.tsv, meta and impair.log; prints markdown

results.tsv: one line per measurement, "phase<TAB>label<TAB>value". Phases: cap (link capacity),
gp@<loss> (goodput at that loss, value "Mbit/s udp_rcvbuf_drops=N"), latpath and latlo (ping-pong,
value "median_us p90_us"). A value starting with "ERR:" is a failure and carries its reason.
meta: key=value lines (machine, versions, sysctls, run parameters).
"""
import collections
import statistics
import sys

DIRECT = "direct (no proxy)"


def load(run_dir):
    rows = [l.rstrip("\n").split("\t", 2) for l in open(f"{run_dir}/results.tsv") if l.strip()]
    meta = {}
    for line in open(f"{run_dir}/meta"):
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            meta[k] = v
    try:
        impair = [l.rstrip() for l in open(f"{run_dir}/impair.log")]
    except OSError:
        impair = []
    return rows, meta, impair


class Notes:
    """Failure reasons, numbered once each, cited from the cells as "n/a [k]"."""

    def __init__(self):
        self.items = []

    def cite(self, reason):
        reason = reason.strip()
        if reason not in self.items:
            self.items.append(reason)
        return f"[{self.items.index(reason) + 1}]"


def main():
    rows, meta, impair = load(sys.argv[1])
    vals = collections.defaultdict(list)
    labels = []
    for phase, label, v in rows:
        vals[(phase, label)].append(v)
        if label not in labels:
            labels.append(label)
    losses = meta.get("param.losses", "0 1 3").split()
    notes = Notes()

    def nums(xs):
        return [float(x.split()[0]) for x in xs if not x.startswith("ERR")]

    def errs(xs):
        return [x[4:] for x in xs if x.startswith("ERR")]

    def gp_cell(xs):
        if not xs:
            return ""
        n, e = nums(xs), errs(xs)
        if not n:
            return "n/a " + notes.cite(e[0])
        m = statistics.median(n)
        s = f"**{m:.0f}**" if len(n) == 1 else f"**{m:.0f}** ({min(n):.0f}–{max(n):.0f})"
        if e:
            s += f", {len(e)} of {len(xs)} failed {notes.cite(e[0])}"
        return s

    def lat(phase, label):
        xs = vals.get((phase, label), [])
        ok = [x for x in xs if not x.startswith("ERR")]
        if not ok:
            return None, ("n/a " + notes.cite(errs(xs)[0])) if xs else ""
        # Several series (the direct baseline is measured before and after the variants): keep
        # the fastest, the one least disturbed by whatever else the machine was doing.
        return min(tuple(float(t) for t in x.split()) for x in ok)

    def lat_cell(phase, label):
        med, p90 = lat(phase, label)
        if med is None:
            return p90
        s = f"{med / 1000:.2f} (p90 {p90 / 1000:.2f})"
        base, _ = lat(phase, DIRECT)
        if base is not None and label != DIRECT:
            s += f", {(med - base) / 1000:+.2f}"
        return s

    p = lambda k: meta.get(k, "?")  # noqa: E731
    print(f"### Lossy link, {p('date')}")
    print()
    print(f"- machine: {p('cpu')}; kernel {p('kernel')}; load average {p('load.start')} at the"
          f" start, {p('load.end')} at the end")
    print(f"- frp: {p('frp')}; frp-rs: {p('ours')}; {p('iperf3')}")
    print(f"- command: `{p('command')}` with {p('params')}")
    rl = "the same loss" if p("param.rloss") == "1" else "no loss"
    print(f"- link (bench/lossy/impair): frps→frpc +{p('param.delay')} ms and the loss rate;"
          f" frpc→frps +{p('param.rdelay')} ms, {rl}; MTU 1500")
    print(f"- TCP congestion control (S / C namespace): {p('cc.S')} / {p('cc.C')};"
          f" {p('buffers')}")
    cap = nums(vals.get(("cap", DIRECT), []))
    if cap:
        runs = ", ".join(f"{c:.0f}" for c in cap)
        print(f"- link capacity, no delay, no loss, direct TCP: {statistics.median(cap):.0f}"
              f" Mbit/s (runs: {runs})")
    print()
    print("Goodput in Mbit/s, median (min–max) over the repeats, one TCP stream from the frps"
          " side to the frpc side; round trips in ms, median (p90), and the median added to the direct one:")
    print()
    print("| variant | " + " | ".join(f"{x} % loss" for x in losses)
          + " | RTT on loopback, ms | RTT over the path, ms |")
    print("|---|" + "---|" * len(losses) + "---|---|")
    for label in labels:
        cells = [gp_cell(vals.get(("gp@" + x, label), [])) for x in losses]
        print(f"| {label} | " + " | ".join(cells)
              + f" | {lat_cell('latlo', label)} | {lat_cell('latpath', label)} |")
    if notes.items:
        print()
        for i, reason in enumerate(notes.items, 1):
            print(f"[{i}] {reason}  ")

    targets(vals, losses, nums, lat)

    drops = []
    for label in labels:
        cells = []
        for x in losses:
            d = [int(v.split("udp_rcvbuf_drops=")[1]) for v in vals.get(("gp@" + x, label), [])
                 if "udp_rcvbuf_drops=" in v]
            cells.append(f"{statistics.median(d):.0f}" if d else "")
        if any(c not in ("", "0") for c in cells):
            drops.append(f"| {label} | " + " | ".join(cells) + " |")
    if drops:
        print()
        print("UDP datagrams dropped on the frpc side because a socket receive buffer was full"
              " (median per run):")
        print()
        print("| variant | " + " | ".join(f"{x} % loss" for x in losses) + " |")
        print("|---|" + "---|" * len(losses))
        print("\n".join(drops))
    print()
    print("Link counters (`impair`, the last run at each setting):")
    print()
    print("```")
    for line in impair:
        if line.startswith("impair ") or line.startswith("=="):
            print(line)
    print("```")


def targets(vals, losses, nums, lat):
    """The lossy-link targets of the transports issue, as ratios of this run's medians."""

    def gp(label, loss):
        n = nums(vals.get(("gp@" + loss, label), []))
        return statistics.median(n) if n else None

    rows = []

    def ratio(name, ours, ref, want):
        if ours is None or ref is None or ref == 0:
            f = lambda x: "–" if x is None else f"{x:.0f}"  # noqa: E731
            rows.append(f"| {name} | {f(ours)} | {f(ref)} | – | – |")
            return
        r = ours / ref
        ok = "yes" if r >= want else "**no**"
        rows.append(f"| {name} | {ours:.0f} | {ref:.0f} | {r:.2f}× (want ≥ {want}×) | {ok} |")

    for loss in losses:
        if loss != "0":
            ratio(f"our QUIC vs direct TCP, {loss} % loss", gp("ours quic (bbr)", loss),
                  gp(DIRECT, loss), 0.8)
            ratio(f"our QUIC vs frp's QUIC, {loss} % loss", gp("ours quic (bbr)", loss),
                  gp("frp quic", loss), 50)
        ratio(f"our KCP (fast) vs frp's KCP, {loss} % loss", gp("ours kcp (fast)", loss),
              gp("frp kcp", loss), 2)
    ours, _ = lat("latlo", "ours kcp (fast)")
    base, _ = lat("latlo", DIRECT)
    if ours is not None and base is not None:
        added = (ours - base) / 1000
        ok = "yes" if added <= 2 else "**no**"
        rows.append(f"| our KCP (fast) added RTT on loopback | {added:+.2f} ms | | want ≤ 2 ms | {ok} |")
    print()
    print("Targets of the transports issue (ratios of the medians above):")
    print()
    print("| target | ours | reference | ratio | met |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

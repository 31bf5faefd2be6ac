#!/usr/bin/python3
"""Turn the figures of bench/compare.sh into one markdown table.

  compare_table.py RESULTS.tsv META.tsv [--out FILE] [--doc PERFORMANCE.md]

RESULTS.tsv holds "server<TAB>key<TAB>value" lines, META.tsv "key<TAB>value"
(date, machine, versions). The table goes to stdout, and to FILE with
--out; --doc replaces the "## Comparison" section of that file (and only
that section: other sections belong to other benchmarks).
"""

import argparse
import os
import re
import sys

PEERS = [("dnsmasq", "dnsmasq"), ("unbound", "Unbound")]
WORKLOADS = [
    ("hit", "cache hit"),
    ("blocked", "blocked"),
    ("miss", "cache miss"),
    ("burst", "burst, 1,000 outstanding"),
]
METRICS = [
    ("cpu_us", "CPU per answer, µs", "%.2f"),
    ("qps", "queries per second", "%.0f"),
    ("lost", "queries lost", "%.0f"),
    ("avg_us", "average latency, µs", "%.0f"),
    ("p99_us", "99th percentile latency, µs", "%.0f"),
]
OTHER = [
    ("startup_s", "1M list: start-up to first answer, s", "%.2f"),
    ("startup_cpu_s", "1M list: CPU used by then, s", "%.2f"),
    ("rss_load_mb", "1M list: resident size after load, MB", "%.1f"),
    ("rss_end_mb", "resident size after the runs, MB", "%.1f"),
]
# Issue 6's targets: (op, bound) per key.
TARGETS = {
    "hit.cpu_us": ("<=", 4.6),
    "blocked.cpu_us": ("<=", 5.0),
    "miss.cpu_us": ("<=", 20),
    "miss.qps": (">=", 45000),
    "burst.lost": ("<=", 0),
    "startup_s": ("<=", 0.5),
    "rss_load_mb": ("<=", 40),
}
EXPECT_RCODE = {"hit": "NOERROR", "blocked": "NXDOMAIN", "miss": "NOERROR",
                "burst": "NOERROR"}


def load(results):
    r = {}
    with open(results) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3:
                r.setdefault(parts[0], {})[parts[1]] = parts[2]
    return r


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def fmt(v, f):
    n = num(v)
    if n is None:
        return v if v else "–"
    s = f % n
    if f == "%.0f" and abs(n) >= 10000:
        s = "{:,}".format(int(round(n)))
    return s


def ratio(a, b):
    a, b = num(a), num(b)
    if a is None or b is None or b == 0:
        return "–"
    return "%.2f×" % (a / b)


def target(key, v):
    if key not in TARGETS:
        return ""
    op, bound = TARGETS[key]
    n = num(v)
    shown = "{:,}".format(bound) if bound >= 10000 else "%g" % bound
    text = ("≤ " if op == "<=" else "≥ ") + shown
    if n is None:
        return text
    ok = n <= bound if op == "<=" else n >= bound
    return text + (" ✓" if ok else " ✗")


def table(r):
    dw = r.get("dnswarden", {})
    two = r.get("dnswarden-2t")
    head = ["", "dnswarden"] + [p[1] for p in PEERS]
    head += ["dnswarden ÷ " + p[1] for p in PEERS] + ["issue 6 target"]
    if two is not None:
        head.append("dnswarden, threads: 2")
    rows = [head, ["---"] + ["---:"] * (len(head) - 1)]

    def row(label, key, f):
        cells = [label, fmt(dw.get(key), f)]
        cells += [fmt(r.get(p, {}).get(key), f) for p, _ in PEERS]
        cells += [ratio(dw.get(key), r.get(p, {}).get(key)) for p, _ in PEERS]
        cells.append(target(key, dw.get(key)))
        if two is not None:
            cells.append(fmt(two.get(key), f))
        rows.append(cells)

    for w, wname in WORKLOADS:
        for m, mname, f in METRICS:
            row("%s: %s" % (wname, mname), "%s.%s" % (w, m), f)
    row("burst: dropped by a full receive buffer, server's socket",
        "burst.listen_drops", "%.0f")
    row("burst: dropped by a full receive buffer, any UDP socket",
        "burst.rcvbuf_drops", "%.0f")
    for key, label, f in OTHER:
        row(label, key, f)
    return "\n".join("| " + " | ".join(c) + " |" for c in rows)


def notes(r):
    out = []
    echo = r.get("echo", {})
    if "hit.cpu_us" in echo:
        out.append("Floor: a bare UDP echo loop (bench/udp_echo.c, one "
                   "recvfrom and one sendto a query) costs %s µs of CPU per "
                   "query at %s queries a second on this machine."
                   % (echo["hit.cpu_us"], fmt(echo.get("hit.qps"), "%.0f")))
    for name in ("dnswarden", "dnswarden-2t"):
        s = r.get(name)
        if not s:
            continue
        c = dict(kv.split("=", 1) for kv in s.get("counters", "").split())
        if "blocked" in c:
            out.append("%s: %s blocked answers, %s rows in the attempt "
                       "log (%s written, %s dropped by the full queue); "
                       "counters: %s." % (
                           name, c.get("blocked"), s.get("log_rows", "?"),
                           c.get("log_rows_written", "?"),
                           c.get("log_rows_dropped", "?"),
                           s.get("counters", "").strip()))
    two = r.get("dnswarden-2t")
    if two:
        out.append("dnswarden, threads: 2 (server and dnsperf both on CPUs "
                   "0-1, dnsperf -T 2): %s threads in the process; CPU ticks "
                   "of each thread (TID:ticks; the main thread's TID is %s) "
                   "in the cache-hit run: %s; blocked: %s; miss: %s. "
                   "With threads: 1: hit %s; blocked %s."
                   % (two.get("nthreads", "?"), two.get("pid", "?"),
                      two.get("hit.threads", "?"),
                      two.get("blocked.threads", "?"),
                      two.get("miss.threads", "?"),
                      r.get("dnswarden", {}).get("hit.threads", "?"),
                      r.get("dnswarden", {}).get("blocked.threads", "?")))
    noisy = []
    for name in ("dnswarden", "dnsmasq", "unbound", "dnswarden-2t"):
        s = r.get(name)
        if s:
            noisy.append("%s %s" % (name, "/".join(
                "%s%s" % (s.get(w + ".others_pct", "?"),
                          "" if s.get(w + ".attempts", "1") == "1" else
                          " (best of %s)" % s.get(w + ".attempts"))
                for w, _ in WORKLOADS)))
    if noisy:
        out.append("CPU used by other processes during each run (hit/"
                   "blocked/miss/burst), in %% of a CPU, on CPU 0 (on both "
                   "CPUs for threads: 2); a run over %s %% is repeated and "
                   "the quietest kept: %s." % (
                       r.get("_", {}).get("max_noise", "10"),
                       "; ".join(noisy)))
    rss = []
    for name in ("dnswarden", "dnsmasq", "unbound", "dnswarden-2t"):
        s = r.get(name)
        if s:
            rss.append("%s %s → %s" % (name, s.get("rss_load_mb", "?"), " → ".join(
                s.get(w + ".rss_mb", "?") for w, _ in WORKLOADS)))
    if rss:
        out.append("Resident size in MB after load, then after each run "
                   "(hit → blocked → miss → burst): %s." % "; ".join(rss))
    bad = []
    for name, s in sorted(r.items()):
        if name in ("nsd", "_"):
            continue
        for w, _ in WORKLOADS:
            rc = s.get(w + ".rcodes")
            if rc and not re.fullmatch(r"%s \S+ \(100\.00%%\)"
                                       % EXPECT_RCODE[w], rc.strip()):
                bad.append("%s %s: %s" % (name, w, rc.strip()))
    if bad:
        out.append("Unexpected response codes: " + "; ".join(bad) + ".")
    return out


def section(r, meta):
    lines = [
        "## Comparison",
        "",
        "Latest run of `bench/compare.sh` (issue 6), %s, on %s CPUs (%s), "
        "%s. Versions: %s; dnsmasq %s, Unbound %s, NSD %s, dnsperf %s." % (
            meta.get("date", "?"), meta.get("nproc", "?"),
            meta.get("cpu", "?"), meta.get("kernel", "?"),
            meta.get("dnswarden", "?"), meta.get("dnsmasq", "?"),
            meta.get("unbound", "?"), meta.get("nsd", "?"),
            meta.get("dnsperf", "?")),
        "",
        "Each server is a caching forwarder to NSD on loopback with the same "
        "%s-name blocklist, pinned to CPU 0, dnsperf (-c %s, %s s a "
        "workload) and NSD on CPU 1. CPU per answer is user + system time "
        "of all the server's threads divided by the answers; it is the "
        "figure to compare, since queries per second are capped by dnsperf. "
        "Ratios are dnswarden's figure over the peer's (below 1 is better "
        "for CPU, latency, start-up and size; above 1 for queries per "
        "second). Latencies are those of a saturated closed loop (100 "
        "queries outstanding, 1,000 in the burst), so they are mostly "
        "queueing: about outstanding ÷ qps. Load average at the start and "
        "the end of the run: %s." % (
            "{:,}".format(int(meta.get("count", 0) or 0)),
            meta.get("clients", "?"), meta.get("duration", "?"),
            meta.get("loadavg", "?")),
        "",
        table(r),
        "",
    ]
    for n in notes(r):
        lines += ["- " + n]
    return "\n".join(lines) + "\n"


def update_doc(path, text):
    """Replace the "## Comparison" section of path (up to the next "## ")."""
    old = open(path).read() if os.path.exists(path) else \
        "# dnswarden performance\n"
    m = re.search(r"^## Comparison\n.*?(?=^## |\Z)", old, re.M | re.S)
    if m:
        new = old[:m.start()] + text + ("\n" if m.end() < len(old) else "") \
            + old[m.end():]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    with open(path + ".tmp", "w") as f:
        f.write(new)
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("meta")
    ap.add_argument("--out")
    ap.add_argument("--doc")
    a = ap.parse_args()
    r = load(a.results)
    meta = {}
    with open(a.meta) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            meta[k] = v
    text = section(r, meta)
    sys.stdout.write(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    if a.doc:
        update_doc(a.doc, text)


if __name__ == "__main__":
    main()

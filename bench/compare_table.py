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
import textwrap

PEERS = [("dnsmasq", "dnsmasq"), ("unbound", "Unbound")]
WORKLOADS = [
    ("hit", "cache hit"),
    ("blocked", "blocked"),
    ("miss", "cache miss"),
    ("burst", "burst, 1,000 outstanding"),
    ("dotmiss", "cache miss over TLS (warm)"),
    ("dotburst", "burst over TLS, 1,000 outstanding"),
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
    "dotburst.lost": ("<=", 0),
    "startup_s": ("<=", 0.5),
    "rss_load_mb": ("<=", 40),
}
EXPECT_RCODE = {"hit": "NOERROR", "blocked": "NXDOMAIN", "miss": "NOERROR",
                "burst": "NOERROR", "dotmiss": "NOERROR", "dotburst": "NOERROR"}


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
    if f == "%.0f" and abs(n) >= 1000:
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


def peers(r):
    """The peers that ran, and a baseline dnswarden if one did."""
    ps = [p for p in PEERS if p[0] in r]
    if "baseline" in r:
        ps.append(("baseline", "baseline"))
    return ps


def table(r):
    dw = r.get("dnswarden", {})
    two = r.get("dnswarden-2t")
    ps = peers(r)
    head = ["", "dnswarden"] + [p[1] for p in ps]
    head += ["dnswarden ÷ " + p[1] for p in ps] + ["issue 6 target"]
    if two is not None:
        head.append("dnswarden, threads: 2")
    rows = [head, ["---"] + ["---:"] * (len(head) - 1)]

    def row(label, key, f):
        cells = [label, fmt(dw.get(key), f)]
        cells += [fmt(r.get(p, {}).get(key), f) for p, _ in ps]
        cells += [ratio(dw.get(key), r.get(p, {}).get(key)) for p, _ in ps]
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
    for name in ("baseline", "dnswarden", "dnswarden-2t"):
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
    def tids(srv, w):
        pid = srv.get("pid", "")
        return ", ".join(("main" if t.split(":")[0] == pid else "thread " +
                         t.split(":")[0]) + " " + t.split(":")[1]
                        for t in srv.get(w + ".threads", "").split()) or "?"

    dw = r.get("dnswarden", {})
    if "dotmiss.cpu_us" in dw:
        ub = r.get("unbound", {})
        out.append("DNS over TLS (issue 16): a cache miss forwarded over TLS "
                   "costs %s the UDP miss (target ≤ 1.5×) and %s "
                   "Unbound's over TLS to the same NSD (target < 1×). "
                   "dnswarden's TLS counters: %s." % (
                       ratio(dw.get("dotmiss.cpu_us"), dw.get("miss.cpu_us")),
                       ratio(dw.get("dotmiss.cpu_us"), ub.get("dotmiss.cpu_us")),
                       dw.get("dot_counters", "?").strip() or "?"))
    two = r.get("dnswarden-2t")
    if two:
        one = r.get("dnswarden", {})
        out.append("dnswarden, threads: 2 (server and dnsperf both on CPUs "
                   "0-1, dnsperf -T 2): %s threads in the process. CPU "
                   "ticks of each thread in the cache-hit run: %s; blocked: "
                   "%s; miss: %s. With threads: 1, hit: %s; blocked: %s."
                   % (two.get("nthreads", "?"), tids(two, "hit"),
                      tids(two, "blocked"), tids(two, "miss"),
                      tids(one, "hit"), tids(one, "blocked")))
    rss = []
    for name in ("dnswarden", "dnsmasq", "unbound", "dnswarden-2t"):
        s = r.get(name)
        if s:
            rss.append("%s %s → %s" % (name, s.get("rss_load_mb", "?"), " → ".join(
                s.get(w + ".rss_mb", "?") for w, _ in WORKLOADS)))
    if rss:
        out.append("Resident size in MB after load, then after each run "
                   "(hit → blocked → miss → burst, then over TLS: miss → "
                   "burst): %s." % "; ".join(rss))
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


def conditions(r):
    """How busy the machine was during each run, as a second table."""
    rows = [["run", "others' CPU, % of a CPU", "CPU 0 busy, %",
             "CPU 1 busy, %", "NSD, % of a CPU", "attempts"],
            ["---", "---:", "---:", "---:", "---:", "---:"]]
    for name in ("echo", "baseline", "dnswarden", "dnsmasq", "unbound",
                 "dnswarden-2t"):
        srv = r.get(name)
        if not srv:
            continue
        for w, wname in WORKLOADS:
            if w + ".others_pct" not in srv:
                continue
            cells = [srv.get(w + "." + k, "–") for k in
                     ("others_pct", "cpu0_pct", "cpu1_pct", "nsd_pct",
                      "attempts")]
            for i in (1, 2):    # ticks and wall time: cap at 100 %
                if num(cells[i]) is not None and num(cells[i]) > 100:
                    cells[i] = "100"
            rows.append(["%s, %s" % (name, wname)] + cells)
    return "\n".join("| " + " | ".join(c) + " |" for c in rows)


HOW = """\
### How it is measured

- NSD on loopback is the upstream, serving `*.bench.test` (TTL one day)
  with response rate limiting off. dnswarden, dnsmasq and Unbound are each
  a caching forwarder to it on their own loopback port, with the same
  generated blocklist (dnswarden: a `format: domains` import; dnsmasq:
  `address=/name/`; Unbound: `local-zone: "name." always_nxdomain`) and
  comparable caches (100,000 entries; 64 MiB for dnswarden and Unbound).
  dnswarden logs every blocked query to SQLite as in production, with
  the rate limit off; the others do not log.
- Each server is pinned to CPU 0; dnsperf and NSD share CPU 1. A gentle
  pass at 5,000 queries a second fills the caches first.
- Workloads: cache hit (10,000 names replayed), blocked (listed names and
  names below them), cache miss (names never asked before, so each is
  forwarded), and a burst of cache misses with 1,000 queries outstanding
  instead of 100.
- CPU per answer is the user + system time of all the server's threads
  (`/proc/PID/stat`) over the run, divided by the answers. It is the
  figure to compare: queries per second are capped by dnsperf and by
  CPU 1, and latencies of a saturated closed loop are mostly queueing
  (about outstanding ÷ queries per second); the 99th percentile comes from
  dnsperf's per-query output (`-v`).
- The floor is a bare UDP echo loop (`bench/udp_echo.c`, one `recvfrom`
  and one `sendto` a query) under the cache-hit load.
- The machine is shared: each run records the CPU that other processes
  took meanwhile; a run where they took over {max_noise} % of a CPU is
  repeated once and the quieter attempt kept (see the conditions table).
- Start-up is the time from exec until the server answers a blocked name
  with NXDOMAIN, and the CPU it used by then; resident size is VmRSS.
- The last column runs dnswarden with `server.threads: 2`; the server and
  dnsperf (two threads) then share CPUs 0 and 1.
- Over TLS: the same NSD also serves DNS over TLS on a port of its own,
  with a certificate from a CA made for the run; dnswarden (an `upstreams`
  entry with `tls_name`) and Unbound (`forward-tls-upstream`) forward
  cache misses to it. A one-second pass opens the connections first, so
  the figures are for warm connections.
"""

READING = """\
### Reading the figures

- Compare CPU per answer first; queries per second follow it only while
  CPU 1 (dnsperf and NSD) has room, which the conditions table shows.
- A loss in the burst shows where it happened: a datagram dropped because
  the server's socket receive buffer was full is counted by the kernel
  (`/proc/net/udp`) and listed in its own row.
- Start-up and resident size count everything the server does with the
  list; the resident size after the runs adds the cache and, for
  dnswarden, the attempt-log queue (per-run figures in the notes).
"""

REPEAT = """\
### Repeat

```sh
bench/compare.sh                    # about 6 minutes; installs what it needs
bench/compare.sh --quick            # 3 s a workload, no repeats: 2-3 minutes
bench/compare.sh --doc              # also rewrite this section
bench/compare.sh --profile DIR      # then perf stat and perf record of
                                    # dnswarden for hit, blocked and miss
bench/compare.sh --peers none --baseline OLD   # an A/B of two dnswarden
                                    # builds in one run, without the peers
bench/compare.sh --peers none --baseline OLD --set 'KEY: VALUE'
                                    # the same, with a setting that only
                                    # the new build gets
bench/miss_instructions.sh OLD NEW  # instructions a cache miss costs,
                                    # under callgrind: an A/B that a busy
                                    # machine does not blur
```

Everything generated (the lists, about 100 MB, configurations and dnsperf
output) lives in a temporary directory removed at exit (`--keep` keeps
it); servers listen on free loopback ports and every run is time-bounded.
"""


def wrap(text):
    return "\n".join(textwrap.wrap(text, 74, break_on_hyphens=False))


def section(r, meta):
    max_noise = r.get("_", {}).get("max_noise", "10")
    lines = [
        "## Comparison",
        "",
        wrap("What it has to do: do the work that dnswarden shares with "
             "dnsmasq (the engine inside Pi-hole) and Unbound with "
             "local-zone blocking faster and with less memory than both, "
             "measured side by side on one machine in one run (issue 6; "
             "its targets are the table's last but one column)."),
        "",
        HOW.format(max_noise=max_noise),
        "### Figures",
        "",
        wrap("Run of %s on %s CPUs (%s), %s; %s; dnsmasq %s, Unbound %s, NSD %s, "
        "dnsperf %s. Blocklist of %s names, %s s a workload, dnsperf -c %s. "
        "Load average at the start and the end: %s. Ratios are dnswarden's "
        "figure over the peer's: below 1 is better for CPU, latency, loss, "
        "start-up and size, above 1 for queries per second." % (
            meta.get("date", "?"), meta.get("nproc", "?"),
            meta.get("cpu", "?"), meta.get("kernel", "?"),
            meta.get("dnswarden", "?"), meta.get("dnsmasq", "?"),
            meta.get("unbound", "?"), meta.get("nsd", "?"),
            meta.get("dnsperf", "?"),
            "{:,}".format(int(meta.get("count", 0) or 0)),
            meta.get("duration", "?"), meta.get("clients", "?"),
            meta.get("loadavg", "?"))),
        "",
        table(r),
        "",
    ]
    for n in notes(r):
        lines += textwrap.wrap(n, 74, initial_indent="- ",
                               subsequent_indent="  ",
                               break_on_hyphens=False)
    lines += [
        "",
        wrap("Conditions of each run: CPU taken by other processes "
             "meanwhile (on CPU 0, or on both CPUs for threads: 2), how "
             "busy each CPU was in all, and NSD's share."),
        "",
        conditions(r),
        "",
        READING,
        REPEAT,
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


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

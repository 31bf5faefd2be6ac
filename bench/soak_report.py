#!/usr/bin/python3
"""Judge a bench/soak.sh run from the files it left in its directory.

  soak_report.py DIR

Reads params.json, rss.tsv, dnsperf-udp.txt, dnsperf-tcp.txt, abuse.json,
check.json, stats-{start,warm,end}.txt, daemon.stderr and valgrind.log;
prints the figures and one PASS/FAIL line per check, writes
summary.json, and exits 1 if any check failed.
"""

import json
import os
import re
import sys

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:",
                   "LeakSanitizer", "Sanitizer:DEADLYSIGNAL")


def read(d, name, default=""):
    try:
        with open(os.path.join(d, name), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return default


def counters(text):
    return {m.group(1): int(m.group(2)) for m in
            re.finditer(r"dnswarden: stats: (\w+) (\d+)", text)}


def dnsperf(text):
    out = {}
    pats = {"sent": r"Queries sent:\s+(\d+)",
            "completed": r"Queries completed:\s+(\d+)",
            "lost": r"Queries lost:\s+(\d+)",
            "interrupted": r"Queries interrupted:\s+(\d+)",
            "qps": r"Queries per second:\s+([\d.]+)",
            "runtime": r"Run time \(s\):\s+([\d.]+)",
            "latency_avg": r"Average Latency \(s\):\s+([\d.]+)",
            "latency_max": r"Average Latency \(s\):.*max ([\d.]+)"}
    for k, p in pats.items():
        m = re.search(p, text)
        if m:
            out[k] = float(m.group(1)) if "." in m.group(1) else \
                int(m.group(1))
    m = re.search(r"Response codes:\s+(.*)", text)
    if m:
        out["rcodes"] = {k: int(v) for k, v in
                         re.findall(r"([A-Z]+) (\d+) \(", m.group(1))}
    # -S: "<time>: <qps>" lines, the rate of each interval.
    # The first line comes as dnsperf starts, before any query.
    out["intervals"] = [float(x) for x in
                        re.findall(r"^\s*[\d.]+: ([\d.]+)\s*$", text,
                                   re.M)][1:]
    return out


def rss_series(text):
    rows = []
    for line in text.splitlines()[1:]:
        f = line.split("\t")
        if len(f) == 7 and all(x.strip().isdigit() for x in f):
            rows.append(tuple(int(x) for x in f))
    return rows


def slope_mb_per_min(pts):
    """Least-squares slope of (t_ms, rss_kb) points, in MB a minute."""
    if len(pts) < 3:
        return 0.0
    n = len(pts)
    mx = sum(t for t, _ in pts) / n
    my = sum(r for _, r in pts) / n
    sxx = sum((t - mx) ** 2 for t, _ in pts)
    if sxx == 0:
        return 0.0
    sxy = sum((t - mx) * (r - my) for t, r in pts)
    return sxy / sxx * 60000 / 1024


def main():
    d = sys.argv[1]
    p = json.loads(read(d, "params.json"))
    mode = p["mode"]
    udp = dnsperf(read(d, "dnsperf-udp.txt"))
    tcp = dnsperf(read(d, "dnsperf-tcp.txt"))
    try:
        ab = json.loads(read(d, "abuse.json") or "{}")
    except ValueError:
        ab = {}
    try:
        chk = json.loads(read(d, "check.json") or "{}")
    except ValueError:
        chk = {}
    c0 = counters(read(d, "stats-start.txt"))
    cw = counters(read(d, "stats-warm.txt"))
    ce = counters(read(d, "stats-end.txt"))
    cx0 = counters(read(d, "stats-evict0.txt"))
    cx1 = counters(read(d, "stats-evict1.txt"))
    try:
        evict = json.loads(read(d, "evict.json") or "{}")
    except ValueError:
        evict = {}
    err = read(d, "daemon.stderr")
    vg = read(d, "valgrind.log")
    rss = rss_series(read(d, "rss.tsv"))

    # ---- resident size ----
    warm_ms = p["load_ms"] * p["warm_pct"] / 100
    load = [r for r in rss if r[0] <= p["load_ms"]]
    after = [r for r in load if r[0] >= warm_ms]
    rss_start = load[0][1] if load else 0
    rss_warm = after[0][1] if after else 0
    rss_max = max(r[1] for r in after) if after else 0
    rss_end = load[-1][1] if load else 0
    # The same without the attempt log's queue (its touched part).
    rest = [(r[0], r[1] - r[5]) for r in after]
    rest_warm = rest[0][1] if rest else 0
    rest_max = max(x[1] for x in rest) if rest else 0
    ring_warm = after[0][5] if after else 0
    ring_max = max((r[5] for r in load), default=0)
    allowed = max(p["rss_slack_mb"] * 1024, rest_warm * p["rss_slack_pct"] / 100)
    slope = slope_mb_per_min([(r[0], r[1]) for r in after])
    slope_rest = slope_mb_per_min(rest)
    wal_max = max((r[6] for r in load), default=0)
    hz = p["hz"]
    cpu_pct = 0.0
    if len(after) >= 2 and after[-1][0] > after[0][0]:
        cpu_pct = (after[-1][4] - after[0][4]) / hz / \
            ((after[-1][0] - after[0][0]) / 1000) * 100
    fds_max = max((r[2] for r in load), default=0)

    # ---- checks ----
    checks = []

    def check(name, ok, detail):
        checks.append((name, bool(ok), detail))

    if mode == "plain" and not p["ring_size_kb"]:
        check("rss_flat", rss_max - rss_warm <= allowed,
              "whole process, attempt log queue included: max after "
              "warm-up %.1f MB, at end of warm-up %.1f MB: %+.1f MB, "
              "allowed +%.1f MB; largest WAL %.1f MB" %
              (rss_max / 1024, rss_warm / 1024,
               (rss_max - rss_warm) / 1024, allowed / 1024,
               wal_max / 1024))
    elif mode == "plain":
        check("rss_flat", rest_max - rest_warm <= allowed,
              "without the attempt log's queue: max after warm-up %.1f MB, "
              "at end of warm-up %.1f MB: %+.1f MB, allowed +%.1f MB "
              "(whole process %+.1f MB; the queue's touched part %.1f MB "
              "at the end of warm-up, %.1f MB at most, bound %.1f MB)" %
              (rest_max / 1024, rest_warm / 1024,
               (rest_max - rest_warm) / 1024, allowed / 1024,
               (rss_max - rss_warm) / 1024, ring_warm / 1024,
               ring_max / 1024, p["ring_size_kb"] / 1024))
    # Every datagram sent during the load either reached the daemon (its
    # queries_udp counter, from before the load to just after it) or was
    # dropped by the kernel on its socket.
    got = cx0.get("queries_udp", 0) - c0.get("queries_udp", 0)
    sent = udp.get("sent", 0) + ab.get("udp_sent", 0)
    check("udp_all_read", got == sent - p["listen_drops"],
          "datagrams sent %d (dnsperf %d, bad-packet client %d) - dropped "
          "by the kernel on the daemon's socket %d = %d; the daemon read %d"
          % (sent, udp.get("sent", 0), ab.get("udp_sent", 0),
             p["listen_drops"], sent - p["listen_drops"], got))
    why = ""
    if udp.get("lost"):
        why = "; the kernel dropped %d datagrams on the daemon's socket " \
            "(receive buffer full: the daemon was not scheduled in time), " \
            "%d on all UDP sockets" % (p["listen_drops"],
                                       p["udp_rcvbuf_errors"])
    check("udp_none_lost", udp.get("sent", 0) > 0 and udp.get("lost", 1) == 0,
          "dnsperf UDP: %s sent, %s completed, %s lost%s" %
          (udp.get("sent"), udp.get("completed"), udp.get("lost"), why))
    check("tcp_none_lost", tcp.get("sent", 0) > 0 and tcp.get("lost", 1) == 0,
          "dnsperf TCP: %s sent, %s completed, %s lost" %
          (tcp.get("sent"), tcp.get("completed"), tcp.get("lost")))
    good = ab.get("tcp_good_queries", 0)
    check("tcp_good_answered",
          good > 0 and ab.get("tcp_good_answered", 0) == good and
          not ab.get("tcp_good_wrong_rcode"),
          "short TCP connections: %d queries, %d answered, %d wrong rcode" %
          (good, ab.get("tcp_good_answered", 0),
           ab.get("tcp_good_wrong_rcode", 0)))
    hc = ab.get("tcp_half_close_queries", 0)
    check("tcp_half_close_answered",
          ab.get("tcp_half_close_answered", 0) == hc,
          "half-closed connections: %d queries, %d answered" %
          (hc, ab.get("tcp_half_close_answered", 0)))
    check("refused_answered",
          ab.get("udp_refused", 0) >= ab.get("udp_kind_refused_valid", 1),
          "valid queries from outside allow_clients: %d sent, %d REFUSED "
          "answers (malformed ones from there are answered too)" %
          (ab.get("udp_kind_refused_valid", 0), ab.get("udp_refused", 0)))
    check("ratelimit_none", ce.get("ratelimited", 1) == 0,
          "ratelimited %s (limit far above the load)" % ce.get("ratelimited"))
    check("tcp_stalls_closed",
          ab.get("tcp_stalled", 0) > 0 and not ab.get("tcp_stall_not_closed"),
          "%d stalled connections, %d closed by the daemon (longest held "
          "%.1f s), %d not closed in time" %
          (ab.get("tcp_stalled", 0), ab.get("tcp_stall_closed", 0),
           ab.get("tcp_stall_held_ms_max", 0) / 1000,
           ab.get("tcp_stall_not_closed", 0)))
    dm = cx1.get("cache_misses", 0) - cx0.get("cache_misses", 0)
    dh = cx1.get("cache_hits", 0) - cx0.get("cache_hits", 0)
    check("cache_churned",
          evict.get("asked", 0) > 0 and evict.get("answered") ==
          evict.get("asked") and dm == evict["asked"] and dh == 0,
          "the first %s new names of the run, asked again at the end: %s "
          "answered, %d went upstream, %d came from the cache (cache "
          "max_entries %d, %d answers forwarded in the run)" %
          (evict.get("asked"), evict.get("answered"), dm, dh,
           p["cache_max"], ce.get("cache_misses", 0)))
    check("evictions_counted", ce.get("cache_evictions", 0) > 0,
          "cache_evictions counter: %d at the end of warm-up, %d at the "
          "end" % (cw.get("cache_evictions", 0),
                   ce.get("cache_evictions", 0)))
    check("no_fd_leak", p["fds_end"] <= p["fds_start"],
          "open descriptors: %d before the load, %d at most during it, "
          "%d after" % (p["fds_start"], fds_max, p["fds_end"]))
    check("answers_at_end", chk.get("ok") is True,
          "after the load: %s" % json.dumps(chk))
    check("exit_0", p["exit"] == "0",
          "exit status after SIGTERM: %s" % p["exit"])
    rows = p["db_rows"]
    blocked = ce.get("blocked", -1)
    check("log_complete",
          str(rows) == str(blocked) and ce.get("log_rows_dropped", 1) == 0 and
          ce.get("log_write_errors", 1) == 0,
          "attempt log rows %s, blocked counter %s, log_rows_dropped %s, "
          "log_write_errors %s" % (rows, blocked, ce.get("log_rows_dropped"),
                                   ce.get("log_write_errors")))
    if mode == "asan":
        marks = [m for m in SANITIZER_MARKS if m in err]
        check("sanitizers_clean", not marks,
              "sanitizer reports in stderr: %s" % (marks or "none"))
    if mode == "valgrind":
        m = re.search(r"ERROR SUMMARY: (\d+) errors", vg)
        lk = re.search(r"definitely lost: ([\d,]+) bytes", vg)
        check("valgrind_clean", m is not None and m.group(1) == "0",
              "memcheck: %s errors, definitely lost %s bytes" %
              (m.group(1) if m else "?", lk.group(1) if lk else "0"))

    # ---- figures ----
    fig = {
        "mode": mode, "date": p["date"], "machine": "%d CPUs, %s, Linux %s" %
        (p["nproc"], p["cpu"], p["kernel"]), "loadavg_end": p["loadavg"],
        "commit": p["commit"], "seconds": p["seconds"],
        "rate": p["rate"], "startup_s": p["startup_s"],
        "udp": {k: v for k, v in udp.items() if k != "intervals"},
        "udp_qps_interval_min": min(udp["intervals"]) if udp.get("intervals")
        else None,
        "tcp": {k: v for k, v in tcp.items() if k != "intervals"},
        "abuse": ab,
        "rss_mb": {"start": round(rss_start / 1024, 1),
                   "warm": round(rss_warm / 1024, 1),
                   "max_after_warm": round(rss_max / 1024, 1),
                   "end": round(rss_end / 1024, 1),
                   "idle": round(p["rss_idle_kb"] / 1024, 1),
                   "slope_mb_per_min": round(slope, 2),
                   "without_queue_warm": round(rest_warm / 1024, 1),
                   "without_queue_max_after_warm": round(rest_max / 1024, 1),
                   "without_queue_slope_mb_per_min": round(slope_rest, 2),
                   "queue_touched_warm": round(ring_warm / 1024, 1),
                   "queue_touched_max": round(ring_max / 1024, 1),
                   "queue_bound": round(p["ring_size_kb"] / 1024, 1)},
        "wal_max_mb": round(wal_max / 1024, 1),
        "cpu_pct_of_one_core": round(cpu_pct),
        "listen_drops": p["listen_drops"],
        "udp_rcvbuf_errors": p["udp_rcvbuf_errors"],
        "udp_sndbuf_errors": p["udp_sndbuf_errors"],
        "counters_end": ce,
        "commands": {"daemon": p["daemon"], "dnsperf_udp": p["dnsperf_udp"],
                     "dnsperf_tcp": p["dnsperf_tcp"], "abuse": p["abuse"]},
        "checks": {n: {"ok": ok, "detail": det} for n, ok, det in checks},
    }
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump(fig, f, indent=1)

    q = ce.get("queries", 0) - c0.get("queries", 0)
    print("\n==== soak %s: %s s at %s queries/s, %s ====" %
          (mode, p["seconds"], p["rate"], p["date"]))
    print("machine: %s; load average at the end %s; commit %s" %
          (fig["machine"], p["loadavg"], p["commit"]))
    print("dnsperf UDP: %s sent, %s answered, %s lost, %.0f q/s (slowest "
          "10 s interval %s), avg latency %s s, max %s s" %
          (udp.get("sent"), udp.get("completed"), udp.get("lost"),
           udp.get("qps", 0), fig["udp_qps_interval_min"],
           udp.get("latency_avg"), udp.get("latency_max")))
    print("  rcodes %s" % udp.get("rcodes"))
    print("dnsperf TCP: %s sent, %s answered, %s lost, %.0f q/s; rcodes %s" %
          (tcp.get("sent"), tcp.get("completed"), tcp.get("lost"),
           tcp.get("qps", 0), tcp.get("rcodes")))
    print("abuse: %s bad/unwelcome UDP datagrams (%s replies), %s TCP "
          "misbehaviours, %s short TCP connections' queries" %
          (ab.get("udp_sent"), ab.get("udp_replies"),
           sum(v for k, v in ab.items() if k.startswith("tcp_kind_")),
           ab.get("tcp_good_queries")))
    print("daemon: %d queries in all, %d%% of one CPU after warm-up, "
          "start-up %s s; kernel UDP drops: %s on its socket, %s receive "
          "and %s send buffer errors on all sockets" %
          (q, cpu_pct, p["startup_s"], p["listen_drops"],
           p["udp_rcvbuf_errors"], p["udp_sndbuf_errors"]))
    print("RSS MB: start %.1f, end of warm-up %.1f, max after %.1f, end of "
          "load %.1f, idle %.1f; slope after warm-up %+.2f MB/min" %
          (rss_start / 1024, rss_warm / 1024, rss_max / 1024,
           rss_end / 1024, p["rss_idle_kb"] / 1024, slope))
    if p["ring_size_kb"]:
        print("  of which the attempt log's queue: %.1f MB at the end of "
              "warm-up, %.1f MB at most (bound %.1f MB); without it: %.1f "
              "MB at the end of warm-up, %.1f MB at most, slope %+.2f "
              "MB/min; largest WAL %.1f MB" %
              (ring_warm / 1024, ring_max / 1024, p["ring_size_kb"] / 1024,
               rest_warm / 1024, rest_max / 1024, slope_rest,
               wal_max / 1024))
    keys = ("queries", "queries_udp", "queries_tcp", "cache_hits",
            "cache_misses", "cache_evictions", "merged", "blocked",
            "blocked_cname", "refused", "ratelimited", "formerr", "notimp",
            "dropped", "servfail", "truncated", "upstream_queries",
            "upstream_timeouts", "upstream_errors", "upstream_tcp",
            "forged_replies", "overload_dropped", "tcp_accepted",
            "tcp_refused", "tcp_timeouts", "log_rows_queued",
            "log_rows_written", "log_rows_dropped", "log_write_errors",
            "log_rows_pending")
    print("counters: " + " ".join("%s=%s" % (k, ce.get(k)) for k in keys))
    print("attempt log rows: %s" % rows)
    failed = 0
    for n, ok, det in checks:
        print("%s %s: %s" % ("PASS" if ok else "FAIL", n, det))
        failed += not ok
    print("%d checks, %d failed" % (len(checks), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""The console under load beside the DNS path (issue 13): run by
bench/console_load.sh, which builds the binary and says how to read this.

One dnswarden (server.threads: 1, a generated blocklist, an attempt log
that already holds HISTORY attempts over 30 days, the console on) answers
a blocked-query benchmark (dnsperf at a fixed rate) in four phases, A B B A:
A is DNS alone, B is DNS while CLIENTS HTTP clients, each on a kept-alive
connection with an hr token, read reports as fast as the console answers.

--client-nice N runs the clients' threads at nice N: they stand for other
machines, and on a machine of two cores their own CPU (Python, 50
threads, thousands of requests a second) otherwise queues the DNS thread
and shows in its p99 as if the console had caused it.

--pin runs the layout the configuration gives an operator (issue 13):
server.cpus: [0] (the DNS loop and every other thread) and http.cpus: [1]
(the console's two threads), with dnsperf and the clients on CPU 1, the
clients SCHED_IDLE. The clients stand for other machines: this way they
never delay dnsperf (whose own wait for a CPU counts in the latency it
reports) and never run on the daemon's DNS CPU.

--pin-shared is the layout before those keys: the daemon (every thread,
the console's too) on CPU 0 with taskset, dnsperf and the clients as
with --pin, so that what the B phases add on CPU 0 is the console's
threads alone. Unpinned, on a machine of two cores, the 50 clients' CPU
queues both dnsperf and the DNS thread.

--console-nice N writes http.nice: N (the daemon's default is 10; 0 is
the console as it was before the key).

--console-sched POLICY sets the console's threads from outside: SCHED_OTHER,
BATCH or IDLE (chrt), or nice0/nice10 (SCHED_OTHER at that nice value
above the loop's).

Figures per phase:
  DNS CPU per answer: on-CPU time of every thread but the console's and
      the audit writer's (/proc/PID/task/TID/schedstat, ns), over
      dnsperf's answers; the attempt-log writer is counted, as a blocked
      answer makes its row. Each thread's share is printed to stderr.
  DNS latency p50/p99: from dnsperf -v, one line per answer.
  Console: requests, req/s, p50/p99/max latency, errors, and its thread's
      CPU per request.
CPU time, not wall time, is the figure to compare: the machine may be
shared, and the clients themselves take CPU.
"""

import argparse
import http.client
import os
import random
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import harness          # noqa: E402
from console import SCHEMA_V2, DAY_MS, http_config   # noqa: E402

QUERIES = [
    "/api/v1/report?by=day&since={since}",
    "/api/v1/report?by=site&since={since}&top=20",
    "/api/v1/report?by=client&since={since}&top=20",
    "/api/v1/report?by=category&since={since}",
    "/api/v1/report?by=day&since={since}&format=csv",
    "/api/v1/status",
]


def write_history(db: Path, count: int, names: list):
    """count attempts over the last 30 days, from 500 clients, on the
    first 2,000 generated names (each its own site, in one category)."""
    rnd = random.Random(7)
    now = int(time.time() * 1000)
    con = sqlite3.connect(db)
    con.executescript(SCHEMA_V2)
    rows = []
    for i in range(count):
        q = names[rnd.randrange(min(2000, len(names)))]
        rows.append((now - rnd.randrange(30 * DAY_MS), f"10.0.{rnd.randrange(2)}.{rnd.randrange(1, 251)}",
                     q, q, "bench", q))
    con.executemany("INSERT INTO attempts (ts, client, client_name, qname, qtype, rule,"
                    " category, site, transport) VALUES (?, ?, NULL, ?, 'A', ?, ?, ?, 'udp')",
                    rows)
    con.commit()
    con.close()
    db.chmod(0o666)


def thread_cpu_ns(pid: int):
    """{tid: (name, on-CPU ns)} for every thread of pid."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            ns = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except OSError:
            continue
        out[tid] = (name, ns)
    return out


def cpu_split(before, after):
    """(DNS-path ns, console ns, {thread name: ns}) between two
    thread_cpu_ns() readings; the console is its thread and the audit
    thread that writes its rows."""
    dns = con = 0
    names = {}
    for tid, (name, ns) in after.items():
        d = ns - before.get(tid, (name, 0))[1]
        names[name] = names.get(name, 0) + d
        if name in ("dw-console", "dw-audit"):
            con += d
        else:
            dns += d
    return dns, con, names


def pin_daemon(pid, cpus):
    """Every thread of pid (and any it makes later) on cpus."""
    subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], check=True,
                   stdout=subprocess.DEVNULL)


SCHED_POLICIES = ("other", "batch", "idle", "nice0", "nice10")


def console_sched(pid, policy):
    """The console's threads under policy (one of SCHED_POLICIES), set
    from outside: chrt, and for niceN SCHED_OTHER at nice N."""
    flag = {"batch": "--batch", "idle": "--idle"}.get(policy, "--other")
    for tid, (name, _) in thread_cpu_ns(pid).items():
        if name in ("dw-console", "dw-audit"):
            subprocess.run(["chrt", flag, "-p", "0", tid], check=True)
            if policy.startswith("nice"):
                os.setpriority(os.PRIO_PROCESS, int(tid), int(policy[4:]))


def thread_cpus(pid, name):
    """Cpus_allowed_list of pid's thread called name."""
    for tid, (n, _) in thread_cpu_ns(pid).items():
        if n == name:
            for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
                if line.startswith("Cpus_allowed_list:"):
                    return line.split(":", 1)[1].strip()
    return "?"


class Clients:
    """n threads, each a kept-alive connection reading reports."""

    def __init__(self, n, port, token, since, nice=0, idle=False):
        self.port, self.token, self.since, self.nice = port, token, since, nice
        self.idle = idle
        self.stop = threading.Event()
        self.lat = []
        self.errors = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(n)]

    def run(self, i):
        rnd = random.Random(i)
        c = None
        if self.nice:
            # Linux: a thread's own nice value, by its id.
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        if self.idle:
            # The CPU they leave: dnsperf (and so its latency) never waits for them.
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE,
                                  os.sched_param(0))
        while not self.stop.is_set():
            path = rnd.choice(QUERIES).format(since=self.since)
            t0 = time.monotonic()
            try:
                if c is None:
                    c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                c.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
                r = c.getresponse()
                r.read()
                ok = r.status == 200
                err = None if ok else f"{r.status} {path}"
            except (OSError, http.client.HTTPException) as e:
                err = f"{type(e).__name__} {path}"
                c = None
            dt = time.monotonic() - t0
            with self.lock:
                if err:
                    self.errors.append(err)
                else:
                    self.lat.append(dt)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        for t in self.threads:
            t.join()


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def dnsperf(port, qfile, dur, rate, out, rt=False, cpu=None):
    """Run dnsperf -v (SCHED_FIFO if rt, on cpu if given); (answers,
    [latency s])."""
    pre = ["chrt", "-f", "1"] * rt + (["taskset", "-c", str(cpu)] if cpu is not None else [])
    with open(out, "w") as f:
        subprocess.run(pre + ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(qfile),
                        "-l", str(dur), "-Q", str(rate), "-c", "4", "-v"],
                       stdout=f, stderr=subprocess.STDOUT, check=True)
    lat = []
    answers = 0
    for line in open(out):
        # "> NOERROR name A 0.000123"
        if line.startswith("> "):
            parts = line.split()
            try:
                lat.append(float(parts[-1]))
            except ValueError:
                continue
        elif "Queries completed:" in line:
            answers = int(line.split()[2])
    return answers, lat


def phase(dw, name, load, a, qfile, since, outdir):
    pid = dw.proc.pid
    clients = Clients(a.clients if load else 0, dw.http_port, dw.hr_token, since,
                      a.client_nice, a.pin or a.pin_shared)
    with clients:
        if load:
            time.sleep(1.0)         # every client connected and busy
            with clients.lock:
                clients.lat.clear()
                clients.errors.clear()
        t0 = time.monotonic()
        c0 = thread_cpu_ns(pid)
        answers, lat = dnsperf(dw.port, qfile, a.dur, a.rate, outdir / f"dnsperf-{name}.txt",
                              a.dnsperf_rt, a.dnsperf_cpu)
        c1 = thread_cpu_ns(pid)
        wall = time.monotonic() - t0
        with clients.lock:
            hl, herr = list(clients.lat), list(clients.errors)
    dns_ns, con_ns, names = cpu_split(c0, c1)
    return {
        "phase": name, "load": load, "answers": answers,
        "dns_us_per_answer": dns_ns / 1000 / max(answers, 1),
        "threads_us_per_answer": {n: round(v / 1000 / max(answers, 1), 2)
                                  for n, v in sorted(names.items())},
        "dns_p50_ms": pct(lat, 50) * 1000, "dns_p99_ms": pct(lat, 99) * 1000,
        "http_requests": len(hl), "http_rps": len(hl) / wall,
        "http_p50_ms": pct(hl, 50) * 1000, "http_p99_ms": pct(hl, 99) * 1000,
        "http_max_ms": max(hl) * 1000 if hl else float("nan"),
        "http_over_1s": sum(1 for x in hl if x > 1.0),
        "http_errors": len(herr), "http_error_sample": herr[:3],
        "console_ms_per_request": con_ns / 1e6 / max(len(hl), 1) if load else 0.0,
    }


def table(results):
    out = ["| phase | console clients | DNS answers | DNS CPU µs/answer | DNS p50 ms |"
           " DNS p99 ms | API requests | API req/s | API p50 ms | API p99 ms |"
           " API max ms | API over 1 s | API errors | console CPU ms/request |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        if r["load"]:
            api = (f"{r['http_requests']} | {r['http_rps']:.0f} | {r['http_p50_ms']:.0f} |"
                   f" {r['http_p99_ms']:.0f} | {r['http_max_ms']:.0f} | {r['http_over_1s']} |"
                   f" {r['http_errors']} |"
                   f" {r['console_ms_per_request']:.2f}")
        else:
            api = "- | - | - | - | - | - | - | -"
        out.append(f"| {r['phase']} | {r['clients']} | {r['answers']} |"
                   f" {r['dns_us_per_answer']:.2f} | {r['dns_p50_ms']:.3f} |"
                   f" {r['dns_p99_ms']:.3f} | {api} |")
    a = [r["dns_us_per_answer"] for r in results if not r["load"]]
    b = [r["dns_us_per_answer"] for r in results if r["load"]]
    pa = [r["dns_p99_ms"] for r in results if not r["load"]]
    pb = [r["dns_p99_ms"] for r in results if r["load"]]
    if not a or not b:      # --phases 1: nothing to compare
        return "\n".join(out)
    out.append("")
    out.append(f"DNS CPU per answer: {sum(a) / len(a):.2f} µs alone, {sum(b) / len(b):.2f} µs"
               f" under console load ({(sum(b) / len(b) / (sum(a) / len(a)) - 1) * 100:+.1f} %);"
               " DNS p99:"
               f" {sum(pa) / len(pa):.3f} ms alone, {sum(pb) / len(pb):.3f} ms under load.")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--dur", type=int, default=10, help="s per phase")
    ap.add_argument("--rate", type=int, default=2000, help="DNS queries/s offered")
    ap.add_argument("--count", type=int, default=100000, help="blocklist names")
    ap.add_argument("--history", type=int, default=20000, help="attempts in the log")
    ap.add_argument("--client-nice", type=int, default=0,
                    help="run the API clients' threads at this nice value: they stand for"
                    " other machines, and on a small one their CPU queues the DNS thread")
    ap.add_argument("--pin", action="store_true",
                    help="server.cpus: [0], http.cpus: [1]; dnsperf and the clients on CPU 1,"
                    " the clients SCHED_IDLE: the console off the DNS thread's CPU")
    ap.add_argument("--pin-shared", action="store_true",
                    help="the daemon (every thread) on CPU 0 with taskset, dnsperf and the"
                    " clients as with --pin: the console shares a CPU with the DNS"
                    " thread and nothing else, and dnsperf never waits for the clients")
    ap.add_argument("--dnsperf-rt", action="store_true",
                    help="dnsperf at SCHED_FIFO 1: it stands for other machines, and on the"
                    " CPU it shares with the console (--pin) its own wait would count in"
                    " the DNS latency it reports")
    ap.add_argument("--dnsperf-cpu", type=int,
                    help="run dnsperf on this CPU (with --pin or --pin-shared: 1, beside the"
                    " clients; 0 puts it beside the DNS loop, away from the console's"
                    " own network work under --pin)")
    ap.add_argument("--console-nice", type=int, help="http.nice (the daemon's default: 10)")
    ap.add_argument("--console-sched", choices=SCHED_POLICIES,
                    help="set the console's threads to this policy from outside")
    ap.add_argument("--sched-ab", metavar="P,Q",
                    help="phases A, B under P, B under Q, B under Q, B under P, A: two"
                    " policies for the console's threads (%s) in one run"
                    % ", ".join(SCHED_POLICIES))
    ap.add_argument("--out", help="also write the table here")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--phases", type=int, default=0,
                    help="run only the first N phases (0: all)")
    ap.add_argument("--perf", help="perf record the console thread under load into DIR")
    a = ap.parse_args()
    os.environ["DNSWARDEN_BIN"] = a.bin

    tmp = Path(tempfile.mkdtemp(prefix="dnswarden-console-load-"))
    tmp.chmod(0o755)
    dw = None
    try:
        (tmp / "gen").mkdir()
        subprocess.run([sys.executable, str(BENCH / "gen_blocklist.py"), str(tmp / "gen"),
                        "--count", str(a.count), "--queries", "200000"], check=True,
                       stdout=subprocess.DEVNULL)
        names = (tmp / "gen" / "domains.txt").read_text().split()
        hport = harness.free_port()
        hr_token = secrets.token_hex(32)
        over = http_config(hport, secrets.token_hex(32), hr_token)
        over["server"] = {"threads": 1, "rate_limit": {"qps": 0, "burst": 2000}}
        if a.pin:
            over["server"]["cpus"] = [0]
            over["http"]["cpus"] = [1]
        if a.console_nice is not None:
            over["http"]["nice"] = a.console_nice
        dw = harness.Dnswarden(tmp / "dw", [harness.closed_port()], ipv6=False,
                               overrides=over,
                               blocklists=[tmp / "gen" / "big-domains.yaml"])
        dw.http_port, dw.hr_token = hport, hr_token
        write_history(dw.database, a.history, names)
        dw.start(timeout=120)
        if a.pin_shared:
            pin_daemon(dw.proc.pid, "0")
        if a.pin or a.pin_shared:
            # After the daemon started: it checks its keys against the CPUs it may use.
            os.sched_setaffinity(0, {1})    # this process, dnsperf, the clients
        if a.console_sched:
            console_sched(dw.proc.pid, a.console_sched)
        print("daemon on CPUs %s, console on %s, load generators on %s; console threads: %s" % (
            subprocess.run(["taskset", "-c", "-p", str(dw.proc.pid)], capture_output=True,
                           text=True).stdout.split(":")[-1].strip(),
            thread_cpus(dw.proc.pid, "dw-console"),
            sorted(os.sched_getaffinity(0)),
            ", ".join(subprocess.run(["chrt", "-p", t], capture_output=True, text=True)
                      .stdout.splitlines()[0].split(":")[-1].strip()
                      for t, (n, _) in thread_cpu_ns(dw.proc.pid).items()
                      if n == "dw-console")), file=sys.stderr)
        since = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 30 * 86400))
        qfile = tmp / "q-blocked.txt"
        qfile.write_text("".join(f"{n} A\n" for n in
                                 (tmp / "gen" / "big-hits.txt").read_text().split()))
        results = []
        phases = (("A1", False), ("B1", True), ("B2", True), ("A2", False))
        if a.sched_ab:
            # The same daemon under both policies, in both orders.
            p, q = a.sched_ab.split(",")
            phases = (("A1", False), (f"B1-{p}", True), (f"B2-{q}", True),
                      (f"B3-{q}", True), (f"B4-{p}", True), ("A2", False))
        for name, load in phases[:a.phases or len(phases)]:
            if "-" in name:
                console_sched(dw.proc.pid, name.split("-")[1])
            r = phase(dw, name, load, a, qfile, since, tmp)
            r["clients"] = a.clients if load else 0
            results.append(r)
            print(name, r, file=sys.stderr)
            print("  CPU µs/answer by thread:", r["threads_us_per_answer"], file=sys.stderr)
        if a.perf:
            profile(dw, a, since, Path(a.perf), qfile)
        text = table(results)
        print(text)
        if a.out:
            Path(a.out).write_text(text + "\n")
        probs = dw.problems()
        if probs:
            print("dnswarden complained:\n" + "\n".join(probs), file=sys.stderr)
    finally:
        if dw is not None:
            dw.close()
        if a.keep:
            print("kept", tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def profile(dw, a, since, outdir, qfile):
    """perf record the console thread while the clients read reports and
    dnsperf sends the blocked queries."""
    outdir.mkdir(parents=True, exist_ok=True)
    tid = next(t for t, (n, _) in thread_cpu_ns(dw.proc.pid).items() if n == "dw-console")
    with Clients(a.clients, dw.http_port, dw.hr_token, since, a.client_nice,
                 a.pin or a.pin_shared) as cl:
        perf = subprocess.Popen(["dnsperf", "-s", "127.0.0.1", "-p", str(dw.port), "-d",
                                 str(qfile), "-l", str(a.dur + 2), "-Q", str(a.rate)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        subprocess.run(["perf", "record", "-g", "-t", tid, "-o", str(outdir / "perf.data"),
                        "--", "sleep", str(a.dur)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        perf.wait()
        print("profile: %d requests, %d errors" % (len(cl.lat), len(cl.errors)),
              file=sys.stderr)
    with open(outdir / "report.txt", "w") as f:
        subprocess.run(["perf", "report", "--no-children", "--stdio", "-i",
                        str(outdir / "perf.data")], stdout=f, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()

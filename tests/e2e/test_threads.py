"""server.cpus, http.cpus and http.nice (issue 13): the keys parse, bad
CPUs are reported at their file:line:column, and a serving daemon's
threads run where the keys say: the DNS loop (and every thread but the
console's) on server.cpus, dw-console and dw-audit on http.cpus at a
higher nice value. Read from /proc/PID/task/*/{comm,status,stat}."""

import os
import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

import harness
from console import fresh_console
from test_cli import GOOD, assert_diagnostics, run, write

NCPUS = os.cpu_count() or 1
ALLOWED = sorted(os.sched_getaffinity(0))
need_two = pytest.mark.skipif(len(ALLOWED) < 2, reason="needs two CPUs this process may use")


def threads(pid: int) -> dict:
    """{tid: (name, Cpus_allowed_list, nice)} of every thread of pid."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        base = Path(f"/proc/{pid}/task/{tid}")
        try:
            name = (base / "comm").read_text().strip()
            status = (base / "status").read_text()
            stat = (base / "stat").read_text()
        except OSError:
            continue        # gone meanwhile
        cpus = next(ln.split(":", 1)[1].strip() for ln in status.splitlines()
                    if ln.startswith("Cpus_allowed_list:"))
        nice = int(stat.rsplit(")", 1)[1].split()[16])     # field 19
        out[int(tid)] = (name, cpus, nice)
    return out


@contextmanager
def affinity(cpus):
    """This process (and the daemon it starts) on cpus, as taskset -c."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def test_check_accepts_cpus(workdir):
    cpu = ALLOWED[-1]
    p = write(workdir, GOOD.replace("  allow_clients", f"  cpus: [{ALLOWED[0]}]\n  allow_clients")
              + f"http:\n  cpus: [{cpu}]\n  nice: 5\n")
    res = run("check", "-c", str(p))
    assert res.returncode == 0, res.stdout + res.stderr


def test_check_cpu_out_of_range(workdir):
    p = write(workdir, GOOD.replace("  allow_clients",
                                    f"  cpus: [0, {NCPUS}]\n  allow_clients"))
    res = run("check", "-c", str(p))
    assert_diagnostics(res, p, 3, 13)
    assert f"server.cpus: CPU {NCPUS} is out of range: this machine has CPUs 0-{NCPUS - 1}" \
        in res.stdout + res.stderr


@pytest.mark.parametrize("value,col,text", [
    ("cpus: first", 9, "http.cpus: expected a list of CPU numbers, found a scalar"),
    ("cpus: [-1]", 10, "expected an integer"),
    ("nice: 20", 9, "20 is out of range (0-19)"),
])
def test_check_bad_http_keys(workdir, value, col, text):
    p = write(workdir, GOOD + f"http:\n  {value}\n")
    res = run("check", "-c", str(p))
    assert_diagnostics(res, p, 12, col)
    assert text in res.stdout + res.stderr


@need_two
def test_check_cpu_outside_the_allowed_set(workdir):
    """Started with taskset on one CPU, another is not one it may use."""
    p = write(workdir, GOOD + f"http:\n  cpus:\n    - {ALLOWED[1]}\n")
    res = subprocess.run(["taskset", "-c", str(ALLOWED[0]), harness._resolve_bin(), "check",
                          "-c", str(p)], capture_output=True, text=True, timeout=20)
    assert_diagnostics(res, p, 13, 7)
    assert (f"http.cpus: CPU {ALLOWED[1]} is not one this process may run on"
            f" ({ALLOWED[0]})") in res.stdout + res.stderr


@need_two
def test_check_prints_the_layout(workdir):
    """server.cpus alone: check says where the console will run, under
    taskset -c A,B (the CPU left) and -c A (none left)."""
    a, b = ALLOWED[0], ALLOWED[1]
    p = write(workdir, GOOD.replace("  allow_clients", f"  cpus: [{a}]\n  allow_clients")
              + 'http:\n  listen: ["127.0.0.1:8053"]\n  users:\n'
              '    - name: a\n      role: admin\n      password: "$y$j9T$x"\n')
    for cpus, want in ((f"{a},{b}", f"CPUs: DNS loops {a}, console {b} (those server.cpus"
                        " leaves), http.nice 10"),
                       (f"{a}", f"CPUs: DNS loops {a}, console beside the DNS loops (no CPU"
                        " left), http.nice 10")):
        res = subprocess.run(["taskset", "-c", cpus, harness._resolve_bin(), "check", "-c",
                              str(p)], capture_output=True, text=True, timeout=20)
        assert res.returncode == 0 and want in res.stdout, res.stdout + res.stderr


def console_layout(nsd_shared, cpus, dns_cpu):
    """Start a daemon on cpus with server.cpus [dns_cpu] alone; the
    Cpus_allowed_list of its console's threads, after checking that every
    other thread is on dns_cpu and the console's at nice 10 above the loop."""
    with affinity(cpus), fresh_console(nsd_shared, prefix="dnswarden-threads-", history=False,
                                       more={"server": {"cpus": [dns_cpu]}}) as c:
        pid = c.dw.proc.pid
        ts = threads(pid)
        loop_nice = ts[pid][2]
        console = set()
        for name, where, nice in ts.values():
            if name in ("dw-console", "dw-audit"):
                console.add(where)
                assert nice == min(19, loop_nice + 10), (name, nice, loop_nice)
            else:
                assert where == str(dns_cpu), (name, where)
        assert c.dw.query("example.com") is not None
        assert c.client().get("/api/v1/status").status == 401
        return console


@need_two
def test_console_default_takes_the_cpus_left(nsd_shared):
    """Under taskset -c A,B, server.cpus [A] and no http.cpus: dw-console
    and dw-audit on B."""
    a, b = ALLOWED[0], ALLOWED[1]
    assert console_layout(nsd_shared, {a, b}, a) == {str(b)}


def test_console_default_shares_when_none_left(nsd_shared):
    """Under taskset -c A, server.cpus [A]: the console shares A."""
    a = ALLOWED[0]
    assert console_layout(nsd_shared, {a}, a) == {str(a)}


@need_two
def test_serving_threads_pinned(nsd_shared):
    """DNS on the first allowed CPU, the console's two threads on the
    second at nice 10 above the loop; a reload that changes the keys
    says they need a restart and serves on."""
    dns_cpu, http_cpu = ALLOWED[0], ALLOWED[1]
    with fresh_console(nsd_shared, prefix="dnswarden-threads-", history=False,
                       more={"server": {"cpus": [dns_cpu]},
                             "http": {"cpus": [http_cpu]}}) as c:
        pid = c.dw.proc.pid
        ts = threads(pid)
        names = {name for name, _, _ in ts.values()}
        assert {"dw-console", "dw-audit", "dw-logwriter"} <= names, ts
        loop_nice = ts[pid][2]
        for name, cpus, nice in ts.values():
            if name in ("dw-console", "dw-audit"):
                assert cpus == str(http_cpu), (name, cpus)
                assert nice == min(19, loop_nice + 10), (name, nice, loop_nice)
            else:
                assert cpus == str(dns_cpu), (name, cpus)
        assert c.dw.query("example.com") is not None
        assert c.client().get("/api/v1/status").status == 401

        cfg = c.dw.config_path.read_text()
        c.dw.config_path.write_text(cfg.replace(f"cpus: [{http_cpu}]", f"cpus: [{dns_cpu}]"))
        mark = len(c.dw.stderr())
        c.dw.send_signal(signal.SIGHUP)
        assert c.dw.wait_stderr("http.cpus or http.nice changed: restart dnswarden to apply",
                                since=mark), c.dw.stderr()[mark:]
        console = [v for v in threads(pid).values() if v[0] == "dw-console"]
        assert console and console[0][1] == str(http_cpu), console
        assert c.client().get("/api/v1/status").status == 401


def test_default_console_nice_without_cpus(nsd_shared):
    """No keys: nothing pinned, the console 10 nice steps below the loop."""
    with fresh_console(nsd_shared, prefix="dnswarden-threads-", history=False) as c:
        pid = c.dw.proc.pid
        ts = threads(pid)
        main_cpus, loop_nice = ts[pid][1], ts[pid][2]
        for name, cpus, nice in ts.values():
            assert cpus == main_cpus, (name, cpus)
            if name in ("dw-console", "dw-audit"):
                assert nice == min(19, loop_nice + 10), (name, nice)

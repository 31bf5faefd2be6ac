"""End-to-end tests of the privilege drop (issue 17): dnswarden started as
root with its configuration, lists and database inside a directory only
root may enter (as a clone under /root is), a reload after the drop, the
attempt log written, and no directory that existed before start handed to
the service user; and the bad inputs, each named at check and at start.
"""

import os
import pwd
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import dns.rcode
import pytest

import harness

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="starts dnswarden as root and drops to a user")


def service_user() -> str:
    """The user serve runs as with no server.user: dnswarden, or nobody
    where that user was not created."""
    try:
        pwd.getpwnam("dnswarden")
        return "dnswarden"
    except KeyError:
        return "nobody"


@pytest.fixture
def closed(workdir):
    """A directory only root may enter (mode 0700, owned by root). It is in
    workdir, which is removed after the test's daemons have stopped: a
    daemon still running when it was removed on its own made its database
    directory again, and left it in /tmp."""
    d = workdir / "closed"
    d.mkdir()
    d.chmod(0o700)
    yield d


def owners(root: Path) -> dict:
    """{path: (uid, gid, mode)} of root and everything under it."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for p in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
            st = os.lstat(p)
            out[p] = (st.st_uid, st.st_gid, st.st_mode)
    return out


def status(pid) -> dict:
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        out[k] = v.split()
    return out


def children(pid) -> list:
    """The processes whose parent is pid."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if status(p)["PPid"] == [str(pid)]:
                out.append(int(p))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def write_list(path: Path, names) -> Path:
    harness.write_blocklist(path, {"adult": {"Site": names}})
    path.chmod(0o600)          # root's alone
    return path


def rows(db) -> list:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
    try:
        return [x[0] for x in con.execute("SELECT qname FROM attempts ORDER BY id")]
    finally:
        con.close()


def wait_rows(db, want, timeout=5.0) -> list:
    end = time.monotonic() + timeout
    got = []
    while time.monotonic() < end:
        try:
            got = rows(db)
        except sqlite3.OperationalError:
            got = []
        if len(got) >= want:
            break
        time.sleep(0.05)
    return got


@pytest.fixture
def closed_daemon(closed):
    """Start dnswarden with its configuration in closed/dw (the harness
    makes that one 0755; the directory above stays closed, and the
    configuration file is made root's alone)."""
    started = []

    def start(closed, upstream, over, blocklists):
        d = harness.Dnswarden(closed / "dw", [upstream], overrides=over,
                              blocklists=blocklists)
        d.config_path.chmod(0o600)
        started.append(d)
        return d.start()
    yield start
    for d in started:
        if d.running():
            d.stop()


def test_reload_and_log_in_a_closed_directory(fake_upstream, closed_daemon, closed):
    """Configuration, list and database inside a 0700 root directory: the
    daemon runs as its user, a SIGHUP applies a new list (and a broken one
    is refused, counted, and the old list stays), every blocked query
    becomes a row, and nothing that existed before start changes owner."""
    fake_upstream.add("www.second.example", "A", "192.0.2.2")
    lst = write_list(closed / "list.yaml", ["first.example"])
    state = closed / "state"              # dnswarden creates this one
    db = state / "attempts.db"
    dw = closed_daemon(closed, fake_upstream, {"log": {"database": str(db)}},
                       blocklists=[lst])
    before = owners(closed)
    user = pwd.getpwnam(service_user())
    assert os.stat(state).st_uid == user.pw_uid, "the new database directory"

    assert dw.query("www.first.example").rcode() == dns.rcode.NXDOMAIN
    assert dw.query("www.second.example").rcode() == dns.rcode.NOERROR
    # The helper that reads for reloads: the service user, with the right
    # to read files and nothing else.
    helpers = children(dw.proc.pid)
    assert len(helpers) == 1, helpers
    st = status(helpers[0])
    assert st["Uid"] == [str(user.pw_uid)] * 4, st["Uid"]
    assert int(st["CapEff"][0], 16) == 1 << 2, st["CapEff"]   # CAP_DAC_READ_SEARCH
    assert int(st["CapPrm"][0], 16) == 1 << 2, st["CapPrm"]
    assert st["NoNewPrivs"] == ["1"], st

    write_list(lst, ["first.example", "second.example"])
    since = len(dw.stderr())
    dw.send_signal(signal.SIGHUP)
    assert dw.wait_stderr("reloaded", since=since), dw.stderr()[since:]
    assert dw.query("www.second.example").rcode() == dns.rcode.NXDOMAIN

    lst.write_text("categories: [\n")      # broken: the reload must fail
    since = len(dw.stderr())
    dw.send_signal(signal.SIGHUP)
    assert dw.wait_stderr("reload failed", since=since), dw.stderr()[since:]
    assert str(lst) in dw.stderr()[since:], "the failed reload names the file"
    assert dw.query("www.second.example").rcode() == dns.rcode.NXDOMAIN

    st = dw.stats()
    assert st.get("reloads") == 2 and st.get("reload_failures") == 1, st
    assert "last_reload_result failed" in dw.stderr()
    assert st.get("last_reload_success_ms", 0) > 0

    got = wait_rows(db, 3)
    assert got == ["www.first.example", "www.second.example", "www.second.example"], \
        f"{got}\n{dw.stderr()}"
    assert dw.stats().get("log_write_errors") == 0, dw.stderr()
    dw.stop()
    assert not any(os.path.exists(f"/proc/{p}") and status(p)["State"][0] != "Z"
                   for p in helpers), "the helper outlived the daemon"
    after = owners(closed)
    changed = {p: (before[p], after.get(p)) for p in before
               if after.get(p, before[p])[:2] != before[p][:2]}
    assert not changed, f"owners changed: {changed}"
    for p in (db, Path(str(db) + "-wal")):
        if p.exists():
            assert os.stat(p).st_uid == user.pw_uid, p


_user_bin = {}


def user_binary() -> str:
    """The binary at a path the service user can reach: a clone inside a
    directory only root may enter (what these tests are about) holds the
    build out of its reach, so run a copy."""
    if "path" not in _user_bin:
        d = Path(tempfile.mkdtemp(prefix="dnswarden-bin-"))
        d.chmod(0o755)
        dst = d / "dnswarden"
        shutil.copy2(harness._resolve_bin(), dst)
        dst.chmod(0o755)
        _user_bin["path"] = str(dst)
    return _user_bin["path"]


@pytest.fixture(scope="module", autouse=True)
def _remove_user_binary():
    yield
    if "path" in _user_bin:
        shutil.rmtree(os.path.dirname(_user_bin.pop("path")), ignore_errors=True)


def run(*args, user=None, timeout=30):
    """dnswarden ARGS, as root or as user (a name)."""
    pre = None
    binary = harness._resolve_bin()
    if user is not None:
        binary = user_binary()
        pw = pwd.getpwnam(user)

        def pre():
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
    return subprocess.run([binary, *args], capture_output=True,
                          text=True, timeout=timeout, preexec_fn=pre, cwd="/")


def config(closed: Path, fake_upstream, over=None, name="dw.yaml") -> Path:
    lst = closed / "list.yaml"
    if not lst.exists():
        write_list(lst, ["first.example"])
    cfg = {
        "server": {"listen": [f"127.0.0.1:{harness.free_port()}"],
                   "allow_clients": ["127.0.0.0/8"]},
        "upstreams": [fake_upstream.server],
        "blocklist": {"files": [str(lst)]},
        "log": {"database": str(closed / "state" / "attempts.db")},
    }
    path = closed / name
    path.write_text(harness.to_yaml(harness.merge(cfg, over or {})))
    path.chmod(0o644)
    return path


def refused(cfg: Path, *expect):
    """check and serve both exit 1 and say each of expect (regexes)."""
    c = run("check", "-c", str(cfg))
    s = run("serve", "-c", str(cfg))
    for what, r in (("check", c), ("serve", s)):
        assert r.returncode == 1, f"{what}: {r.returncode}\n{r.stdout}{r.stderr}"
        for e in expect:
            assert re.search(e, r.stderr), f"{what}: no {e!r} in:\n{r.stderr}"
    return c, s


def test_database_directory_not_writable(fake_upstream, closed):
    """An existing directory the service user cannot write is not handed
    over: check and serve name it and the command that fixes it, and it
    keeps its owner."""
    (closed / "state").mkdir(mode=0o755)
    cfg = config(closed, fake_upstream)
    before = owners(closed)
    user = service_user()
    c, s = refused(cfg, rf"user {user} cannot create files in {closed}/state "
                        rf".*run \"chown {user} {closed}/state\"")
    assert "not serving without the attempt log" in s.stderr
    assert owners(closed) == before


def test_database_file_not_writable(fake_upstream, closed):
    """An existing database the user cannot write (an earlier run as root
    made it): named, with the chown that fixes it."""
    state = closed / "state"
    state.mkdir(mode=0o777)
    (state / "attempts.db").write_bytes(b"")
    (state / "attempts.db").chmod(0o600)
    cfg = config(closed, fake_upstream)
    user = service_user()
    refused(cfg, rf"user {user} cannot write {state}/attempts.db .*"
                 rf"run \"chown {user} {state}/attempts.db\"")
    assert os.stat(state / "attempts.db").st_uid == 0


def test_database_parent_is_a_file(fake_upstream, closed):
    (closed / "afile").write_text("x")
    cfg = config(closed, fake_upstream, {"log": {"database": str(closed / "afile" / "x" / "a.db")}})
    refused(cfg, rf"{closed}/afile is not a directory")


def test_database_is_a_directory(fake_upstream, closed):
    (closed / "state" / "attempts.db").mkdir(parents=True)
    cfg = config(closed, fake_upstream)
    refused(cfg, rf"{closed}/state/attempts.db is a directory, not a file")


def test_list_is_a_directory(fake_upstream, closed):
    (closed / "lists.d").mkdir()
    cfg = config(closed, fake_upstream, {"blocklist": {"files": [str(closed / "lists.d")]}})
    refused(cfg, rf"{closed}/lists.d: is a directory, not a YAML file")


def test_missing_user(fake_upstream, closed):
    """A server.user the file names must exist: no quiet fall-back."""
    cfg = config(closed, fake_upstream, {"server": {"user": "no-such-user-dw"}})
    refused(cfg, r"server.user no-such-user-dw: no such user")


def test_log_not_required(fake_upstream, dnswarden, closed):
    """log.required: false serves without a writable log, and says so
    before serving."""
    (closed / "state").mkdir(mode=0o755)
    lst = write_list(closed / "list.yaml", ["first.example"])
    dw = dnswarden([fake_upstream], {"log": {"database": str(closed / "state" / "a.db"),
                                             "required": False}}, blocklists=[lst])
    assert dw.wait_stderr("serving"), dw.stderr()
    err = dw.stderr()
    assert re.search(r"cannot create files in .*/state", err), err
    assert err.index("cannot create files") < err.index("serving"), err
    assert dw.query("www.first.example").rcode() == dns.rcode.NXDOMAIN


def test_unreadable_file_named(fake_upstream, closed):
    """A list the service user cannot read: check as root names it (serve
    as root reads it through its helper, reloads too); check and serve run
    as the service user itself (the systemd unit) refuse, naming it."""
    user = service_user()
    cfg = config(closed, fake_upstream, {"log": {"database": "/tmp/unused-dw/a.db"}})
    closed.chmod(0o755)                      # the user reaches the directory,
    lst = closed / "list.yaml"               # not the list (0600 root)
    r = run("check", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert re.search(rf"{lst}: not readable by user {user}", r.stderr), r.stderr
    cfg2 = config(closed, fake_upstream, {"log": {"database": "off"}}, name="dw2.yaml")
    for cmd in ("check", "serve"):
        r = run(cmd, "-c", str(cfg2), user=user)
        assert r.returncode == 1, f"{cmd}: {r.returncode}\n{r.stderr}"
        assert f"{lst}: cannot open: Permission denied" in r.stderr, r.stderr


def test_database_parent_missing_for_the_user(fake_upstream, closed):
    """Run as the service user itself (as the systemd unit runs it), a
    database whose directory is missing where that user cannot create it:
    check and serve name the directory and the command that makes it."""
    user = service_user()
    closed.chmod(0o755)                      # root's, not the user's
    cfg = config(closed, fake_upstream)
    (closed / "list.yaml").chmod(0o644)
    for cmd in ("check", "serve"):
        r = run(cmd, "-c", str(cfg), user=user)
        assert r.returncode == 1, f"{cmd}: {r.returncode}\n{r.stderr}"
        assert re.search(rf"{closed}/state.*Permission denied.*"
                         rf"install -d -o {user} -m 0750 {closed}/state", r.stderr), \
            f"{cmd}:\n{r.stderr}"
    assert not (closed / "state").exists()


def test_started_as_the_service_user_like_the_unit(fake_upstream, closed):
    """As the systemd unit starts it: as the service user, with
    CAP_NET_BIND_SERVICE as its one (ambient) capability. It binds a port
    below 1024, then holds no capability at all; a SIGHUP reads the
    configuration through the group (root:GROUP 0640) and applies it."""
    import random
    user = service_user()
    pw = pwd.getpwnam(user)
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is missing"
    port = next(p for p in random.sample(range(600, 1000), 400)
                if harness._port_free(p, False))
    closed.chmod(0o750)
    os.chown(closed, 0, pw.pw_gid)
    state = closed / "state"
    state.mkdir(mode=0o750)
    os.chown(state, pw.pw_uid, pw.pw_gid)
    lst = write_list(closed / "list.yaml", ["first.example"])
    # The unit's RuntimeDirectory= would give it /run/dnswarden.
    cfg = config(closed, fake_upstream,
                 {"server": {"listen": [f"127.0.0.1:{port}"],
                             "control_socket": str(state / "control.sock")}})
    for p in (cfg, lst):
        os.chown(p, 0, pw.pw_gid)
        p.chmod(0o640)
    fake_upstream.add("www.second.example", "A", "192.0.2.2")
    err = open(closed / "stderr.txt", "wb")
    proc = subprocess.Popen([setpriv, f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                             "--clear-groups", "--inh-caps=+net_bind_service",
                             "--ambient-caps=+net_bind_service",
                             user_binary(), "serve", "-c", str(cfg)],
                            stdout=err, stderr=err, cwd="/")
    text = lambda: (closed / "stderr.txt").read_text(errors="replace")
    try:
        end = time.monotonic() + 15
        while "serving" not in text() and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.05)
        assert "serving" in text(), text()
        st = status(proc.pid)
        assert st["Uid"] == [str(pw.pw_uid)] * 4, st["Uid"]
        for k in ("CapEff", "CapPrm", "CapAmb"):
            assert int(st[k][0], 16) == 0, f"{k} {st[k]}"
        assert children(proc.pid) == [], "no helper when not started as root"
        q = lambda n: harness.query("127.0.0.1", port, n).rcode()
        assert q("www.first.example") == dns.rcode.NXDOMAIN
        assert q("www.second.example") == dns.rcode.NOERROR
        write_list(lst, ["first.example", "second.example"])
        os.chown(lst, 0, pw.pw_gid)
        lst.chmod(0o640)
        since = len(text())
        proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + 10
        while "reloaded" not in text()[since:] and time.monotonic() < end:
            time.sleep(0.05)
        assert "reloaded" in text()[since:], text()[since:]
        assert q("www.second.example") == dns.rcode.NXDOMAIN
        assert wait_rows(state / "attempts.db", 2) == ["www.first.example",
                                                       "www.second.example"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, text()
        err.close()

"""End-to-end tests of the central log (issue 14): real dnswarden daemons
shipping their attempt rows to a real PostgreSQL 15 (pgserver.py, one for
the session, a database per test), through outages, a SIGKILL, wrong
credentials and a second daemon claiming the same instance.

Blocked queries never reach an upstream: the daemons forward to a dead
port and run with the per-client rate limit off.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import harness
import pgserver
from test_attemptlog import NOLIMIT, blast, db_rows, write_lists

_dbs = iter(range(1, 1000))


@pytest.fixture(scope="module")
def pg():
    s = pgserver.started()
    yield s
    s.close()


@pytest.fixture(scope="module")
def lists():
    d = Path(tempfile.mkdtemp(prefix="dnswarden-e2e-lists-"))
    d.chmod(0o755)
    yield [write_lists(d)]
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def db(pg):
    return pg.createdb(f"central{next(_dbs)}")


def start(dnswarden, dead_port, lists, conninfo, instance, extra=None, **kw):
    central = {"postgresql": conninfo}
    if instance:
        central["instance"] = instance
    overrides = {"server": NOLIMIT, "log": {"central": central}}
    overrides.update(extra or {})
    return dnswarden([dead_port], overrides=overrides, blocklists=lists, **kw)


# The outage of the fault test: 30 s under 1,000 blocked queries a
# second. CI runs a shorter one (the same rate); DNSWARDEN_CENTRAL_OUTAGE_S=30
# runs the (docs/central.md records such a run).
OUTAGE_S = float(os.environ.get("DNSWARDEN_CENTRAL_OUTAGE_S", "5"))
OUTAGE_RATE = 1000

METRICS_TOKEN = "central-test-metrics-token-0123456789abcdef"


def http_metrics():
    """An http section serving /metrics to a bearer token; (port, overrides)."""
    port = harness.free_port()
    return port, {"http": {"listen": [f"127.0.0.1:{port}"], "tokens": [
        {"name": "prometheus", "role": "metrics",
         "sha256": hashlib.sha256(METRICS_TOKEN.encode()).hexdigest()}]}}


def metrics(port):
    """The dnswarden_central_* samples of /metrics."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                 headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    return {m.group(1): int(m.group(2)) for m in
            re.finditer(r"^(dnswarden_central_[a-z_]+) (\d+)$", text, re.M)}


def ctl_stats(dw):
    """`dnswarden ctl stats`, as a dict."""
    res = dw.ctl("stats")
    assert res.returncode == 0, res.stderr
    return {k: int(v) for k, v in (line.split() for line in res.stdout.splitlines())}


def counters(dw, port):
    """The central counters from all three places: SIGUSR1, ctl stats and
    /metrics, read one after the other (each may be a moment later)."""
    return dw.stats(), ctl_stats(dw), metrics(port)


def names(tag, n):
    return [f"q{i}.{tag}.blocked-site.test" for i in range(n)]


def send(dw, tag, n, rate=None, until=None):
    answered, sent = blast(dw, names(tag, n), rate=rate, until=until, timeout=10.0)
    assert len(answered) == sent, f"{sent - len(answered)} queries unanswered"
    return sent


def central_ids(pg, db, instance):
    """The instance's central ids in order; none while the shipper has not
    made the tables yet (the start does not wait for that)."""
    try:
        return [int(r[0]) for r in pg.psql(db, "SELECT id FROM dnswarden_attempts WHERE"
                                           f" instance = '{instance}' ORDER BY id")]
    except RuntimeError as e:
        if 'relation "dnswarden_attempts" does not exist' in str(e):
            return []
        raise


def wait_shipped(pg, db, dw, instance, timeout=20.0, rows=None):
    """Wait until the local file holds rows rows (if given), then until every
    local row is in the central table; return the ids."""
    if rows is not None:
        harness.wait_for(lambda: len(db_rows(dw.database)) >= rows, f"{rows} rows written")
    local = [r["id"] for r in db_rows(dw.database)]
    ids = []

    def done():
        nonlocal ids
        try:
            ids = central_ids(pg, db, instance)
        except RuntimeError:
            return False
        return ids == local
    harness.wait_for(done, f"{len(local)} rows of {instance} shipped", timeout=timeout)
    return ids


# dnswarden_sums as defined (docs/central.md): per instance, a quarter
# hour's total (kind 0), per client (1), per rule, category and site (2),
# per policy (3), by UTC day (grain 1) and month (grain 2); NULL keys as ''.
SUMS_OF_ROWS = """SELECT v.kind, v.grain, v.t, v.k1, v.k2, v.k3, count(*),
 count(*) FILTER (WHERE visit), count(*) FILTER (WHERE verified)
 FROM (SELECT visit, verified, floor(extract(epoch FROM ts))::bigint AS s,
  extract(epoch FROM date_trunc('month', ts AT TIME ZONE 'UTC'))::bigint AS m,
  client, coalesce(client_name, '') AS cn, rule, category,
  coalesce(site, '') AS site, coalesce(policy, '') AS pol
  FROM dnswarden_attempts WHERE instance = '{i}') AS b
 CROSS JOIN LATERAL (VALUES (0, 0, s / 900 * 900, '', '', ''),
  (1, 1, s / 86400 * 86400, client, cn, ''), (1, 2, m, client, cn, ''),
  (2, 1, s / 86400 * 86400, rule, category, site), (2, 2, m, rule, category, site),
  (3, 1, s / 86400 * 86400, pol, '', ''), (3, 2, m, pol, '', ''))
  AS v (kind, grain, t, k1, k2, k3)
 GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6"""


def assert_sums_of_rows(pg, db, instance):
    """The central summaries count every central row of the instance once:
    none missed, none counted twice (a batch sent again after a lost
    acknowledgement, a SIGKILL, a local mark that lagged)."""
    kept = pg.psql(db, "SELECT kind, grain, t, k1, k2, k3, queries, attempts, verified"
                   f" FROM dnswarden_sums WHERE instance = '{instance}'"
                   " ORDER BY 1, 2, 3, 4, 5, 6")
    want = pg.psql(db, SUMS_OF_ROWS.format(i=instance))
    assert kept == want
    total = sum(int(r[6]) for r in kept if r[0] == "0")
    assert total == len(central_ids(pg, db, instance)) > 0


@pytest.mark.parametrize("key", ["postgresql", "console_postgresql"])
def test_check_names_a_bad_connection_string(workdir, key):
    """Both connection strings (the shipper's, the console's) are parsed
    by libpq's own parser at check, the error at the value's position."""
    p = workdir / "t.yaml"
    p.write_text('upstreams: ["127.0.0.1:9"]\nlog:\n  database: "a.db"\n'
                 f'  central:\n    {key}: "host=x port"\n')
    res = subprocess.run([harness._resolve_bin(), "check", "-c", str(p)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    col = 4 + len(key) + 3
    assert re.search(rf"t\.yaml:5:{col}: log\.central\.{key} is not a libpq connection"
                     r" string: missing \"=\" after \"port\"", res.stderr), res.stderr


def test_two_instances_each_row_once_in_order(pg, db, dnswarden, dead_port, lists):
    a = start(dnswarden, dead_port, lists, pg.conninfo(db), "site-a")
    b = start(dnswarden, dead_port, lists, pg.conninfo(db), "site-b")
    send(a, "a", 300)
    send(b, "b", 200)
    ids_a = wait_shipped(pg, db, a, "site-a", rows=300)
    ids_b = wait_shipped(pg, db, b, "site-b", rows=200)
    assert ids_a == list(range(1, 301)) and ids_b == list(range(1, 201))
    rows = pg.psql(db, "SELECT instance, count(*), count(DISTINCT qname) FROM"
                   " dnswarden_attempts GROUP BY 1 ORDER BY 1")
    assert rows == [["site-a", "300", "300"], ["site-b", "200", "200"]]
    # The column values travel unchanged.
    local = db_rows(a.database)[0]
    row = pg.psql(db, "SELECT client, qname, qtype, rule, category, site, transport,"
                  " verified, (extract(epoch FROM ts) * 1000)::bigint FROM"
                  " dnswarden_attempts WHERE instance = 'site-a' AND id = 1")[0]
    assert row == [local["client"], local["qname"], local["qtype"], local["rule"],
                   local["category"], local["site"], local["transport"],
                   "t" if local["verified"] else "f", str(local["ts"])]
    # Partitioned by month, the high-water marks kept on both sides.
    parts = pg.psql(db, "SELECT count(*) FROM pg_inherits WHERE inhparent ="
                    " 'dnswarden_attempts'::regclass")
    assert int(parts[0][0]) >= 2
    marks = pg.psql(db, "SELECT instance, shipped_id FROM dnswarden_instances ORDER BY 1")
    assert marks == [["site-a", "300"], ["site-b", "200"]]
    st = a.stats()
    assert st["central_rows_shipped"] == 300 and st["central_rows_waiting"] == 0
    assert st["central_connected"] == 1


def test_same_instance_twice_is_refused(pg, db, dnswarden, dead_port, lists, workdir):
    first = start(dnswarden, dead_port, lists, pg.conninfo(db), "twin")
    second = harness.Dnswarden(workdir / "second", [dead_port], overrides={
        "server": NOLIMIT, "log": {"central": {"postgresql": pg.conninfo(db),
                                               "instance": "twin"}}}, blocklists=lists)
    try:
        with pytest.raises(RuntimeError) as e:
            second.start()
        assert second.proc.wait(10) == 1
    finally:
        second.close()
    assert first.running()
    assert re.search(r'central: another dnswarden already ships as instance "twin" to this'
                     r' database \("dnswarden twin on .* pid \d+" from 127\.0\.0\.1\): give'
                     r' each daemon its own log\.central\.instance: not serving',
                     str(e.value)), str(e.value)


def central_rows(pg, db, instance):
    """(id, qname) of the instance's central rows, in id order."""
    return [(int(i), q) for i, q in pg.psql(db, "SELECT id, qname FROM dnswarden_attempts"
                                              f" WHERE instance = '{instance}' ORDER BY id")]


def local_rows(dw):
    return [(r["id"], r["qname"]) for r in db_rows(dw.database)]


def test_outage_rows_wait_and_arrive_once(pg, db, dnswarden, dead_port, lists):
    """The issue's fault test: PostgreSQL stopped for OUTAGE_S seconds
    under 1,000 blocked queries a second, then started again."""
    port, http = http_metrics()
    dw = start(dnswarden, dead_port, lists, pg.conninfo(db), "site-o", extra=http)
    send(dw, "before", 100)
    wait_shipped(pg, db, dw, "site-o", rows=100)
    sig, ctl, met = counters(dw, port)
    assert sig["central_rows_shipped"] == ctl["central_rows_shipped"] == 100
    assert met["dnswarden_central_rows_shipped_total"] == 100
    assert met["dnswarden_central_up"] == 1 and met["dnswarden_central_rows_waiting"] == 0
    since = len(dw.stderr())
    n = int(OUTAGE_S * OUTAGE_RATE)
    pg.stop()
    try:
        # Every query answered while the database is down: the DNS path
        # never waits for it.
        send(dw, "during", n, rate=OUTAGE_RATE)
        # The counters saw the lag, in all three places.
        sig = harness.wait_for(lambda: (lambda s: s if s.get("central_rows_waiting") == n
                                        else None)(dw.stats()), f"{n} rows waiting")
        assert sig["central_connected"] == 0 and sig["central_rows_shipped"] == 100
        assert sig["central_seconds_behind"] >= int(OUTAGE_S) - 1
        ctl = ctl_stats(dw)
        assert ctl["central_rows_waiting"] == n and ctl["central_connected"] == 0
        assert ctl["central_seconds_behind"] >= int(OUTAGE_S) - 1
        met = metrics(port)
        assert met["dnswarden_central_rows_waiting"] == n
        assert met["dnswarden_central_up"] == 0
        assert met["dnswarden_central_seconds_behind"] >= int(OUTAGE_S) - 1
        assert met["dnswarden_central_rows_shipped_total"] == 100
    finally:
        pg.start()
    ids = wait_shipped(pg, db, dw, "site-o", timeout=60, rows=100 + n)
    # Every row once, in order: the central rows are the local ones.
    assert ids == list(range(1, 101 + n))
    assert central_rows(pg, db, "site-o") == local_rows(dw)
    assert_sums_of_rows(pg, db, "site-o")
    sig, ctl, met = counters(dw, port)
    for k in ("central_rows_waiting", "central_seconds_behind"):
        assert sig[k] == ctl[k] == 0, (k, sig, ctl)
    assert sig["central_rows_shipped"] == ctl["central_rows_shipped"] == 100 + n
    assert met == {"dnswarden_central_rows_shipped_total": 100 + n,
                   "dnswarden_central_rows_waiting": 0,
                   "dnswarden_central_seconds_behind": 0, "dnswarden_central_up": 1}
    log = dw.stderr()[since:]
    # A line when it went down (and when the cause changed: the batch that
    # broke, then the refused connections), one when it came back: not one
    # per retry, of which there were several during the outage.
    down = re.findall(r"central: .*rows wait in the local file.*", log)
    assert 1 <= len(down) <= 2 and len(set(down)) == len(down), log
    assert "Connection refused" in down[-1]
    assert len(re.findall(r"central: shipping to ", log)) == 1, log


def backend_pids(pg, db, instance):
    return [r[0] for r in pg.psql(db, "SELECT pid FROM pg_stat_activity WHERE"
                                  f" application_name LIKE 'dnswarden {instance} on %'")]


def test_connection_dropped_mid_batch(pg, db, dnswarden, dead_port, lists):
    """pg_terminate_backend on the shipper's session, again and again
    while rows flow: it reconnects, and every row arrives once, in order."""
    dw = start(dnswarden, dead_port, lists, pg.conninfo(db), "site-d")
    since = len(dw.stderr())
    done = threading.Event()
    kills = []

    def killer():
        while not done.is_set() and len(kills) < 5:
            pids = backend_pids(pg, db, "site-d")
            if not pids or pg.psql(db, f"SELECT pg_terminate_backend({pids[0]})") != [["t"]]:
                continue
            kills.append(pids[0])
            # Then wait for the shipper's next session before the next kill.
            harness.wait_for(lambda: done.is_set() or
                             any(p not in kills for p in backend_pids(pg, db, "site-d")),
                             "the shipper's next session", timeout=30)
    t = threading.Thread(target=killer)
    t.start()
    try:
        sent = send(dw, "d", 4000, rate=OUTAGE_RATE)
    finally:
        done.set()
        t.join()
    assert len(kills) >= 2, kills
    wait_shipped(pg, db, dw, "site-d", timeout=60, rows=sent)
    assert central_rows(pg, db, "site-d") == local_rows(dw)
    assert_sums_of_rows(pg, db, "site-d")
    assert dw.stats()["central_rows_waiting"] == 0
    log = dw.stderr()[since:]
    assert re.search(r"central: .*(terminating connection due to administrator command|"
                     r"server closed the connection unexpectedly).*rows wait in the local"
                     r" file", log), log


def test_slow_database_never_holds_dns(pg, db, dnswarden, dead_port, lists):
    """A central table locked by another session (the shipper's INSERT
    waits on it, as on a database too slow to answer): every query is
    answered, rows wait and are counted, then arrive once the lock goes."""
    dw = start(dnswarden, dead_port, lists, pg.conninfo(db), "site-s")
    send(dw, "first", 10)
    wait_shipped(pg, db, dw, "site-s", rows=10)
    locker = pg.session(db)
    try:
        locker.stdin.write("BEGIN;\nLOCK TABLE dnswarden_attempts IN ACCESS EXCLUSIVE"
                           " MODE;\nSELECT 'locked';\n")
        locker.stdin.flush()
        assert locker.stdout.readline().strip() == "locked"
        send(dw, "wake", 1)
        # The shipper is now waiting for the lock, in the middle of a batch.
        harness.wait_for(lambda: pg.psql(db, "SELECT count(*) FROM pg_stat_activity WHERE"
                                          " application_name LIKE 'dnswarden site-s on %'"
                                          " AND wait_event_type = 'Lock'") == [["1"]],
                         "the shipper waiting on the lock")
        send(dw, "slow", 2000, rate=OUTAGE_RATE)
        harness.wait_for(lambda: dw.stats().get("central_rows_waiting") == 2001,
                         "2001 rows waiting")
        # (the table itself cannot be read through the lock: the mark can)
        assert pg.psql(db, "SELECT shipped_id FROM dnswarden_instances WHERE"
                       " instance = 'site-s'") == [["10"]]
    finally:
        locker.stdin.write("COMMIT;\n")
        locker.stdin.close()
        locker.wait(30)
    wait_shipped(pg, db, dw, "site-s", timeout=60, rows=2011)
    assert central_rows(pg, db, "site-s") == local_rows(dw)



def test_schema_lock_held_elsewhere_holds_neither_start_nor_stop(pg, db, dnswarden, dead_port,
                                                                  lists):
    """Another session holds the central schema's lock (a site upgrading a
    large table, a DBA): the daemon starts and answers all the same, its
    rows wait, a stop is not held by the lock; started again once the lock
    is gone, it ships them."""
    locker = pg.session(db)
    try:
        locker.stdin.write("BEGIN;\nSELECT 'locked' FROM (SELECT"
                           " pg_advisory_xact_lock(7361626)) AS l;\n")
        locker.stdin.flush()
        assert locker.stdout.readline().strip() == "locked"
        dw = start(dnswarden, dead_port, lists, pg.conninfo(db), "site-l")
        send(dw, "l", 30)
        harness.wait_for(lambda: dw.stats().get("central_rows_waiting") == 30, "30 rows waiting")
        assert pg.psql(db, "SELECT to_regclass('dnswarden_attempts') IS NULL") == [["t"]]
        dw.stop()
    finally:
        locker.stdin.write("COMMIT;\n")
        locker.stdin.close()
        locker.wait(30)
    dw.start()
    wait_shipped(pg, db, dw, "site-l", rows=30)


def test_full_disk_there_rows_wait(pg, db, dnswarden, dead_port, lists, workdir):
    """The central tables on a tablespace on a 1 MiB tmpfs: PostgreSQL
    runs out of space, the shipper says so and keeps the rows, and when
    the file system grows they arrive once, in order."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for the tablespace needs root")
    space = workdir / "tiny"
    space.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(space)],
                   check=True)
    try:
        pg.chown(space)
        pg.psql(db, f"CREATE TABLESPACE tiny_{db} OWNER dw LOCATION '{space}'")
        pg.psql(db, f"ALTER DATABASE {db} SET default_tablespace = tiny_{db}")
        dw = start(dnswarden, dead_port, lists, pg.conninfo(db), "site-f")
        since = len(dw.stderr())
        sent = send(dw, "f", 12000, rate=2000)
        assert dw.wait_stderr("No space left on device", since=since, timeout=60), \
            dw.stderr()[since:]
        harness.wait_for(lambda: dw.stats().get("central_rows_waiting", 0) > 0,
                         "rows waiting")
        harness.wait_for(lambda: len(db_rows(dw.database)) == sent, f"{sent} rows written")
        subprocess.run(["mount", "-o", "remount,size=64m", str(space)], check=True)
        wait_shipped(pg, db, dw, "site-f", timeout=60, rows=sent)
        assert central_rows(pg, db, "site-f") == local_rows(dw)
        dw.close()
        # FORCE: the daemon's backend may outlive its client by a moment.
        pg.psql("postgres", f"DROP DATABASE {db} WITH (FORCE)")
        pg.psql("postgres", f"DROP TABLESPACE tiny_{db}")
    finally:
        subprocess.run(["umount", "-l", str(space)], check=False)


def test_sigkill_mid_batch_loses_and_doubles_nothing(pg, db, dnswarden, dead_port, lists):
    dw = start(dnswarden, dead_port, lists, pg.conninfo(db), "site-k")
    sent = []

    def sender():
        try:
            # Its answers are not checked: after the kill, the queries in
            # flight are given up after 1 s, not waited for 10 s.
            blast(dw, names("k", 3000), rate=1000, timeout=1.0)
        except OSError:
            pass  # the daemon was killed under it
        sent.append(True)
    t = threading.Thread(target=sender)
    t.start()
    # Kill while rows are being shipped: some in PostgreSQL, some not.
    harness.wait_for(lambda: len(central_ids(pg, db, "site-k")) >= 300, "shipping under way")
    dw.kill()
    t.join()
    dw.start()
    ids = wait_shipped(pg, db, dw, "site-k", timeout=30)
    local = [r["id"] for r in db_rows(dw.database)]
    assert ids == local and len(ids) == len(set(ids))
    assert_sums_of_rows(pg, db, "site-k")


def assert_shipped_since_start(dw, n):
    """Once nothing waits, the rows shipped since the daemon started
    (SIGUSR1 counters, as /metrics and ctl give them) are n: rows read
    again and not sent, or dropped by the key, are not counted."""
    harness.wait_for(lambda: dw.stats().get("central_rows_waiting") == 0, "none waiting")
    assert dw.stats()["central_rows_shipped"] == n


def test_rows_sent_again_are_counted_once(pg, db, dnswarden, dead_port, lists):
    """A local mark behind the central one (written once a second; a lost
    acknowledgement): the rows in between are read again but not sent (they
    are at or below the central mark), and the summaries do not count them
    twice."""
    dw = start(dnswarden, dead_port, lists, pg.conninfo(db), "site-r")
    send(dw, "r1", 500)
    wait_shipped(pg, db, dw, "site-r", rows=500)
    assert_sums_of_rows(pg, db, "site-r")
    dw.stop()
    with sqlite3.connect(dw.database) as f:
        f.execute("UPDATE central_outbox SET shipped_id = 100 WHERE instance = 'site-r'")
    dw.start()
    send(dw, "r2", 200)
    ids = wait_shipped(pg, db, dw, "site-r", rows=700)
    assert ids == list(range(1, 701))
    assert_sums_of_rows(pg, db, "site-r")
    # The 200 new rows, not the 400 read again.
    assert_shipped_since_start(dw, 200)


def test_rows_above_the_mark_already_there_are_kept_once(pg, db, dnswarden, dead_port, lists):
    """Rows above the central mark that the table holds already (the mark
    set back by hand; an earlier dnswarden could lower it): the COPY of the
    batch fails on the key, the batch goes again through the staging table
    whose ON CONFLICT DO NOTHING drops the copies, and shipping goes on."""
    dw = start(dnswarden, dead_port, lists, pg.conninfo(db), "site-m")
    send(dw, "m1", 300)
    wait_shipped(pg, db, dw, "site-m", rows=300)
    dw.stop()
    pg.psql(db, "UPDATE dnswarden_instances SET shipped_id = 100 WHERE instance = 'site-m'")
    with sqlite3.connect(dw.database) as f:
        f.execute("UPDATE central_outbox SET shipped_id = 100 WHERE instance = 'site-m'")
    dw.start()
    send(dw, "m2", 200)
    ids = wait_shipped(pg, db, dw, "site-m", rows=500)
    assert ids == list(range(1, 501))
    harness.wait_for(lambda: pg.psql(db, "SELECT shipped_id FROM dnswarden_instances"
                                     " WHERE instance = 'site-m'") == [["500"]], "mark 500")
    assert "cannot" not in dw.stderr(), dw.stderr()
    # 301-500; 101-300 were dropped by the key.
    assert_shipped_since_start(dw, 200)


def test_mark_behind_by_more_than_a_batch_is_never_lowered(pg, db, workdir, dead_port, lists):
    """A local mark behind the central one by more than a batch (a SIGKILL
    while catching up fast): the batches read again up to the central mark
    send nothing and leave the mark where it was, so the rows after it are
    counted once in the summaries (a mark set down to a batch's last id
    counted them again)."""
    d = harness.Dnswarden(workdir / "site-l", [dead_port], overrides={
        "server": NOLIMIT, "log": {"retention_days": 0, "central": {
            "postgresql": pg.conninfo(db), "instance": "site-l"}}}, blocklists=lists)
    # More rows than a batch holds (CENTRAL_BATCH_ROWS, central.c).
    subprocess.run([gen_bin(), str(d.database), "130000", "50", "12", "1", "now"],
                   check=True, capture_output=True, timeout=120)
    for f in d.database.parent.iterdir():
        f.chmod(0o666)
    try:
        d.start()
        wait_shipped(pg, db, d, "site-l", timeout=120)
        d.stop()
        with sqlite3.connect(d.database) as f:
            f.execute("UPDATE central_outbox SET shipped_id = 0 WHERE instance = 'site-l'")
        d.start()
        send(d, "l", 50)
        ids = wait_shipped(pg, db, d, "site-l", timeout=60, rows=130050)
        assert ids == list(range(1, 130051))
        assert_sums_of_rows(pg, db, "site-l")
    finally:
        d.close()


def test_wrong_password_says_so_and_keeps_rows(pg, db, dnswarden, dead_port, lists):
    dw = start(dnswarden, dead_port, lists, pg.conninfo(db, password="wrong"), "site-w")
    assert dw.wait_stderr('password authentication failed for user "dw"', timeout=10)
    send(dw, "w", 50)
    harness.wait_for(lambda: dw.stats().get("central_rows_waiting") == 50, "50 rows waiting")
    assert len(db_rows(dw.database)) == 50
    assert "central: cannot connect" in dw.stderr()
    assert pg.psql(db, "SELECT to_regclass('dnswarden_attempts') IS NULL") == [["t"]]



def test_unreachable_host_never_holds_dns(dnswarden, dead_port, lists):
    """A database host that does not answer, as behind a firewall that drops
    packets: a listening socket whose accept queue is full, so that the
    kernel drops the shipper's SYNs. The daemon starts and answers, says why
    in one line, the rows wait, and a stop is not held by the connect."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    first = socket.create_connection(("127.0.0.1", port), timeout=5)  # fills the queue
    try:
        dw = start(dnswarden, dead_port, lists, f"host=127.0.0.1 port={port} dbname=x"
                   " user=dw connect_timeout=2", "site-u")
        assert dw.wait_stderr("central: cannot connect to the central database:", timeout=15)
        lines = [ln for ln in dw.stderr().splitlines() if "central:" in ln]
        assert len(lines) == 1 and "timeout expired" in lines[0], lines
        send(dw, "u", 20)
        harness.wait_for(lambda: dw.stats().get("central_rows_waiting") == 20, "20 rows waiting")
        assert dw.stats()["central_connected"] == 0
        assert len(db_rows(dw.database)) == 20
        dw.stop()
    finally:
        first.close()
        lsock.close()


def test_nothing_answering_is_probed_often(dnswarden, dead_port, lists):
    """While no server answers at all (PostgreSQL stopped or restarting),
    the shipper looks every 250 ms whether one does, so that the first batch
    follows its return at once instead of after a backoff that a long
    outage took to 10 s. A listener that closes each connection before a
    word, as no server would, counts the attempts: at least 20 in 15 s,
    where the backoff alone (0.2 s doubling) makes 7."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    lsock.settimeout(0.1)
    port = lsock.getsockname()[1]
    seen = []
    done = threading.Event()

    def accept():
        while not done.is_set():
            try:
                conn, _ = lsock.accept()
            except socket.timeout:
                continue
            seen.append(time.monotonic())
            conn.close()
    t = threading.Thread(target=accept)
    t.start()
    try:
        dw = start(dnswarden, dead_port, lists, f"host=127.0.0.1 port={port} dbname=x"
                   " user=dw sslmode=disable gssencmode=disable connect_timeout=2", "site-p")
        harness.wait_for(lambda: len(seen) >= 20, lambda: f"20 attempts (saw {len(seen)})",
                         timeout=15)
        # One line for the outage, not one per attempt.
        lines = [ln for ln in dw.stderr().splitlines() if "central:" in ln]
        assert len(lines) == 1, lines
        dw.stop()
    finally:
        done.set()
        t.join()
        lsock.close()


def test_incompatible_central_table_is_named(pg, db, dnswarden, dead_port, lists):
    pg.psql(db, "CREATE TABLE dnswarden_attempts (instance text, id integer, ts bigint);"
            " ALTER TABLE dnswarden_attempts OWNER TO dw")
    dw = start(dnswarden, dead_port, lists, pg.conninfo(db), "site-x")
    assert dw.wait_stderr("central: central table dnswarden_attempts has an incompatible"
                          " shape: column id is integer, expected bigint", timeout=10), \
        dw.stderr()
    send(dw, "x", 10)
    harness.wait_for(lambda: dw.stats().get("central_rows_waiting") == 10, "10 rows waiting")



# docs/central.md, "Roles and grants": what a DBA gives the resolvers' role
# and the readers' once the owner's first daemon has made the tables.
RESOLVER_GRANTS = """
GRANT SELECT ON dnswarden_meta TO {r};
GRANT SELECT, INSERT, UPDATE ON dnswarden_instances TO {r};
GRANT INSERT ON dnswarden_attempts TO {r};
GRANT SELECT, INSERT, UPDATE ON dnswarden_sums TO {r};
"""
READER_GRANTS = "GRANT SELECT ON dnswarden_meta, dnswarden_attempts, dnswarden_sums TO {r};"


def role_conninfo(pg, db, role):
    return (f"host=127.0.0.1 port={pg.port} dbname={db} user={role} password=pw-{role}"
            " connect_timeout=3")


def test_documented_grants_are_enough(pg, db, dnswarden, dead_port, lists, workdir):
    """A resolver with the documented grants (it owns nothing, and cannot
    read the attempts' queried names) ships; a reader with SELECT only runs
    report --central and log --central."""
    owner = start(dnswarden, dead_port, lists, pg.conninfo(db), "site-owner")
    send(owner, "o", 5)
    wait_shipped(pg, db, owner, "site-owner", rows=5)
    owner.stop()
    pg.psql(db, "DROP ROLE IF EXISTS dw_resolver; DROP ROLE IF EXISTS dw_reader;"
            " CREATE ROLE dw_resolver LOGIN PASSWORD 'pw-dw_resolver';"
            " CREATE ROLE dw_reader LOGIN PASSWORD 'pw-dw_reader';"
            + RESOLVER_GRANTS.format(r="dw_resolver") + READER_GRANTS.format(r="dw_reader"))
    dw = start(dnswarden, dead_port, lists, role_conninfo(pg, db, "dw_resolver"), "site-r")
    send(dw, "r", 40)
    wait_shipped(pg, db, dw, "site-r", rows=40)
    assert "cannot" not in dw.stderr(), dw.stderr()
    # Insert-only: the resolver cannot read the rows back, its own site's
    # or another's (the summaries are added up before they are sent).
    for col in ("qname", "client"):
        res = pg._run("psql", role_conninfo(pg, db, "dw_resolver"), "-At", "-c",
                      f"SELECT {col} FROM dnswarden_attempts LIMIT 1", check=False)
        assert res.returncode != 0 and "permission denied" in res.stderr, res.stderr
    cfg = workdir / "reader.yaml"
    cfg.write_text('log:\n  database: "a.db"\n  central:\n    postgresql: "'
                   + role_conninfo(pg, db, "dw_reader") + '"\n')
    rows = csv_rows(cli("report", "--central", "--by", "instance", "--format", "csv",
                        config=cfg).stdout)
    assert {(r["instance"], r["queries"]) for r in rows} == {("site-owner", "5"),
                                                            ("site-r", "40")}, rows
    log = cli("log", "--central", "--instance", "site-r", "--format", "csv", config=cfg)
    assert len(csv_rows(log.stdout)) == 40
    # The reader writes nothing.
    res = pg._run("psql", role_conninfo(pg, db, "dw_reader"), "-At", "-c",
                  "DELETE FROM dnswarden_attempts", check=False)
    assert res.returncode != 0 and "permission denied" in res.stderr, res.stderr


# --- reading across sites: report --central and log --central ---------------

BYS = ["", "day", "week", "month", "client", "category", "site", "domain", "policy",
       "instance"]
COUNT_COLS = ["queries", "attempts", "verified_queries", "unverified_queries"]


def gen_bin():
    """report_scale_gen, built beside the binary under test."""
    p = Path(harness._resolve_bin()).resolve().parent.parent / "attemptlog" / "report_scale_gen"
    assert p.exists(), f"{p} is missing (ninja builds it)"
    return str(p)


def cli(*args, config=None, ok=True):
    cmd = [harness._resolve_bin(), *args] + (["-c", str(config)] if config else [])
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if ok:
        assert res.returncode == 0, (cmd, res.stderr)
    return res


def csv_rows(text):
    import csv
    import io
    return list(csv.DictReader(io.StringIO(text.replace("\r\n", "\n"))))


def summed(reports):
    """The rows of several local reports (CSV rows) added up by their keys."""
    out = {}
    for rows in reports:
        for r in rows:
            key = tuple((k, v) for k, v in r.items() if k not in COUNT_COLS)
            acc = out.setdefault(key, dict(r, **{c: 0 for c in COUNT_COLS}))
            for c in COUNT_COLS:
                acc[c] += int(r[c])
    return {k: {c: str(v[c]) if c in COUNT_COLS else v[c] for c in v} for k, v in out.items()}


@pytest.fixture
def two_sites(pg, db, workdir, dead_port, lists):
    """Two daemons whose local files hold a known history (report_scale_gen:
    months of attempts in 2025), shipped to one PostgreSQL."""
    sites = []
    for name, args in (("site-a", ["30000", "40", "12", "200"]),
                       ("site-b", ["20000", "25", "12", "120"])):
        d = harness.Dnswarden(workdir / name, [dead_port], overrides={
            "server": NOLIMIT, "log": {"retention_days": 0, "central": {
                "postgresql": pg.conninfo(db), "instance": name}}}, blocklists=lists)
        subprocess.run([gen_bin(), str(d.database), *args], check=True, capture_output=True,
                       timeout=120)
        for f in d.database.parent.iterdir():
            f.chmod(0o666)
        sites.append(d)
    try:
        for d in sites:
            d.start()
        for d, name in zip(sites, ("site-a", "site-b")):
            wait_shipped(pg, db, d, name, timeout=60)
        yield sites
    finally:
        for d in sites:
            d.close()


PERIODS = [[], ["--since", "2025-06-10T10:07:13Z", "--until", "2025-09-20T13:52:40Z"],
           ["--since", "2025-07-03", "--until", "2025-08-31", "--tz", "Europe/Berlin"]]


def test_central_report_is_the_sum_of_the_local_ones(two_sites):
    a, b = two_sites
    for period in PERIODS:
        for by in BYS:
            byarg = ["--by", by] if by else []
            local = [csv_rows(cli("report", *period, *byarg, "--format", "csv",
                                  config=d.config_path).stdout) for d in (a, b)]
            want = summed(local)
            got_csv = cli("report", "--central", *period, *byarg, "--format", "csv",
                          config=a.config_path).stdout
            got = csv_rows(got_csv)
            assert {tuple((k, v) for k, v in r.items() if k not in COUNT_COLS): r
                    for r in got} == want, (period, by)
            assert len(got) == len(want)
            if by in ("day", "week", "month"):
                assert [r[by] for r in got] == sorted(r[by] for r in got)
            else:  # the local order: attempts, then queries, descending
                keys = [(-int(r["attempts"]), -int(r["queries"])) for r in got]
                assert keys == sorted(keys), (period, by)
            js = json.loads(cli("report", "--central", *period, *byarg, "--format", "json",
                                config=a.config_path).stdout)
            assert [{k: str(v) if v is not None else "" for k, v in r.items()
                     if k != "period_rows_lost"} for r in js] == got, (period, by)
            table = cli("report", "--central", *period, *byarg,
                        config=a.config_path).stdout.splitlines()
            assert table[0].startswith("Blocked attempts at all instances from ")
            assert len(table) == 2 + len(got), table
        # --by instance: each site's row is its local total; --instance: one site.
        inst = {r["instance"]: r for r in csv_rows(cli(
            "report", "--central", *period, "--by", "instance", "--format", "csv",
            config=b.config_path).stdout)}
        for d, name in ((a, "site-a"), (b, "site-b")):
            total = csv_rows(cli("report", *period, "--format", "csv",
                                 config=d.config_path).stdout)[0]
            mine = csv_rows(cli("report", *period, "--by", "instance", "--format", "csv",
                                config=d.config_path).stdout)
            if total["queries"] == "0":  # site-b's history starts in September
                assert name not in inst and mine == []
                continue
            assert {c: inst[name][c] for c in COUNT_COLS} == total
            assert mine == [dict(instance=name, **total)]
            only = csv_rows(cli("report", "--central", "--instance", name, *period,
                                "--by", "site", "--format", "csv",
                                config=a.config_path).stdout)
            assert only == csv_rows(cli("report", *period, "--by", "site", "--format", "csv",
                                        config=d.config_path).stdout)



def test_retention_by_dropping_months(two_sites, pg, db):
    """docs/central.md's retention: detach and drop the months before a
    date, delete their summaries; the central report then counts exactly
    the local rows from that date on, and the central log lists none
    before it."""
    a, b = two_sites
    cut = "2025-09-01"
    months = [r[0] for r in pg.psql(db, "SELECT c.relname FROM pg_inherits i JOIN pg_class c"
                                        " ON c.oid = i.inhrelid WHERE i.inhparent ="
                                        " 'dnswarden_attempts'::regclass ORDER BY 1")]
    old = [m for m in months if m < "dnswarden_attempts_2025_09"]
    assert old, months
    for m in old:  # one statement each: CONCURRENTLY runs outside a transaction
        pg.psql(db, f"ALTER TABLE dnswarden_attempts DETACH PARTITION {m} CONCURRENTLY")
        pg.psql(db, f"DROP TABLE {m}")
    pg.psql(db, "DELETE FROM dnswarden_sums WHERE t < extract(epoch FROM"
            f" timestamptz '{cut} 00:00:00+00')")
    period = ["--since", cut, "--tz", "UTC"]
    for byarg in ([], ["--by", "month"], ["--by", "site"]):
        want = summed([csv_rows(cli("report", *period, *byarg, "--format", "csv",
                                    config=d.config_path).stdout) for d in (a, b)])
        got = csv_rows(cli("report", "--central", "--tz", "UTC", *byarg, "--format", "csv",
                           config=a.config_path).stdout)
        assert {tuple((k, v) for k, v in r.items() if k not in COUNT_COLS): r
                for r in got} == want, byarg
    # (a bare date as --until would include that whole day)
    res = cli("log", "--central", "--until", cut + "T00:00:00Z", "--format", "csv",
              config=a.config_path)
    assert csv_rows(res.stdout) == []
    assert len(csv_rows(cli("log", "--central", "--since", cut + "T00:00:00Z", "--limit",
                            "5", "--format", "csv", config=a.config_path).stdout)) == 5


def test_central_log_pages_newest_first_across_sites(two_sites, pg, db):
    a, b = two_sites
    want = [(r[0], r[1]) for r in pg.psql(
        db, "SELECT instance, id FROM dnswarden_attempts WHERE ts >= '2025-12-31'"
        " ORDER BY ts DESC, instance DESC, id DESC")]
    assert {i for i, _ in want} == {"site-a", "site-b"}
    got, before = [], []
    while True:
        rows = csv_rows(cli("log", "--central", "--since", "2025-12-31", "--tz", "UTC",
                            "--limit", "50", *before, "--format", "csv",
                            config=a.config_path).stdout)
        got += [(r["instance"], r["id"]) for r in rows]
        if len(rows) < 50:
            break
        before = ["--before", f"{rows[-1]['instance']}:{rows[-1]['id']}"]
    assert got == want
    # One site's rows are its local log, with the instance beside them.
    local = csv_rows(cli("log", "--since", "2025-12-31", "--tz", "UTC", "--limit", "0",
                         "--format", "csv", config=b.config_path).stdout)
    central = csv_rows(cli("log", "--central", "--instance", "site-b", "--since",
                           "2025-12-31", "--tz", "UTC", "--limit", "0", "--format", "csv",
                           config=a.config_path).stdout)
    assert [{k: v for k, v in r.items() if k != "instance"} for r in central] == local
    assert {r["instance"] for r in central} == {"site-b"}
    # Locally --instance keeps the file's own rows, or none.
    assert cli("log", "--instance", "site-a", "--limit", "1", config=a.config_path).stdout
    res = cli("log", "--instance", "site-b", config=a.config_path)
    assert "no attempts at instance site-b" in res.stderr


def test_central_errors_are_one_line(pg, db, workdir):
    plain = workdir / "plain.yaml"
    plain.write_text('upstreams: ["127.0.0.1:9"]\nlog:\n  database: "a.db"\n')
    for cmd in ("report", "log"):
        res = cli(cmd, "--central", config=plain, ok=False)
        assert res.returncode == 1
        assert res.stderr == (f"dnswarden {cmd}: {plain}: log.central.postgresql is not set:"
                              " --central reads the central database it names\n")
    down = workdir / "down.yaml"
    down.write_text('log:\n  database: "a.db"\n  central:\n    postgresql: "host=127.0.0.1'
                    f' port={harness.free_port()} dbname=x user=dw connect_timeout=3"\n')
    res = cli("report", "--central", config=down, ok=False)
    assert res.returncode == 1 and len(res.stderr.splitlines()) == 1, res.stderr
    assert res.stderr.startswith("dnswarden report: cannot connect to the central database: ")
    assert "Connection refused" in res.stderr
    empty = workdir / "empty.yaml"
    empty.write_text(f'log:\n  database: "a.db"\n  central:\n    postgresql: "{pg.conninfo(db)}"\n')
    res = cli("log", "--central", config=empty, ok=False)
    assert res.returncode == 1
    assert res.stderr == (f"dnswarden log: the central database {db} has no table"
                          " dnswarden_attempts: no dnswarden has shipped to it yet, or"
                          " log.central.postgresql names another database\n")
    res = cli("report", "--central", "--database", "a.db", config=empty, ok=False)
    assert res.returncode == 2
    res = cli("log", "--central", "--before", "12", config=empty, ok=False)
    assert res.returncode == 2 and "NAME:ID" in res.stderr


def test_upgraded_file_ships_its_visits_decided(pg, db, workdir, dead_port, lists):
    """A file of schema version 2 (no visit column) is upgraded at start;
    its old rows get visit NULL until the writer's catch-up decides it.
    With no DNS traffic at all, the rows still reach the central table
    only once decided: every central report equals the local one."""
    import console
    d = harness.Dnswarden(workdir / "old", [dead_port], overrides={
        "server": NOLIMIT, "log": {"retention_days": 0, "central": {
            "postgresql": pg.conninfo(db), "instance": "site-old"}}}, blocklists=lists)
    # Many visits of a few clients and sites: the upgrade's catch-up takes
    # several steps, and a row shipped before it would count no attempt.
    extra = [(d_ago, s, f"10.0.1.{s % 7}", "www.backpage.com")
             for d_ago in (4, 5) for s in range(0, 20000, 25)]
    console.write_history(d.database, extra)
    d.start()
    try:
        wait_shipped(pg, db, d, "site-old", timeout=60)
        assert_sums_of_rows(pg, db, "site-old")
        local_total = csv_rows(cli("report", "--format", "csv",
                                   config=d.config_path).stdout)[0]
        assert int(local_total["attempts"]) > 0
        for by in BYS:
            byarg = ["--by", by] if by else []
            local = csv_rows(cli("report", *byarg, "--format", "csv",
                                 config=d.config_path).stdout)
            central = csv_rows(cli("report", "--central", "--instance", "site-old", *byarg,
                                   "--format", "csv", config=d.config_path).stdout)
            assert central == local, by
    finally:
        d.close()

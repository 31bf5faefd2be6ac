"""The console reading the central PostgreSQL (issues 13 and 14): two
daemons, each over a known history, ship their rows to one real
PostgreSQL 15 (conftest's pg_shared); /api/v1/report and /api/v1/attempts
with central=1 answer as `dnswarden report --central` and `log --central`
do, for all sites and for one, and say so plainly when there is no
central database or it is down."""

import itertools
import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import harness
from console import Console
from test_attemptlog import NOLIMIT, blast, db_rows
from test_central import READER_GRANTS, csv_rows, role_conninfo, summed, wait_shipped

SAMPLE = harness.REPO / "blocklist" / "sample-sites.yaml"
# Blocked queries each site answers (and logs, and ships): (count, name).
A_QUERIES = [(30, "q{}.backpage.com"), (10, "q{}.rubmaps.com")]
B_QUERIES = [(20, "q{}.backpage.com")]
_dbs = itertools.count(1)  # this module's fixture runs again where imported


def central(conninfo, instance):
    return {"server": NOLIMIT,
            "log": {"central": {"postgresql": conninfo, "instance": instance}}}


def query(dw, spec):
    names = [fmt.format(i) for n, fmt in spec for i in range(n)]
    answered, sent = blast(dw, names, timeout=10.0)
    assert len(answered) == sent == len(names)
    harness.wait_for(lambda: len(db_rows(dw.database)) == len(names),
                     lambda: f"{len(names)} rows written, not {len(db_rows(dw.database))}")


@pytest.fixture(scope="module")
def sites(pg_shared, nsd_shared):
    """site-a (with the console) and site-b, their blocked queries shipped."""
    d = Path(tempfile.mkdtemp(prefix="dnswarden-console-central-"))
    d.chmod(0o755)
    db = pg_shared.createdb(f"console_central{next(_dbs)}")
    conninfo = pg_shared.conninfo(db)
    b = harness.Dnswarden(d / "b", [nsd_shared], ipv6=False, blocklists=[SAMPLE],
                          overrides=central(conninfo, "site-b"))
    b.start()
    a = Console(d / "a", nsd_shared, blocklists=[SAMPLE], more=central(conninfo, "site-a"),
                history=False)
    try:
        query(a.dw, A_QUERIES)
        query(b, B_QUERIES)
        wait_shipped(pg_shared, db, a.dw, "site-a", timeout=60)
        wait_shipped(pg_shared, db, b, "site-b", timeout=60)
        a.pg, a.pgdb = pg_shared, db
        yield a, b
    finally:
        a.close()
        b.close()
        problems = a.dw.problems() + b.problems()
        shutil.rmtree(d, ignore_errors=True)
        assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def plain(nsd_shared):
    """A console without log.central."""
    d = Path(tempfile.mkdtemp(prefix="dnswarden-console-plain-"))
    d.chmod(0o755)
    c = Console(d / "dw", nsd_shared, blocklists=[SAMPLE])
    yield c
    c.close()
    shutil.rmtree(d, ignore_errors=True)


def cli(dw, *args):
    res = subprocess.run([harness._resolve_bin(), *args, "-c", str(dw.config_path)],
                         capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.parametrize("by", [None, "day", "client", "site", "instance"])
def test_all_sites_csv_is_the_clis_and_counts_both(sites, by):
    a, b = sites
    byarg = ["--by", by] if by else []
    q = "&by=" + by if by else ""
    r = a.client("hr1").get(f"/api/v1/report?central=1&format=csv{q}")
    assert r.status == 200 and r.header("Content-Type").startswith("text/csv"), r.text
    want = cli(a.dw, "report", "--central", *byarg, "--format", "csv")
    assert r.body == want
    if by != "instance":  # both sites' rows, each counted once
        local = [csv_rows(cli(d, "report", *byarg, "--format",
                              "csv").decode()) for d in (a.dw, b)]
        got = csv_rows(r.text)
        assert {tuple((k, v) for k, v in row.items() if k not in
                      ("queries", "attempts", "verified_queries", "unverified_queries")): row
                for row in got} == summed(local)


def test_all_sites_total_is_the_sum(sites):
    a, b = sites
    [total] = a.client("hr1").get("/api/v1/report?central=1").json()
    assert (total["queries"], total["attempts"]) == (60, 3)
    by = {row["instance"]: (row["queries"], row["attempts"]) for row in a.client("hr1").get(
        "/api/v1/report?central=1&by=instance").json()}
    assert by == {"site-a": (40, 2), "site-b": (20, 1)}
    [mine] = a.client("hr1").get("/api/v1/report").json()
    assert (mine["queries"], mine["attempts"]) == (40, 2)


def test_console_reads_with_the_reader_role(sites, nsd_shared):
    """log.central.console_postgresql: a console that ships nothing (a
    central reporting box) reads every site with a role of the documented
    reader grants (SELECT only), which the resolvers' insert-only role
    could not."""
    a, b = sites
    role = "dw_console_reader"  # test_central's grants test drops dw_reader
    a.pg.psql(a.pgdb, f"DROP ROLE IF EXISTS {role};"
              f" CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}';"
              + READER_GRANTS.format(r=role))
    d = Path(tempfile.mkdtemp(prefix="dnswarden-console-reader-"))
    d.chmod(0o755)
    c = Console(d / "dw", nsd_shared, blocklists=[SAMPLE], history=False, more={
        "log": {"central": {"console_postgresql": role_conninfo(a.pg, a.pgdb, role)}}})
    try:
        by = {row["instance"]: (row["queries"], row["attempts"]) for row in
              c.client("hr1").get("/api/v1/report?central=1&by=instance").json()}
        assert by == {"site-a": (40, 2), "site-b": (20, 1)}
        r = c.client("sec1").get("/api/v1/attempts?central=1&instance=site-b&limit=100")
        assert r.status == 200 and len(r.json()) == 20, r.text
        # The reports page offers the sites, read with that role.
        page = c.client("hr1").get("/reports").text
        assert [v for v, _, _ in selector(page)] == ["", "all", "instance:site-a",
                                                     "instance:site-b"], selector(page)
        # It ships nothing: no instance of its own in the central database.
        assert a.pg.psql(a.pgdb, "SELECT DISTINCT instance FROM dnswarden_attempts"
                         " ORDER BY 1") == [["site-a"], ["site-b"]]
    finally:
        c.close()
        a.pg.psql(a.pgdb, f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role};"
                  f" DROP ROLE {role};")
        shutil.rmtree(d, ignore_errors=True)


def test_one_instance_is_its_own_report(sites):
    a, b = sites
    r = a.client("hr1").get("/api/v1/report?central=1&instance=site-b&by=site"
                            "&format=csv")
    assert r.status == 200, r.text
    assert r.body == cli(a.dw, "report", "--central", "--instance", "site-b", "--by", "site",
                         "--format", "csv")
    assert csv_rows(r.text) == csv_rows(cli(b, "report", "--by", "site", "--since",
                                            "2000-01-01", "--format", "csv").decode())


def test_central_attempts_as_log_central(sites):
    a, b = sites
    r = a.client("sec1").get("/api/v1/attempts?central=1&instance=site-b&limit=5")
    assert r.status == 200, r.text
    want = json.loads(cli(a.dw, "log", "--central", "--instance", "site-b", "--limit", "5",
                          "--format", "json"))
    assert r.json() == want and len(want) == 5
    assert {row["instance"] for row in want} == {"site-b"}
    # The next page, from the last row's NAME:ID, as the CLI's --before.
    last = want[-1]
    r = a.client("sec1").get(f"/api/v1/attempts?central=1&limit=5"
                             f"&before={last['instance']}:{last['id']}")
    assert r.json() == json.loads(cli(a.dw, "log", "--central", "--limit", "5", "--before",
                                      f"{last['instance']}:{last['id']}", "--format", "json"))
    # HR never sees a single attempt, from any site.
    assert a.client("hr1").get("/api/v1/attempts?central=1&limit=5").status == 403


def newest_audit(con):
    rows = con.session("admin1").get("/api/v1/audit?limit=20").json()
    return [r for r in rows if r["user"] != "admin1"][0]


def test_audit_row_records_the_site(sites):
    a, _ = sites
    a.client("hr1").get("/api/v1/report?central=1&instance=site-b&by=day")
    row = newest_audit(a)
    assert (row["user"], row["action"], row["detail"]) == (
        "hr1", "read report", "central=1 instance=site-b by=day")
    a.client("sec1").get("/api/v1/attempts?central=1&limit=3")
    row = newest_audit(a)
    assert (row["action"], row["detail"]) == ("read attempts", "central=1 limit=3")


@pytest.mark.parametrize("path,why", [
    ("/api/v1/report?central=1&instance=site-x", "no instance site-x"),
    ("/api/v1/attempts?central=1&instance=site-x&limit=5", "no instance site-x"),
    ("/api/v1/report?central=yes", "central: use 1"),
    ("/api/v1/attempts?limit=5&before=site-b:3", "before: NAME:ID is for central=1"),
])
def test_bad_central_parameters_400(sites, path, why):
    a, _ = sites
    r = a.client("sec1").get(path)
    assert r.status == 400 and r.header("Content-Type") == "application/json", r.text
    assert why in r.json()["error"]


def test_central_not_configured_400(plain):
    for path in ("/api/v1/report?central=1", "/api/v1/attempts?central=1&limit=5"):
        r = plain.client("sec1").get(path)
        assert r.status == 400, r.text
        assert "log.central.postgresql is not set" in r.json()["error"]
    # central=0 is the local log, as without the parameter.
    assert plain.client("hr1").get("/api/v1/report?central=0").status == 200


def test_central_down_is_a_quick_clear_error(nsd_shared):
    d = Path(tempfile.mkdtemp(prefix="dnswarden-console-down-"))
    d.chmod(0o755)
    down = f"host=127.0.0.1 port={harness.free_port()} dbname=x user=dw password=x"
    # The console's own string alone: with log.central.postgresql the
    # shipper would also connect to the port, on its own backoff, and the
    # listener below could not tell its attempts from the console's.
    more = {"server": NOLIMIT, "log": {"central": {"console_postgresql": down}}}
    c = Console(d / "dw", nsd_shared, blocklists=[SAMPLE], more=more)
    try:
        t0 = time.monotonic()
        r = c.client("hr1").get("/api/v1/report?central=1")
        assert time.monotonic() - t0 < 3
        assert r.status == 503, r.text
        assert r.json()["error"].startswith("cannot connect to the central database: ")
        # The local log is still there, and DNS answers.
        assert c.client("hr1").get("/api/v1/report").status == 200
        # For a while after a failed connect the console answers with that
        # failure at once, without connecting: an unreachable host would
        # otherwise cost every request the connect timeout. A listener on
        # the port now would see any new attempt.
        port = int(down.split("port=")[1].split()[0])
        lsn = socket.socket()
        lsn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsn.bind(("127.0.0.1", port))
        lsn.listen(8)
        lsn.setblocking(False)
        try:
            r = c.client("sec1").get("/api/v1/attempts?central=1&limit=5")
            assert r.status == 503, r.text
            assert "tries again 10 s after a failure" in r.json()["error"]
            with pytest.raises(BlockingIOError):
                lsn.accept()
        finally:
            lsn.close()
    finally:
        c.close()
        shutil.rmtree(d, ignore_errors=True)


# --- the pages: the site selector ---------------------------------------------------

def selector(text):
    """The options of the site selector: [(value, label, selected)]."""
    import re
    m = re.search(r'<select name="sites" id="sites">(.*?)</select>', text)
    if m is None:
        return None
    return [(v, label, bool(sel)) for v, sel, label in
            re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>', m.group(1))]


@pytest.mark.parametrize("user,path", [("hr1", "/"), ("hr1", "/reports"),
                                       ("sec1", "/attempts")])
def test_pages_offer_every_site(sites, user, path):
    a, _ = sites
    r = a.client(user).get(path)
    assert r.status == 200
    assert selector(r.text) == [("", "this site", True), ("all", "all sites", False),
                                ("instance:site-a", "site-a", False),
                                ("instance:site-b", "site-b", False)]
    r = a.client(user).get(path + "?sites=instance:site-b")
    assert ("instance:site-b", "site-b", True) in selector(r.text)


def test_no_selector_without_central(plain):
    for path in ("/", "/reports"):
        r = plain.client("hr1").get(path)
        assert r.status == 200 and 'name="sites"' not in r.text
    r = plain.client("hr1").get("/reports?sites=all")
    assert "sites: log.central.postgresql is not set" in r.text


def test_reports_page_all_sites_and_its_csv(sites):
    a, _ = sites
    c = a.client("hr1")
    r = c.get("/reports?by=instance&sites=all")
    assert r.status == 200
    import re
    href = re.search(r'<a id="csv" href="([^"]*)"', r.text).group(1).replace("&amp;", "&")
    assert href == "/api/v1/report?by=instance&central=1&format=csv"
    cells = re.findall(r'<td class="(?:text|num)"[^>]*>([^<]*)</td>', r.text)
    assert cells == ["site-a", "40", "2", "0", "40", "site-b", "20", "1", "0", "20"], cells
    csv = c.get(href)
    assert csv.body == cli(a.dw, "report", "--central", "--by", "instance", "--format", "csv")
    r = c.get("/reports?by=site&sites=instance:site-b")
    href = re.search(r'<a id="csv" href="([^"]*)"', r.text).group(1).replace("&amp;", "&")
    assert href == "/api/v1/report?by=site&central=1&instance=site-b&format=csv"
    row = newest_audit(a)
    assert (row["action"], row["detail"]) == ("read report", "by=site sites=instance:site-b")


def test_attempts_page_one_site(sites):
    a, _ = sites
    r = a.client("sec1").get("/attempts?sites=instance:site-b")
    assert r.status == 200
    assert "q0.backpage.com" in r.text and "rubmaps" not in r.text
    assert 'href="/attempts?client=127.0.0.1&amp;sites=instance%3Asite-b"' in r.text
    r = a.client("sec1").get("/attempts?sites=all")
    assert "rubmaps" in r.text and "site-b" in r.text


def test_overview_of_all_sites(sites):
    a, _ = sites
    r = a.client("sec1").get("/?sites=all")
    assert r.status == 200 and "cannot be read" not in r.text
    # the top sites count both sites' queries; the recent attempts name them
    assert "<td class=\"num\">50</td>" in r.text and "site-b" in r.text


def test_instance_names_from_the_database_are_escaped(sites):
    """An instance name is what some resolver shipped: shown inert."""
    a, _ = sites
    evil = '"><script>alert(1)</script>'
    a.pg.psql(a.pgdb, "INSERT INTO dnswarden_sums VALUES ('" + evil.replace("'", "''")
              + "', 0, 0, 0, '', '', '', 0, 0, 0)")
    try:
        r = a.client("hr1").get("/reports")
        assert "<script>alert" not in r.text
        assert ('<option value="instance:&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">'
                "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</option>") in r.text
    finally:
        a.pg.psql(a.pgdb, "DELETE FROM dnswarden_sums WHERE instance = '"
                  + evil.replace("'", "''") + "'")

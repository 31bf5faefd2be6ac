"""The web console's JSON API, pages and metrics: every endpoint for every
role, sessions and CSRF, the lock-out, the headers every page carries, a
query name with <script> rendered inert, the CSV equal to the CLI's, the
audit trail, /metrics in the Prometheus text format, and bad requests
answered 4xx without harm to the daemon."""

import hashlib
import http.client
import json
import re
import secrets
import subprocess
import shutil
import signal
import socket
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import harness
from console import (EXPECTED_DAYS, XSS_NAME, Client, Console, day_start)

SAMPLE = harness.REPO / "blocklist" / "sample-sites.yaml"


# Two groups whose policies leave commercial-sex out, for lookup?client=.
POLICIES = [
    {"name": "investigators", "clients": ["10.9.0.0/24"], "categories": []},
    {"name": "guests", "clients": ["10.8.0.0/24"], "categories": ["dns-bypass"]},
]


@pytest.fixture(scope="module")
def con(nsd_shared):
    # World-readable: the daemon runs as nobody once started as root.
    d = Path(tempfile.mkdtemp(prefix="dnswarden-console-"))
    d.chmod(0o755)
    c = Console(d / "dw", nsd_shared, blocklists=[SAMPLE], policies=POLICIES)
    yield c
    c.close()
    problems = c.dw.problems()
    shutil.rmtree(d, ignore_errors=True)
    assert not problems, "\n".join(problems) + "\n" + c.dw.stderr()[-4000:]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


# --- who may read what -----------------------------------------------------------

ENDPOINTS = {
    # path: roles that get 200
    "/api/v1/status": {"admin1", "sec1", "hr1"},
    "/api/v1/report?by=day": {"admin1", "sec1", "hr1"},
    "/api/v1/attempts?limit=5": {"admin1", "sec1"},
    "/api/v1/lookup?name=www.backpage.com": {"admin1", "sec1"},
    "/api/v1/audit": {"admin1"},
    "/metrics": {"admin1", "metrics"},
}


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_every_endpoint_for_every_role(con, path):
    anon = con.client().get(path)
    assert anon.status == 401, anon.text
    assert "error" in anon.json()
    for user in ("admin1", "sec1", "hr1"):
        r = con.session(user).get(path)
        want = 200 if user in ENDPOINTS[path] else 403
        assert r.status == want, f"{user} {path}: {r.status} {r.text}"
        if want == 403:
            assert "error" in r.json()
    r = con.client().get(path, headers=bearer(con.metrics_token))
    assert r.status == (200 if "metrics" in ENDPOINTS[path] else 403), r.text
    r = con.client().get(path, headers=bearer("0" * 64))
    assert r.status == 401


PAGES = {
    # page: roles that get 200 (the others are logged in and get 403)
    "/": {"admin1", "sec1", "hr1"},
    "/reports": {"admin1", "sec1", "hr1"},
    "/attempts": {"admin1", "sec1"},
    "/blocklist": {"admin1", "sec1", "hr1"},
    "/status": {"admin1", "sec1", "hr1"},
    "/audit": {"admin1"},
}


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_for_every_role(con, path):
    # Without a session the console sends the login page (at "/") or back
    # to it; never a view.
    anon = con.client().get(path)
    if path == "/":
        assert anon.status == 200 and 'id="login"' in anon.text
        assert 'id="logout"' not in anon.text
    else:
        assert anon.status == 303 and anon.header("Location") == "/", anon.status
    for user in ("admin1", "sec1", "hr1"):
        r = con.session(user).get(path)
        want = 200 if user in PAGES[path] else 403
        assert r.status == want, f"{user} {path}: {r.status}"
        assert r.header("Content-Type").startswith("text/html")
        if want == 403:
            assert 'id="refused"' in r.text
        # The navigation offers only the pages the role may open.
        for other, roles in PAGES.items():
            link = f'href="{other}"' in r.text
            assert link == (user in roles), (user, path, other)
        # The page shown is marked in the navigation, and only it.
        if want == 200:
            assert r.text.count('class="here"') == 1, (user, path)
            assert f'<a href="{path}" class="here">' in r.text, (user, path)
    # The metrics role reads /metrics only: no page, no nav.
    r = con.client().get(path, headers=bearer(con.metrics_token))
    assert r.status == 403 and 'href="/reports"' not in r.text


def test_hr_token_reads_reports_not_attempts(con):
    c = con.client()
    assert c.get("/api/v1/report", headers=bearer(con.hr_token)).status == 200
    assert c.get("/api/v1/attempts", headers=bearer(con.hr_token)).status == 403


def test_hr_never_sees_a_query_name(con):
    c = con.client("hr1")
    for path in ("/", "/reports", "/reports?by=site", "/reports?by=client", "/blocklist",
                 "/status", "/api/v1/report?by=site", "/api/v1/report?by=domain",
                 "/api/v1/report?by=client&format=csv"):
        r = c.get(path)
        assert r.status == 200, (path, r.text)
        for name in ("www.backpage.com", "www.eros.com", "alert(1)"):
            assert name not in r.text, (path, name)
    assert c.get("/attempts").status == 403


# --- sessions --------------------------------------------------------------------

def test_login_cookie_attributes(con):
    c = Client(con.port)
    r = c.login("hr1", "hr-pass-123")
    assert r.status == 200
    body = r.json()
    assert body["role"] == "hr" and len(body["csrf"]) == 64
    cookie = [x for x in r.cookies() if x.startswith("dw_session=")][0]
    attrs = [a.strip() for a in cookie.split(";")]
    assert "HttpOnly" in attrs and "SameSite=Strict" in attrs and "Path=/" in attrs
    assert "Secure" not in attrs   # no TLS here; test_console_tls checks it with TLS


def test_wrong_user_and_wrong_password_answer_alike(con):
    a = Client(con.port).login("hr1", "not-the-password")
    b = Client(con.port).login("nobody-at-all", "not-the-password")
    assert a.status == b.status == 401
    assert a.body == b.body
    assert not a.cookies() and not b.cookies()


def test_logout_needs_csrf_and_ends_the_session(con):
    c = con.client("sec1")
    assert c.get("/api/v1/status").status == 200
    r = c.post("/api/v1/logout", csrf=False)
    assert r.status == 403 and "CSRF" in r.json()["error"]
    r = c.post("/api/v1/logout", headers={"X-CSRF-Token": "0" * 64}, csrf=False)
    assert r.status == 403
    assert c.get("/api/v1/status").status == 200   # still logged in
    assert c.post("/api/v1/logout").status == 200
    assert c.get("/api/v1/status").status == 401


def test_lockout_per_address(con):
    c = Client(con.port, source="127.0.0.9")
    for _ in range(5):
        assert c.login("admin1", "wrong").status == 401
    r = c.login("admin1", "admin-pass-1")
    assert r.status == 429, r.text
    assert "error" in r.json()
    # Another address is not locked out.
    assert Client(con.port, source="127.0.0.10").login("admin1", "admin-pass-1").status == 200


BAD_LOGINS = [
    b"",
    b"user=hr1&password=hr-pass-123",
    b"[]",
    b'{"user": "hr1"}',
    b'{"user": 1, "password": "hr-pass-123"}',
    b'{"user": "hr1", "password": "hr-pass-123", "user": "admin1"}',
    b'{"user": "hr1", "password": "hr-pass-\\u0000123"}',
    b'{"user": "hr1\\u0000", "password": "hr-pass-123"}',
    b'{"user": "\xff\xfe", "password": "hr-pass-123"}',
    b'{"user": "hr1", "password": "hr-pass-123"\x00}',
    b'{"user": "' + b"u" * 200 + b'", "password": "x"}',
]


@pytest.mark.parametrize("body", BAD_LOGINS)
def test_bad_login_bodies_400_json(con, body):
    # Not JSON, a field missing or of the wrong type, a repeated key, a NUL
    # or bytes that are not UTF-8, too long: 400 with a JSON error, no
    # session, and no failure counted towards the address's lock-out.
    c = Client(con.port, source="127.0.0.11")
    r = c.post("/api/v1/login", body, csrf=False,
               headers={"Content-Type": "application/json"})
    assert r.status == 400, (body, r.status, r.text)
    assert "error" in r.json() and not r.cookies()
    assert c.login("hr1", "hr-pass-123").status == 200


def test_logout_without_a_session_401(con):
    r = con.client().post("/api/v1/logout")
    assert r.status == 401 and "error" in r.json()


def test_get_cannot_change_state(con):
    c = con.client("admin1")
    assert c.get("/api/v1/logout").status == 405
    assert c.get("/api/v1/login").status == 405


# --- headers and escaping --------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/reports", "/attempts", "/blocklist", "/status",
                                  "/audit", "/api/v1/status", "/static/app.js", "/nope"])
def test_csp_and_nosniff_on_every_answer(con, path):
    r = con.client("admin1").get(path)
    csp = r.header("Content-Security-Policy")
    assert csp and "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert r.header("X-Content-Type-Options") == "nosniff"


def test_pages_have_no_inline_script(con):
    c = con.client("admin1")
    for path in ("/", "/reports", "/attempts", "/blocklist", "/status", "/audit"):
        text = c.get(path).text
        for tag in text.split("<script")[1:]:
            assert tag.lstrip().startswith("src=\"/static/"), (path, tag[:80])
        assert " on" + "click=" not in text and "javascript:" not in text


def test_script_in_a_query_name_is_inert(con):
    c = con.client("sec1")
    for path in ("/attempts", "/"):
        text = c.get(path).text
        assert "x&lt;script&gt;alert(1)&lt;/script&gt;.backpage.com" in text, path
        assert "<script>alert" not in text
    rows = c.get("/api/v1/attempts?client=10.0.0.3").json()
    assert [r["qname"] for r in rows] == [XSS_NAME]


# --- the data --------------------------------------------------------------------

@pytest.mark.parametrize("by", ["day", "week", "month", "client", "site", "category",
                                "domain", None])
def test_report_csv_identical_to_cli(con, by):
    q = "format=csv" + (f"&by={by}" if by else "")
    r = con.client("hr1").get(f"/api/v1/report?{q}")
    assert r.status == 200 and r.header("Content-Type").startswith("text/csv")
    args = ["report", "--format", "csv"] + (["--by", by] if by else [])
    cli = con.cli(*args)
    assert cli.returncode == 0, cli.stderr
    assert r.body == cli.stdout


def test_report_json_same_rows_as_cli(con):
    r = con.client("hr1").get("/api/v1/report?by=site&since=2000-01-01&top=5")
    cli = con.cli("report", "--by", "site", "--since", "2000-01-01", "--top", "5",
                  "--format", "json")
    assert r.json() == json.loads(cli.stdout)


def test_report_shared_answer_still_audited_each_read(con):
    # Readers of one report within a second share one query's answer
    # (docs/console.md): the same bytes, and one audit row per read.
    c = con.client("hr1")
    q = "/api/v1/report?by=category&since=2000-01-01&top=7"
    before = len([a for a in con.session("admin1").get("/api/v1/audit?limit=1000").json()
                  if a["detail"] == "by=category since=2000-01-01 top=7"])
    bodies = {c.get(q).body for _ in range(3)}
    assert len(bodies) == 1
    rows = [a for a in con.session("admin1").get("/api/v1/audit?limit=1000").json()
            if a["detail"] == "by=category since=2000-01-01 top=7"]
    assert len(rows) == before + 3


def test_report_answer_renewed_once_new_rows_written(nsd_shared):
    # A shared report answer lasts while no row is written; the first
    # read after new attempts are committed counts them, however soon
    # after the last read it comes. Each read is audited all the same.
    # A daemon of its own: the new attempts are today's.
    d = Path(tempfile.mkdtemp(prefix="dnswarden-console-cache-"))
    d.chmod(0o755)
    con = Console(d / "dw", nsd_shared, blocklists=[SAMPLE])
    try:
        c = con.client("hr1")
        q = "/api/v1/report?by=site&since=2000-01-01&top=40"
        detail = "by=site since=2000-01-01 top=40"

        def tna():
            r = c.get(q)
            assert r.status == 200, r.text
            return next((row["queries"] for row in r.json() if row["site"] == "TNA Board"), 0)

        def written():
            return con.session("admin1").get("/api/v1/status").json()["log"]["written"]

        before = tna()
        assert tna() == before
        w = written()
        for i in range(3):
            assert con.dw.query(f"n{i}.tnaboard.com").rcode() == 3
        end = time.monotonic() + 10
        while written() < w + 3:
            assert time.monotonic() < end, "the three attempts were not written"
            time.sleep(0.02)
        assert tna() == before + 3
        assert tna() == before + 3
        rows = [a for a in con.session("admin1").get("/api/v1/audit?limit=1000").json()
                if a["detail"] == detail and a["user"] == "hr1"]
        assert len(rows) == 4
    finally:
        con.close()
        problems = con.dw.problems()
        shutil.rmtree(d, ignore_errors=True)
    assert not problems, "\n".join(problems)


def test_reload_reaches_the_console_while_it_answers(nsd_shared):
    # A reload hands the console its new configuration without waiting
    # for it: a token added by the reload works from then on, the old
    # ones still do, and readers busy across several reloads in a row
    # are all answered (the replaced configurations are freed by the
    # console's thread once it has left them; ASan would see a use after).
    d = Path(tempfile.mkdtemp(prefix="dnswarden-console-reload-"))
    d.chmod(0o755)
    con = Console(d / "dw", nsd_shared, blocklists=[SAMPLE])
    try:
        later = secrets.token_hex(32)
        c = Client(con.port)
        assert c.get("/api/v1/report?by=site", headers=bearer(later)).status == 401
        errors, stop = [], threading.Event()

        def reader():
            while not stop.is_set():
                r = Client(con.port).get("/api/v1/report?by=site",
                                         headers=bearer(con.hr_token))
                if r.status != 200:
                    errors.append(r.status)

        readers = [threading.Thread(target=reader) for _ in range(4)]
        for t in readers:
            t.start()
        try:
            cfg = con.dw.config
            cfg["http"]["tokens"].append({"name": "later-script", "role": "hr",
                                          "sha256": hashlib.sha256(later.encode()).hexdigest()})
            con.dw.write_config(cfg)
            for _ in range(3):
                con.dw.send_signal(signal.SIGHUP)
            end = time.monotonic() + 10
            while c.get("/api/v1/report?by=site", headers=bearer(later)).status != 200:
                assert time.monotonic() < end, "the reloaded token never worked"
                time.sleep(0.05)
        finally:
            stop.set()
            for t in readers:
                t.join()
        assert errors == []
        assert c.get("/api/v1/status", headers=bearer(con.hr_token)).status == 200
    finally:
        con.close()
        problems = con.dw.problems()
        shutil.rmtree(d, ignore_errors=True)
    assert not problems, "\n".join(problems)


def test_report_by_day_has_the_history(con):
    rows = con.client("hr1").get("/api/v1/report?by=day").json()
    got = {r["day"]: r["attempts"] for r in rows}
    want = {time.strftime("%Y-%m-%d", time.gmtime(day_start(d) / 1000)): n
            for d, n in EXPECTED_DAYS.items()}
    assert got == want


def test_attempts_page_with_before(con):
    c = con.client("sec1")
    first = c.get("/api/v1/attempts?limit=3").json()
    assert len(first) == 3
    ids = [r["id"] for r in first]
    assert ids == sorted(ids, reverse=True)
    rest = c.get(f"/api/v1/attempts?limit=100&before={ids[-1]}").json()
    assert [r["id"] for r in rest] == sorted((r["id"] for r in rest), reverse=True)
    assert all(r["id"] < ids[-1] for r in rest)
    assert len(first) + len(rest) == 7
    cli = con.cli("log", "--limit", "0", "--format", "json")
    cli_rows = json.loads(cli.stdout)
    assert first + rest == cli_rows


def test_attempts_filter_by_client(con):
    rows = con.client("sec1").get("/api/v1/attempts?client=10.0.0.1").json()
    assert len(rows) == 5 and {r["client"] for r in rows} == {"10.0.0.1"}


def test_lookup_answers_as_the_cli(con):
    c = con.client("sec1")
    r = c.get("/api/v1/lookup?name=www.backpage.com").json()
    assert r["blocked"] is True and r["rule"] == "backpage.com"
    assert r["category"] == "commercial-sex" and r["site"] == "Backpage"
    cli = con.cli("lookup", "www.backpage.com")
    assert f"source={r['source']}:{r['line']}" in cli.stdout.decode()
    assert c.get("/api/v1/lookup?name=example.org").json()["blocked"] is False
    r = c.get("/api/v1/lookup?name=www.backpage.com&client=10.1.2.3")
    assert r.status == 200 and r.json()["client"] == "10.1.2.3"
    assert r.json()["blocked"] is True and r.json()["policy"] is None
    assert c.get("/api/v1/lookup?name=a..b").status == 400
    assert c.get("/api/v1/lookup?name=x&client=not-an-address").status == 400


@pytest.mark.parametrize("client,name,blocked,policy", [
    ("10.9.0.7", "www.backpage.com", False, "investigators"),
    ("10.8.0.7", "www.backpage.com", False, "guests"),
    ("10.8.0.7", "use-application-dns.net", True, "guests"),
    ("10.7.0.7", "www.backpage.com", True, None),
])
def test_lookup_applies_the_clients_policy(con, client, name, blocked, policy):
    r = con.client("sec1").get(f"/api/v1/lookup?name={name}&client={client}")
    assert r.status == 200, r.text
    assert (r.json()["blocked"], r.json()["policy"]) == (blocked, policy)
    cli = con.cli("lookup", "--client", client, name).stdout.decode()
    assert f"policy {policy or '(default'}" in cli
    assert f"{name} {'blocked' if blocked else 'allowed'}" in cli


def test_status_counts(con):
    con.dw.query("www.backpage.com")
    s = con.client("hr1").get("/api/v1/status").json()
    assert s["version"] and s["uptime_seconds"] >= 0
    assert s["blocklist_entries"] > 20
    assert s["counters"]["blocked"] >= 1 and s["counters"]["queries"] >= 1


# --- the audit trail -------------------------------------------------------------

def newest_audit(con, n=1):
    """The newest n audit rows but the reading admin's own."""
    rows = con.session("admin1").get("/api/v1/audit?limit=20").json()
    return [r for r in rows if r["user"] != "admin1"][:n]


def test_audit_row_per_read(con):
    c = con.client("sec1")
    c.get("/api/v1/report?by=site&top=3")
    [row] = newest_audit(con)
    assert (row["user"], row["role"], row["action"]) == ("sec1", "security", "read report")
    assert row["detail"] == "by=site top=3" and row["remote"] == "127.0.0.1"
    c.get("/api/v1/attempts?client=10.0.0.1&limit=2")
    [row] = newest_audit(con)
    assert (row["action"], row["detail"]) == ("read attempts", "client=10.0.0.1 limit=2")
    c.get("/api/v1/lookup?name=www.backpage.com")
    [row] = newest_audit(con)
    assert (row["action"], row["detail"]) == ("lookup", "name=www.backpage.com")
    c.get("/attempts?site=Backpage")
    [row] = newest_audit(con)
    assert (row["action"], row["detail"]) == ("read attempts", "site=Backpage")
    # The pages and the CSV export are reads too, each with its parameters.
    c.get("/reports?by=client")
    [row] = newest_audit(con)
    assert (row["action"], row["detail"]) == ("read report", "by=client")
    h = con.client("hr1")
    h.get("/api/v1/report?by=category&format=csv")
    [row] = newest_audit(con)
    assert (row["user"], row["action"], row["detail"]) == (
        "hr1", "read report", "by=category format=csv")
    c.get("/blocklist?name=www.eros.com")
    [row] = newest_audit(con)
    assert row["action"] == "lookup" and "www.eros.com" in row["detail"]


def test_audit_logins_failures_logouts(con):
    Client(con.port).login("hr1", "wrong-password")
    [row] = newest_audit(con)
    assert (row["user"], row["action"]) == ("hr1", "login failed")
    c = con.client("hr1")
    [login] = newest_audit(con, 1)
    assert (login["user"], login["action"]) == ("hr1", "login")
    c.post("/api/v1/logout")
    rows = con.client("admin1").get("/api/v1/audit?limit=10").json()
    actions = [(r["user"], r["action"]) for r in rows]
    assert ("hr1", "logout") in actions and ("hr1", "login") in actions
    assert ("hr1", "login failed") in actions


def test_audit_rows_of_concurrent_reads_all_written_by_shutdown(nsd_shared):
    # The console queues each read's row and a thread of its own writes
    # them: under 20 readers at once none is lost, and the rows still
    # queued when the daemon is told to stop are written before it exits.
    d = Path(tempfile.mkdtemp(prefix="dnswarden-console-audit-"))
    d.chmod(0o755)
    c = Console(d / "dw", nsd_shared, blocklists=[SAMPLE])
    try:
        errors = []

        def reader(i):
            conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
            try:
                for j in range(10):
                    conn.request("GET", f"/api/v1/report?by=site&top={i * 10 + j + 1}",
                                 headers=bearer(c.hr_token))
                    r = conn.getresponse()
                    r.read()
                    if r.status != 200:
                        errors.append(r.status)
            finally:
                conn.close()

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        c.dw.stop()
        db = sqlite3.connect(c.dw.database)
        tops = sorted(int(detail.split("top=")[1]) for (detail,) in db.execute(
            "SELECT detail FROM audit WHERE user = 'hr-script' AND action = 'read report'"))
        db.close()
        assert tops == list(range(1, 201))
    finally:
        c.close()
        problems = c.dw.problems()
        shutil.rmtree(d, ignore_errors=True)
    assert not problems, "\n".join(problems)


def test_audit_page_for_admin(con):
    con.client("hr1").get("/api/v1/report?by=category")
    text = con.client("admin1").get("/audit").text
    assert "read report" in text and "by=category" in text


# --- metrics ---------------------------------------------------------------------

def test_metrics_parse_with_required_names(con):
    con.dw.query("www.backpage.com")
    end = time.monotonic() + 5
    while True:
        r = con.client().get("/metrics", headers=bearer(con.metrics_token))
        assert r.status == 200 and r.header("Content-Type").startswith("text/plain")
        samples = {}
        for fam in text_string_to_metric_families(r.text):
            for s in fam.samples:
                samples.setdefault(s.name, []).append(s)
        if "dnswarden_blocked_total" in samples or time.monotonic() > end:
            break
        time.sleep(0.1)
    for name in ("dnswarden_queries_total", "dnswarden_blocked_total",
                 "dnswarden_cache_hits_total", "dnswarden_attempt_log_rows_lost_total",
                 "dnswarden_build_info"):
        assert name in samples, name
    assert samples["dnswarden_queries_total"][0].value >= 1
    cats = {s.labels["category"]: s.value for s in samples["dnswarden_blocked_total"]}
    assert cats.get("commercial-sex", 0) >= 1
    assert samples["dnswarden_build_info"][0].labels["version"]
    for ss in samples.values():
        for s in ss:
            assert set(s.labels) <= {"category", "version", "upstream", "quantile"}, s
    # Reloads, and each upstream by its address (never a client's).
    for name in ("dnswarden_reloads_total", "dnswarden_reload_failures_total",
                 "dnswarden_last_reload_success_timestamp_seconds"):
        assert name in samples, name
    assert samples["dnswarden_last_reload_success_timestamp_seconds"][0].value > 1.6e9
    ups = {s.labels["upstream"] for s in samples["dnswarden_upstream_server_queries_total"]}
    assert ups == {con.dw.config["upstreams"][0]}


# --- bad input -------------------------------------------------------------------

BAD_PARAMS = [
    "/api/v1/report?since=yesterday",
    "/api/v1/report?until=2024-02-30",
    "/api/v1/report?by=everything",
    "/api/v1/report?top=-1",
    "/api/v1/report?format=xml",
    "/api/v1/report?evil=1",
    "/api/v1/report?by=day&by=site",
    "/api/v1/report?since=2024-05-02&until=2024-05-01",
    "/api/v1/attempts?client=%00",
    "/api/v1/attempts?client=%ff%fe",
    "/api/v1/attempts?site=a%0ab",
    "/api/v1/attempts?limit=100000",
    "/api/v1/attempts?before=abc",
    "/api/v1/lookup",
    "/api/v1/lookup?name=a%00b",
    "/api/v1/lookup?name=%c3%28.example",
    "/api/v1/lookup?name=x.example&evil=1",
    "/api/v1/lookup?name=x.example&client=10.0.0.1%00",
    "/api/v1/attempts?since=2024-13-01",
    "/api/v1/attempts?until=2024-05-01T25:00",
    "/api/v1/attempts?since=2024-05-01&since=2024-05-02",
    "/api/v1/attempts?" + "%ff" * 3,
    "/api/v1/audit?limit=0",
    "/metrics?x=1",
    "/api/v1/report?" + "a=1&" * 40,
    "/api/v1/report?by=" + "x" * 2000,
]


@pytest.mark.parametrize("path", BAD_PARAMS)
def test_bad_parameters_400_json(con, path):
    r = con.client("admin1").get(path)
    assert r.status == 400, (path, r.status, r.text)
    assert "error" in r.json()


def raw(con, data: bytes, timeout=10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", con.port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return out


def raw_response(con, data: bytes, timeout=10.0) -> bytes:
    """raw(), but returns once one whole response is in (its head and the
    Content-Length body) instead of waiting the server's 5 s for the next
    request on a kept-alive connection; b"" if it closed unanswered."""
    with socket.create_connection(("127.0.0.1", con.port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                head, sep, body = out.partition(b"\r\n\r\n")
                if sep:
                    m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
                    if len(body) >= (int(m.group(1)) if m else 0):
                        return out
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk
        except (socket.timeout, ConnectionResetError):
            return out


def status_of(resp: bytes) -> int:
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/1.") else 0


def json_of(resp: bytes) -> dict:
    head, _, body = resp.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    return json.loads(body)


def test_oversized_headers_refused_in_json(con):
    # Over our 8 KB, under evhttp's backstop: our answer, in JSON.
    r = raw(con, b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 +
            b"\r\n\r\n")
    assert status_of(r) == 431, r[:300]
    assert "too large" in json_of(r)["error"]
    # Many small headers count as much as one large one.
    r = raw(con, b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n" +
            b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 60) for i in range(200)) + b"\r\n")
    assert status_of(r) == 431 and "error" in json_of(r)
    assert con.client("hr1").get("/api/v1/status").status == 200


def test_oversized_headers_backstop(con):
    # Beyond evhttp's own 64 KB limit libevent answers before our handler
    # (docs/console.md, "Security"): its 413 page, or a closed connection.
    r = raw(con, b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 +
            b"\r\n\r\n")
    assert status_of(r) in (400, 413) or r == b"", r[:200]
    assert con.dw.running()
    assert con.client("hr1").get("/api/v1/status").status == 200


def post_raw(con, body: bytes) -> bytes:
    return raw(con, b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: " +
               str(len(body)).encode() + b"\r\n\r\n" + body)


def test_oversized_body_refused_in_json(con):
    r = post_raw(con, b"{\"user\": \"" + b"a" * 10000 + b"\"}")
    assert status_of(r) == 413, r[:300]
    assert "too large" in json_of(r)["error"]
    assert con.client("hr1").get("/api/v1/status").status == 200


def test_oversized_body_backstop(con):
    # Beyond evhttp's 64 KB body limit: libevent's own 413 (an HTML page).
    r = post_raw(con, b"{\"user\": \"" + b"a" * 100000 + b"\"}")
    assert status_of(r) == 413, r[:200]
    assert con.dw.running()


def test_garbage_request_lines(con):
    for data in (b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"DELETE /api/v1/audit HTTP/1.1\r\n\r\n", b"GET /%00 HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{\"a\":",
                 b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\n"
                 b"{\"user\":\"a\0b\"}"):
        r = raw_response(con, data, timeout=8)
        assert r == b"" or 400 <= status_of(r) < 500, (data, r[:200])
    # A method no one knows is answered by libevent's parser, before any
    # handler, with 501 as RFC 9110 section 15.6.2 asks.
    assert status_of(raw(con, b"BREW /pot HTTP/1.1\r\n\r\n")) == 501
    assert con.dw.running()
    assert con.client("hr1").get("/api/v1/status").status == 200


def test_slowloris_cut_off_and_others_served(con):
    s = socket.create_connection(("127.0.0.1", con.port), timeout=30)
    s.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    # Others are served meanwhile, and so is DNS.
    assert con.client("hr1").get("/api/v1/status").status == 200
    assert con.dw.query("www.example.test").rcode() == 0
    closed = False
    while time.monotonic() - t0 < 20:
        try:
            s.sendall(b"X-A: b\r\n")
            if s.recv(1024, socket.MSG_DONTWAIT) == b"":
                closed = True
                break
        except BlockingIOError:
            pass
        except OSError:
            closed = True
            break
        time.sleep(0.5)  # the stimulus: a header line every 0.5 s
    s.close()
    assert closed, "a request dribbled for 20 s was not cut off"


def test_connection_limit_keeps_dns_and_recovers(con):
    idle = [socket.create_connection(("127.0.0.1", con.port), timeout=5) for _ in range(100)]
    try:
        assert con.dw.query("www.example.test").rcode() == 0
        t0 = time.monotonic()
        r = con.client("hr1").get("/api/v1/status", timeout=30)
        assert r.status == 200
        assert time.monotonic() - t0 < 20
    finally:
        for s in idle:
            s.close()
    assert con.dw.running()


# --- the http: section -----------------------------------------------------------

HTTP_CONFIG = """\
server:
  listen: ["127.0.0.1:{port}"]
upstreams: ["127.0.0.1:5300"]
log:
  database: off
http:
  listen: ["127.0.0.1:{hport}"]
  users:
    - {{ name: "a", role: "admin", password: "{hash}" }}
  tokens:
    - {{ name: "p", role: "metrics", sha256: "{sha}" }}
"""


_HASH = []


def check_http(workdir, **repl):
    from console import crypt_hash
    if not _HASH:
        _HASH.append(crypt_hash("a-password"))
    fields = {"port": harness.free_port(), "hport": harness.free_port(),
              "hash": _HASH[0], "sha": "ab" * 32}
    text = HTTP_CONFIG.format(**fields)
    for old, new in repl.items():
        text = text.replace(old, new)
    p = workdir / "dnswarden.yaml"
    p.write_text(text)
    return p, subprocess.run([harness._resolve_bin(), "check", "-c", str(p)],
                             capture_output=True, text=True, timeout=30)


def test_http_config_valid(workdir):
    p, res = check_http(workdir)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("old,new,line,col,words", [
    ("  users:", "  usres:", 8, 3, "unknown key"),
    ('role: "admin"', 'role: "root"', 9, 26, "unknown role"),
    ("$y$", "$q$", 9, 45, "crypt(3) hash"),
    ('sha256: "abab', 'sha256: "zzab', 11, 45, "64 hex digits"),
    ('name: "p"', 'name: "a"', 11, 15, "used twice"),
    ("  users:", "  session_minutes: 0\n  users:", 8, 20, "out of range"),
])
def test_http_config_errors_at_file_line_column(workdir, old, new, line, col, words):
    p, res = check_http(workdir, **{old: new})
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"{p}:{line}:{col}: " in res.stderr and words in res.stderr, res.stderr


def test_tls_console_secure_cookie(nsd_shared):
    """http.tls: HTTPS with the configured certificate, Secure cookies,
    and a plain-HTTP client on the TLS port does no harm."""
    import ssl
    d = Path(tempfile.mkdtemp(prefix="dnswarden-console-tls-"))
    d.chmod(0o755)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(d / "k.pem"), "-out", str(d / "c.pem"), "-days", "2",
                    "-subj", "/CN=localhost"], check=True, capture_output=True)
    port = harness.free_port()
    from console import http_config
    over = http_config(port, "m" * 64, "h" * 64)
    over["http"]["tls"] = {"cert": str(d / "c.pem"), "key": str(d / "k.pem")}
    dw = harness.Dnswarden(d / "dw", [nsd_shared], ipv6=False, overrides=over)
    dw.start()
    try:
        ctx = ssl.create_default_context(cafile=str(d / "c.pem"))
        ctx.check_hostname = False
        body = json.dumps({"user": "hr1", "password": "hr-pass-123"})
        end = time.monotonic() + 15
        while True:
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
                conn.request("POST", "/api/v1/login", body=body)
                r = conn.getresponse()
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        assert r.status == 200
        cookie = r.headers["Set-Cookie"]
        assert "Secure" in [a.strip() for a in cookie.split(";")]
        conn.close()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                s.recv(100)
            except OSError:
                pass
        assert dw.running()
    finally:
        dw.close()
        problems = dw.problems()
        shutil.rmtree(d, ignore_errors=True)
    assert not problems, problems

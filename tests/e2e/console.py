"""Helpers for the console's tests (test_console.py, test_console_browser.py):
a daemon with http: users of every role and a metrics token, started on a
log database that already holds a known history, and a small HTTP client
that keeps a session.

The history is written before the daemon starts, in the schema of version
2, so that the daemon opens (and, once the schema moves on, upgrades) it as
it would an existing installation's log.
"""

import contextlib
import hashlib
import http.client
import json
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import harness

PASSWORDS = {"admin1": "admin-pass-1", "sec1": "security-pass-1", "hr1": "hr-pass-123"}
ROLES = {"admin1": "admin", "sec1": "security", "hr1": "hr"}
DAY_MS = 86400000

SCHEMA_V2 = """
CREATE TABLE attempts (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL,
  client TEXT NOT NULL, client_name TEXT, qname TEXT NOT NULL,
  qtype TEXT NOT NULL, rule TEXT NOT NULL, category TEXT NOT NULL, site TEXT,
  transport TEXT NOT NULL);
CREATE INDEX attempts_ts ON attempts(ts);
CREATE TABLE queries (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL,
  client TEXT NOT NULL, client_name TEXT, qname TEXT NOT NULL,
  qtype TEXT NOT NULL, rcode TEXT NOT NULL, cached INTEGER NOT NULL,
  blocked INTEGER NOT NULL, upstream TEXT, duration_us INTEGER NOT NULL,
  transport TEXT NOT NULL);
CREATE INDEX queries_ts ON queries(ts);
CREATE TABLE log_gaps (id INTEGER PRIMARY KEY, ts_start INTEGER NOT NULL,
  ts_end INTEGER NOT NULL, rows_dropped INTEGER NOT NULL,
  table_name TEXT NOT NULL, reason TEXT NOT NULL, logged_at INTEGER NOT NULL);
PRAGMA user_version = 2;
"""

XSS_NAME = "x<script>alert(1)</script>.backpage.com"


def day_start(days_ago: int) -> int:
    """Midnight UTC, days_ago days before today, in ms."""
    now = int(time.time() * 1000)
    return (now // DAY_MS - days_ago) * DAY_MS


def history(extra=()):
    """The known history: (days_ago, rows) with each row's attempts
    counted as dnswarden counts them (a client's queries for one rule
    within 60 s are one attempt). Attempts per day: 2, 3, 1."""
    rows = []

    def add(days_ago, secs, client, qname, rule="backpage.com", site="Backpage",
            category="commercial-sex"):
        rows.append((day_start(days_ago) + 12 * 3600000 + secs * 1000, client, qname,
                     rule, category, site))
    add(3, 0, "10.0.0.1", "www.backpage.com")
    add(3, 10, "10.0.0.1", "backpage.com")           # the same visit
    add(3, 30, "10.0.0.2", "www.eros.com", "eros.com", "Eros")
    for i in range(3):                                 # three visits
        add(2, i * 120, "10.0.0.1", "www.backpage.com")
    add(1, 0, "10.0.0.3", XSS_NAME)
    for days_ago, secs, client, qname in extra:
        add(days_ago, secs, client, qname)
    return rows


EXPECTED_DAYS = {3: 2, 2: 3, 1: 1}   # days_ago -> attempts


def write_history(path: Path, extra=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.executescript(SCHEMA_V2)
    con.executemany("INSERT INTO attempts (ts, client, client_name, qname, qtype, rule,"
                    " category, site, transport) VALUES (?, ?, NULL, ?, 'A', ?, ?, ?, 'udp')",
                    [(ts, c, q, r, cat, s) for ts, c, q, r, cat, s in history(extra)])
    con.commit()
    con.close()
    path.chmod(0o666)


def crypt_hash(password: str) -> str:
    res = subprocess.run([harness._resolve_bin(), "passwd"], input=password + "\n",
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


_HASHES = {}


def http_config(port: int, metrics_token: str, hr_token: str) -> dict:
    if not _HASHES:
        for u, p in PASSWORDS.items():
            _HASHES[u] = crypt_hash(p)
    return {"http": {
        "listen": [f"127.0.0.1:{port}"],
        "session_minutes": 60,
        "users": [{"name": u, "role": ROLES[u], "password": _HASHES[u]} for u in PASSWORDS],
        "tokens": [
            {"name": "prometheus", "role": "metrics",
             "sha256": hashlib.sha256(metrics_token.encode()).hexdigest()},
            {"name": "hr-script", "role": "hr",
             "sha256": hashlib.sha256(hr_token.encode()).hexdigest()},
        ],
    }}


class Console:
    """A started daemon with its console, over a known history."""

    def __init__(self, workdir: Path, upstream, blocklists=None, extra=(),
                 policies=None, more=None, history=True):
        """more: configuration merged over the console's (harness.merge);
        history: False starts on an empty log instead of the known one."""
        self.port = harness.free_port()
        self.metrics_token = secrets.token_hex(32)
        self.hr_token = secrets.token_hex(32)
        overrides = http_config(self.port, self.metrics_token, self.hr_token)
        if policies is not None:
            overrides["policies"] = policies
        overrides = harness.merge(overrides, more or {})
        self.dw = harness.Dnswarden(workdir, [upstream], ipv6=False,
                                    overrides=overrides, blocklists=blocklists)
        if history:
            write_history(self.dw.database, extra)
        self.dw.start()
        self.wait_http()
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_http(self, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                r = Client(self.port).get("/api/v1/status")
                if r.status == 401:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"console did not answer on {self.port}:\n{self.dw.stderr()}")

    def session(self, user):
        """A logged-in client for user, made once per daemon."""
        if not hasattr(self, "_sessions"):
            self._sessions = {}
        if user not in self._sessions:
            self._sessions[user] = self.client(user)
        return self._sessions[user]

    def client(self, user=None, source=None):
        c = Client(self.port, source=source)
        if user is not None:
            r = c.login(user, PASSWORDS[user])
            assert r.status == 200, r.text
        return c

    def cli(self, *args):
        return subprocess.run([harness._resolve_bin(), *args, "-c", str(self.dw.config_path)],
                              capture_output=True, timeout=60)

    def close(self):
        self.dw.close()


@contextlib.contextmanager
def fresh_console(upstream, prefix="dnswarden-console-", **kw):
    """A Console (kw as its) in a new world-readable directory (the daemon
    runs as nobody once started as root), closed, checked for crashes and
    sanitizer reports, and removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    d.chmod(0o755)
    c = Console(d / "dw", upstream, **kw)
    try:
        yield c
    finally:
        c.close()
        problems = c.dw.problems()
        shutil.rmtree(d, ignore_errors=True)
    assert not problems, "\n".join(problems)


class Response:
    def __init__(self, r):
        self.status = r.status
        self.headers = r.headers
        self.body = r.read()
        self.text = self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name)

    def cookies(self):
        return self.headers.get_all("Set-Cookie") or []


class Client:
    """One browser-like client: keeps the session cookie and CSRF token."""

    def __init__(self, port, source=None):
        self.port = port
        self.source = source
        self.cookie = None
        self.csrf = None

    def request(self, method, path, body=None, headers=None, timeout=10):
        h = dict(headers or {})
        if self.cookie and "Cookie" not in h:
            h["Cookie"] = self.cookie
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                          source_address=(self.source, 0) if self.source
                                          else None)
        try:
            conn.request(method, path, body=body, headers=h)
            return Response(conn.getresponse())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=b"", csrf=True, headers=None):
        h = dict(headers or {})
        if csrf and self.csrf:
            h["X-CSRF-Token"] = self.csrf
        return self.request("POST", path, body=body, headers=h)

    def login(self, user, password):
        r = self.post("/api/v1/login", json.dumps({"user": user, "password": password}),
                      csrf=False, headers={"Content-Type": "application/json"})
        if r.status == 200:
            for c in r.cookies():
                if c.startswith("dw_session="):
                    self.cookie = c.split(";", 1)[0]
            self.csrf = r.json()["csrf"]
        return r

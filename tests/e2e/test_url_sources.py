"""End-to-end tests of url: imports: blocklists downloaded from a list
server that the test starts on loopback (HTTP, and HTTPS with a CA made
here with openssl), by `dnswarden update-lists` and by the daemon's own
download thread.

The server serves one list from memory with an ETag, and can answer 500,
stall, cut a body short or send a body past the size cap on request.
"""

import hashlib
import http.server
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

import harness

NO_RATE_LIMIT = {"server": {"rate_limit": {"qps": 0, "burst": 1}}}


def adblock(names):
    return "".join(f"||{n}^\n" for n in names).encode()


class ListServer:
    """An HTTP(S) server on 127.0.0.1 with one list at /list.txt."""

    def __init__(self, tls_ctx=None):
        self.body = b""
        self.mode = "ok"        # ok, 500, stall, truncate
        self.requests = []      # (path, If-None-Match) of each request
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                inm = self.headers.get("If-None-Match")
                outer.requests.append((self.path, inm))
                body, mode = outer.body, outer.mode
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if mode == "500":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "stall":
                    time.sleep(3)
                    return
                if inm == etag and mode == "ok":
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "truncate":
                    self.wfile.write(body[:len(body) // 3])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls_ctx is not None:
            self.httpd.socket = tls_ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if tls_ctx else "http"
        self.host = "localhost" if tls_ctx else "127.0.0.1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"{self.scheme}://{self.host}:{self.port}/list.txt"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def list_server():
    s = ListServer()
    yield s
    s.close()


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def test_ca(workdir):
    """A CA, a certificate it signs for localhost, and one it does not."""
    d = workdir / "ca"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=dnswarden test CA", "-keyout", "ca.key", "-out", "ca.pem",
            cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost\n")
    for name, signer in (("good", "ca"), ("bad", None)):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        if signer:
            openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey",
                    "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf",
                    "-out", f"{name}.pem", cwd=d)
        else:
            openssl("x509", "-req", "-in", f"{name}.csr", "-signkey", f"{name}.key",
                    "-days", "2", "-extfile", "ext.cnf", "-out", f"{name}.pem", cwd=d)
    for p in d.iterdir():
        p.chmod(0o644)
    return d


def tls_server(ca_dir, which):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(ca_dir / f"{which}.pem", ca_dir / f"{which}.key")
    return ListServer(ctx)


def make_lists(workdir, url, *, refresh="24h", extra="", cfg_extra=None, upstream="127.0.0.1:9"):
    """A blocklist importing url, and a configuration for it; their paths."""
    for d in ("cache", "db"):
        (workdir / d).mkdir(exist_ok=True)
        (workdir / d).chmod(0o777)
    bl = workdir / "lists.yaml"
    bl.write_text("categories:\n  - name: ads\n    import:\n"
                  f"      - {{ url: \"{url}\", format: adblock, refresh: \"{refresh}\""
                  f"{extra} }}\n")
    bl.chmod(0o644)
    cfg = harness.merge({"upstreams": [upstream],
                         "log": {"database": str(workdir / "db" / "a.db")},
                         "blocklist": {"files": [str(bl)],
                                       "cache_dir": str(workdir / "cache")}},
                        cfg_extra or {})
    path = workdir / "c.yaml"
    path.write_text(harness.to_yaml(cfg))
    path.chmod(0o644)
    return bl, path


def cli(*args):
    return subprocess.run([harness._resolve_bin(), *args], capture_output=True,
                          text=True, timeout=60)


def lookup(cfg, name):
    r = cli("lookup", "-c", str(cfg), name)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()[1]


def update(cfg):
    r = cli("update-lists", "-c", str(cfg))
    return r.returncode, r.stdout.strip()


# --- update-lists ------------------------------------------------------------------

def test_first_fetch_then_not_modified(workdir, list_server):
    list_server.body = b"! a list\n" + adblock(["one.test", "two.test"])
    _, cfg = make_lists(workdir, list_server.url)
    assert lookup(cfg, "www.one.test") == "allowed"
    r = cli("check", "-c", str(cfg))
    assert r.returncode == 0 and "never downloaded" in r.stdout, r.stdout
    assert "not downloaded yet" in r.stderr
    rc, out = update(cfg)
    assert rc == 0 and "downloaded: 2 names" in out, out
    assert lookup(cfg, "www.one.test") == "blocked"
    rc, out = update(cfg)
    assert rc == 0 and out.endswith("not modified"), out
    assert list_server.requests[-1][1] is not None, "no If-None-Match sent"
    r = cli("check", "-c", str(cfg))
    assert r.returncode == 0
    assert "copy 0s old, 2 names; last try 0s ago: not modified" in r.stdout or \
        "copy 1s old, 2 names" in r.stdout, r.stdout


@pytest.mark.parametrize("mode,why", [("500", "failed: HTTP 500"),
                                      ("stall", "failed: Timeout"),
                                      ("truncate", "failed: Transferred a partial file")])
def test_failed_download_keeps_last_good_copy(workdir, list_server, mode, why):
    list_server.body = adblock(["one.test", "two.test"])
    _, cfg = make_lists(workdir, list_server.url,
                   cfg_extra={"blocklist": {"download_timeout_ms": 1000}})
    assert update(cfg)[0] == 0
    list_server.body = adblock(["three.test", "four.test", "five.test"])
    list_server.mode = mode
    rc, out = update(cfg)
    assert rc == 1 and why in out, out
    assert lookup(cfg, "one.test") == "blocked"
    assert lookup(cfg, "three.test") == "allowed"
    r = cli("check", "-c", str(cfg))
    assert r.returncode == 0 and why in r.stdout, r.stdout


def test_shrinking_download_refused(workdir, list_server):
    names = [f"n{i}.test" for i in range(100)]
    list_server.body = adblock(names)
    _, cfg = make_lists(workdir, list_server.url)
    assert update(cfg)[0] == 0
    list_server.body = adblock(names[:49])      # a cut-short file served whole
    rc, out = update(cfg)
    assert rc == 1 and "shrink the list from 100 to 49 names" in out, out
    assert lookup(cfg, "n99.test") == "blocked"
    list_server.body = adblock(names[:50])      # half: a real change
    rc, out = update(cfg)
    assert rc == 0, out
    assert lookup(cfg, "n99.test") == "allowed"


def test_size_cap_and_pin(workdir, list_server):
    body = adblock([f"n{i}.test" for i in range(100)])
    list_server.body = body
    _, cfg = make_lists(workdir, list_server.url, extra=", max_bytes: 500")
    rc, out = update(cfg)
    assert rc == 1 and "refused: larger than 500 bytes" in out, out
    assert lookup(cfg, "n1.test") == "allowed"
    wrong = "0" * 64
    _, cfg = make_lists(workdir, list_server.url, extra=f", sha256: \"{wrong}\"")
    rc, out = update(cfg)
    assert rc == 1 and "is not the pinned" in out, out
    good = hashlib.sha256(body).hexdigest()
    _, cfg = make_lists(workdir, list_server.url, extra=f", sha256: \"{good}\"")
    rc, out = update(cfg)
    assert rc == 0, out
    assert lookup(cfg, "n1.test") == "blocked"


def test_wrong_format_download_refused(workdir, list_server):
    list_server.body = adblock(["one.test"])
    _, cfg = make_lists(workdir, list_server.url)
    assert update(cfg)[0] == 0
    list_server.body = b"0.0.0.0 x.test\n0.0.0.0 y.test\n"
    rc, out = update(cfg)
    assert rc == 1 and "looks like hosts format" in out, out
    assert lookup(cfg, "one.test") == "blocked"


def test_tls_verified(workdir, test_ca):
    good = tls_server(test_ca, "good")
    bad = tls_server(test_ca, "bad")
    try:
        good.body = bad.body = adblock(["tls.test"])
        ca = {"tls_ca_file": str(test_ca / "ca.pem")}
        _, cfg = make_lists(workdir, bad.url, cfg_extra=ca)
        rc, out = update(cfg)
        assert rc == 1 and "failed: SSL peer certificate" in out, out
        assert lookup(cfg, "tls.test") == "allowed"
        _, cfg = make_lists(workdir, good.url, cfg_extra=ca)
        rc, out = update(cfg)
        assert rc == 0 and "downloaded: 1 names" in out, out
        assert lookup(cfg, "tls.test") == "blocked"
    finally:
        good.close()
        bad.close()


# --- the daemon ----------------------------------------------------------------------

blocked = harness.blocked


def test_daemon_fetches_swaps_under_load_and_restarts_from_cache(
        workdir, list_server, fake_upstream, dnswarden):
    """The daemon starts without a copy and without waiting, downloads the
    list by itself, swaps a changed list in while a client keeps asking
    (no query unanswered, the old list until the new one is in), and after
    a restart with the server gone serves from its last good copy."""
    fake_upstream.add("old.test", "A", "192.0.2.1")
    fake_upstream.add("new.test", "A", "192.0.2.2")
    list_server.body = adblock(["old.test"])
    bl, _ = make_lists(workdir, list_server.url, refresh="1s")
    over = harness.merge(NO_RATE_LIMIT, {"blocklist": {"cache_dir": str(workdir / "cache")}})
    dw = dnswarden([fake_upstream], over, blocklists=[bl], timeout_ms=1500)
    end = time.monotonic() + 15
    while not blocked(dw.query("old.test", edns=1232)):
        assert time.monotonic() < end, "first download never applied:\n" + dw.stderr()
        time.sleep(0.1)
    assert not blocked(dw.query("new.test", edns=1232))

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((dw.addr, dw.port))
    try:
        sent, got, first_blocked = harness.ask_until_blocked(
            s, "new.test", change_at=200,
            change=lambda: setattr(list_server, "body",
                                   adblock(["old.test", "new.test"])),
            timeout=30)
    finally:
        s.close()
    missing = sorted(set(sent) - set(got))
    assert not missing, f"{len(missing)} of {len(sent)} queries unanswered"
    assert first_blocked is not None and first_blocked > 200, first_blocked
    late = [i for i in got if i > first_blocked and not blocked(got[i])]
    assert not late, f"unblocked again after the swap: {late[:10]}"

    dw.stop()
    list_server.close()
    since = 0
    dw2 = dnswarden([fake_upstream], over, blocklists=[bl], timeout_ms=1500)
    assert blocked(dw2.query("new.test", edns=1232))
    assert blocked(dw2.query("www.old.test", edns=1232))
    assert dw2.wait_stderr("failed: ", since, timeout=10), dw2.stderr()
    assert blocked(dw2.query("new.test", edns=1232))

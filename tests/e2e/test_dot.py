"""DNS over TLS to the upstreams (RFC 7858): queries pipelined on connections
kept open, answers taken in any order, certificates checked, and every TLS
failure moving on to the next upstream like any other."""

import socket
import struct
import subprocess
import time

import dns.message
import dns.rcode
import pytest

from dotserver import TLS_NAME, DotServer, CertAuthority
from harness import daemon_binary, free_port, make_query, rdata_of


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory):
    return CertAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def dot_server(test_ca):
    servers = []

    def make(**kw):
        s = DotServer(test_ca, **kw)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.close()


def _tls(ca, **over):
    cfg = {"tls_ca_file": str(ca.ca_file)}
    cfg.update(over)
    return cfg


def _wait(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def _burst(dw, names, timeout=10.0):
    """Send one UDP query per name at once, and again each second for those
    not answered yet (as a stub resolver does: on a loaded machine a
    datagram can be dropped); the answers by name."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    wires = {i + 1: make_query(name, "A", id=i + 1).to_wire()
             for i, name in enumerate(names)}
    got = {}
    end = time.monotonic() + timeout
    resend = 0.0
    while len(got) < len(names) and time.monotonic() < end:
        if time.monotonic() >= resend:
            for qid, wire in wires.items():
                if names[qid - 1] not in got:
                    s.sendto(wire, (dw.addr, dw.port))
            resend = time.monotonic() + 1.0
        try:
            data, _ = s.recvfrom(4096)
        except socket.timeout:
            continue
        r = dns.message.from_wire(data)
        got[names[r.id - 1]] = r
    s.close()
    return got


def test_answers_over_tls_with_padding(dnswarden, dot_server, test_ca):
    srv = dot_server()
    dw = dnswarden([srv], _tls(test_ca))
    r = dw.query("www.example.test", timeout=5)
    assert rdata_of(r, "A") == {"192.0.2.1"}
    assert len(srv.queries) == 1
    wire = srv.queries[0][1]
    # RFC 8467: queries padded to a multiple of 128 octets with option 12.
    assert len(wire) % 128 == 0
    q = dns.message.from_wire(wire)
    assert any(o.otype == 12 for o in q.options)
    st = dw.stats()
    assert st["tls_queries"] == 1 and st["tls_answers"] == 1


def test_hundred_queries_pipelined_answered_out_of_order(dnswarden, dot_server, test_ca):
    srv = dot_server(batch=100)
    dw = dnswarden([srv], _tls(test_ca, tls_max_connections=1), timeout_ms=5000)
    names = [f"n{i}.example.test" for i in range(100)]
    got = _burst(dw, names)
    assert len(got) == 100
    for name, r in got.items():
        assert r.question[0].name.to_text() == name + "."
        assert rdata_of(r, "A") == {"192.0.2.1"}
    assert srv.connections == 1, "the 100 queries did not share one connection"
    ids = [struct.unpack("!H", w[:2])[0] for _, w in srv.queries]
    assert len(ids) == 100 and sorted(srv.order) == sorted(ids)
    assert srv.order != ids, "the server did not answer out of order"


def test_burst_past_the_pipeline_limit_waits_instead_of_failing(dnswarden, dot_server,
                                                                 test_ca):
    # One connection takes 128 queries in flight; the rest wait for a slot.
    srv = dot_server()
    dw = dnswarden([srv], _tls(test_ca, tls_max_connections=1), timeout_ms=5000)
    got = _burst(dw, [f"w{i}.example.test" for i in range(400)], timeout=20)
    assert len(got) == 400
    bad = [(n, dns.rcode.to_text(r.rcode())) for n, r in got.items()
           if r.rcode() != dns.rcode.NOERROR]
    assert bad == []
    assert srv.connections == 1
    assert dw.stats()["tls_failures"] == 0


def test_connections_reused_and_bounded_under_load(dnswarden, dot_server, test_ca):
    srv = dot_server()
    dw = dnswarden([srv], _tls(test_ca, tls_max_connections=2), timeout_ms=3000)
    for i in range(20):
        assert rdata_of(dw.query(f"seq{i}.example.test", timeout=5), "A") == {"192.0.2.1"}
    assert srv.connections == 1, "sequential queries did not reuse the connection"
    for round in range(5):
        got = _burst(dw, [f"b{round}-{i}.example.test" for i in range(200)])
        assert len(got) == 200
    assert srv.max_open <= 2 and srv.connections <= 2
    assert dw.stats()["tls_open"] <= 2


@pytest.mark.parametrize("cert,why", [("wrong-name", "certificate not accepted"),
                                      ("expired", "certificate not accepted")])
def test_bad_certificate_fails_over(dnswarden, dot_server, test_ca, fake_upstream, cert, why):
    srv = dot_server(cert=cert)
    dw = dnswarden([srv, fake_upstream], _tls(test_ca))
    r = dw.query("www.fake.test", timeout=5)
    assert rdata_of(r, "A") == {"192.0.2.1"}
    assert fake_upstream.queries_for("www.fake.test"), "not answered by the next upstream"
    assert srv.queries == [], "a query was sent to a server whose certificate failed"
    st = dw.stats()
    assert st["tls_handshake_failures"] >= 1
    assert why in dw.stderr()


def test_server_closing_after_each_answer(dnswarden, dot_server, test_ca):
    srv = dot_server(close_after_answer=True)
    dw = dnswarden([srv], _tls(test_ca, tls_max_connections=1), timeout_ms=3000)
    for i in range(10):
        assert rdata_of(dw.query(f"c{i}.example.test", timeout=5), "A") == {"192.0.2.1"}
    # Pipelined: the queries behind the first answer go out again.
    got = _burst(dw, [f"p{i}.example.test" for i in range(10)])
    assert len(got) == 10
    assert all(r.rcode() == dns.rcode.NOERROR for r in got.values()), dw.stderr() + str(\
        [(n, dns.rcode.to_text(r.rcode())) for n, r in got.items()])
    assert dw.stats()["tls_reconnects"] >= 1


def test_slow_handshake_fails_over_in_time(dnswarden, dot_server, test_ca, fake_upstream):
    # A handshake 10 s late: failing over after the 400 ms timeout answers
    # long before it (5 s: ASan on a loaded machine), waiting for it cannot.
    srv = dot_server(handshake_delay=10.0)
    dw = dnswarden([srv, fake_upstream], _tls(test_ca), timeout_ms=400)
    t = time.monotonic()
    r = dw.query("www.fake.test", timeout=8)
    assert rdata_of(r, "A") == {"192.0.2.1"}
    assert time.monotonic() - t < 5, "waited for the slow handshake"


def test_idle_close_and_session_resumption(dnswarden, dot_server, test_ca):
    srv = dot_server()
    dw = dnswarden([srv], _tls(test_ca, tls_idle_timeout_ms=100))
    assert rdata_of(dw.query("one.example.test", timeout=5), "A") == {"192.0.2.1"}
    assert _wait(lambda: srv.open == 0), "idle connection not closed"
    assert rdata_of(dw.query("two.example.test", timeout=5), "A") == {"192.0.2.1"}
    assert srv.connections == 2
    assert srv.resumed >= 1, "the second connection did not resume the session"
    assert dw.stats()["tls_resumed"] >= 1


def test_unbound_as_dot_server(dnswarden, test_ca, fake_upstream, workdir):
    """A real DoT server: Unbound serving TLS, forwarding to the fake upstream."""
    certf, keyf = test_ca.files["good"]
    port = free_port()
    conf = workdir / "unbound.conf"
    conf.write_text(f"""server:
  interface: 127.0.0.1@{port}
  tls-port: {port}
  tls-service-key: "{keyf}"
  tls-service-pem: "{certf}"
  port: {port}
  do-ip6: no
  use-syslog: no
  logfile: ""
  chroot: ""
  username: ""
  directory: "{workdir}"
  pidfile: ""
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  local-zone: "test." nodefault
forward-zone:
  name: "."
  forward-addr: {fake_upstream.server.replace(':', '@')}
remote-control:
  control-enable: no
""")
    ub = subprocess.Popen(["unbound", "-d", "-c", str(conf)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    try:
        def up():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                return False
        assert _wait(up), "unbound did not start"
        dw = dnswarden([_Entry(port)], _tls(test_ca))
        r = dw.query("www.fake.test", timeout=5)
        assert rdata_of(r, "A") == {"192.0.2.1"}
        assert fake_upstream.queries_for("www.fake.test")
        st = dw.stats()
        assert st["tls_answers"] >= 1 and st["tls_connects"] == 1
    finally:
        ub.terminate()
        ub.wait(5)


class _Entry:
    def __init__(self, port):
        self.server = {"address": f"127.0.0.1:{port}", "tls_name": TLS_NAME}


@pytest.mark.parametrize("entry,message", [
    ('{ tls_name: "dot.test" }', 'upstreams entry has no "address"'),
    ('{ address: "127.0.0.1:853", tls_name: "bad name" }', "tls_name may hold only"),
    ('{ address: "127.0.0.1:853", tls: "x" }', 'unknown key "tls" in upstreams entry'),
])
def test_bad_tls_upstream_entries(workdir, entry, message):
    cfg = workdir / "bad.yaml"
    cfg.write_text("upstreams:\n  - " + entry + "\n")
    p = subprocess.run([daemon_binary(), "check", "-c", str(cfg)],
                       capture_output=True, text=True)
    assert p.returncode == 1
    assert f"{cfg}:2:" in p.stderr and message in p.stderr


def test_check_lists_and_probes_tls_upstreams(workdir, dot_server, test_ca):
    good, bad = dot_server(), dot_server(cert="wrong-name")
    cfg = workdir / "probe.yaml"
    cfg.write_text(
        "server:\n  listen: [\"127.0.0.1:5399\"]\n"
        f"upstreams:\n  - {{ address: \"{good.address}\", tls_name: \"{TLS_NAME}\" }}\n"
        f"tls_ca_file: \"{test_ca.ca_file}\"\n"
        "log: { database: off }\n")
    p = subprocess.run([daemon_binary(), "check", "-c", str(cfg)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert f"{good.address} over TLS, certificate for {TLS_NAME}" in p.stdout
    assert good.connections == 0, "check without --probe connected"
    p = subprocess.run([daemon_binary(), "check", "--probe", "-c", str(cfg)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "probe ok: answered over TLSv1" in p.stdout
    assert len(good.queries) == 1
    cfg.write_text(cfg.read_text().replace(good.address, bad.address))
    p = subprocess.run([daemon_binary(), "check", "--probe", "-c", str(cfg)],
                       capture_output=True, text=True)
    assert p.returncode == 1
    assert "probe failed: certificate not accepted" in p.stdout


def test_tls_upstream_in_metrics(dnswarden, dot_server, test_ca):
    import hashlib
    import http.client
    import secrets
    from prometheus_client.parser import text_string_to_metric_families
    srv = dot_server()
    token = secrets.token_hex(16)
    port = free_port()
    dw = dnswarden([srv], _tls(test_ca, http={
        "listen": [f"127.0.0.1:{port}"],
        "tokens": [{"name": "prom", "role": "metrics",
                    "sha256": hashlib.sha256(token.encode()).hexdigest()}]}))
    assert rdata_of(dw.query("m.example.test", timeout=5), "A") == {"192.0.2.1"}

    def samples():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/metrics", headers={"Authorization": "Bearer " + token})
        r = c.getresponse()
        assert r.status == 200
        out = {}
        for fam in text_string_to_metric_families(r.read().decode()):
            for s in fam.samples:
                out[(s.name, s.labels.get("upstream"))] = s.value
        return out
    key = ("dnswarden_upstream_tls_queries_total", srv.address)
    assert _wait(lambda: samples().get(key, 0) >= 1), "no TLS figures in /metrics"
    m = samples()
    assert m[("dnswarden_upstream_tls_connects_total", srv.address)] == 1
    assert m[("dnswarden_upstream_tls_connections", srv.address)] == 1
    assert m[("dnswarden_upstream_server_answers_total", srv.address)] >= 1

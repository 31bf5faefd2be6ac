"""Self-tests of the end-to-end harness: the upstreams and helpers behave as
the dnswarden tests assume, without dnswarden involved."""

import socket
import struct
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest
import yaml

import harness
from fakeupstream import FORGED_A


# --- NSD ----------------------------------------------------------------------

def test_nsd_serves_the_test_zone(nsd_upstream):
    r = nsd_upstream.query("www.example.test", "A")
    assert r.rcode() == dns.rcode.NOERROR
    assert harness.rdata_of(r, "A") == {"192.0.2.10"}
    assert r.answer[0].ttl == harness.ZONE_TTL
    assert harness.rdata_of(nsd_upstream.query("www.example.test", "AAAA"), "AAAA") == \
        {"2001:db8::10"}
    assert harness.rdata_of(nsd_upstream.query("example.test", "MX"), "MX") == \
        {"10 mail.example.test.", "20 mail2.example.test."}
    assert harness.rdata_of(nsd_upstream.query("txt.example.test", "TXT"), "TXT") == \
        {'"hello world" "second string"', '"v=spf1 -all"'}


def test_nsd_nxdomain_has_soa_with_negative_ttl(nsd_upstream):
    r = nsd_upstream.query("absent.example.test", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN
    soa = [x for x in r.authority if x.rdtype == dns.rdatatype.SOA]
    assert soa and soa[0].ttl == harness.NEG_TTL


def test_nsd_cname_chain(nsd_upstream):
    r = nsd_upstream.query("alias.example.test", "A")
    texts = harness.rrset_texts(r.answer)
    assert "alias.example.test. CNAME alias2.example.test." in texts
    assert "alias2.example.test. CNAME www.example.test." in texts
    assert "www.example.test. A 192.0.2.10" in texts


def test_nsd_large_answers_have_the_sizes_the_tests_need(nsd_upstream):
    # big900: more than 512 bytes, fits in 1232.
    full = nsd_upstream.query("big900.example.test", "TXT", tcp=True)
    size = len(full.to_wire())
    assert 600 < size < 1100, size
    assert len(harness.rdata_of(full, "TXT")) == 7
    r = nsd_upstream.query("big900.example.test", "TXT", edns=1232)
    assert not r.flags & dns.flags.TC and len(harness.rdata_of(r, "TXT")) == 7
    r = nsd_upstream.query("big900.example.test", "TXT")  # no EDNS: 512
    assert r.flags & dns.flags.TC
    # many: 40 A records, more than 512 bytes.
    full = nsd_upstream.query("many.example.test", "A", tcp=True)
    assert len(harness.rdata_of(full, "A")) == 40 and len(full.to_wire()) > 512
    # huge: more than 1232 bytes: truncated by NSD even with EDNS 1232.
    full = nsd_upstream.query("huge.example.test", "TXT", tcp=True)
    assert len(full.to_wire()) > 2500 and len(harness.rdata_of(full, "TXT")) == 30
    r = nsd_upstream.query("huge.example.test", "TXT", edns=1232)
    assert r.flags & dns.flags.TC


def test_nsd_stop_makes_it_silent(nsd_upstream):
    assert nsd_upstream.query("www.example.test").rcode() == dns.rcode.NOERROR
    nsd_upstream.stop()
    assert not nsd_upstream.running()
    with pytest.raises(harness.NoAnswer):
        nsd_upstream.query("www.example.test", timeout=0.5)


# --- the fake upstream ----------------------------------------------------------

def test_fake_answers_and_records(fake_upstream):
    f = fake_upstream
    r = harness.query(f.addr, f.port, "WwW.Fake.Test", "A", id=4242, edns=1232)
    assert r.id == 4242 and harness.rdata_of(r, "A") == {"192.0.2.1"}
    r = harness.query(f.addr, f.port, "nothing.fake.test", "A", tcp=True)
    assert r.rcode() == dns.rcode.NXDOMAIN and r.authority[0].rdtype == dns.rdatatype.SOA
    r = harness.query(f.addr, f.port, "www.fake.test", "MX")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority  # NODATA
    qs = f.queries
    assert [(q.qname, q.qtype, q.transport) for q in qs] == [
        ("WwW.Fake.Test.", "A", "udp"), ("nothing.fake.test.", "A", "tcp"),
        ("www.fake.test.", "MX", "udp")]
    assert qs[0].id == 4242 and qs[0].edns == 1232 and qs[1].edns == -1
    assert len(f.queries_for("www.fake.test", "A")) == 1
    f.clear()
    assert f.queries == []


def test_fake_dead_and_delay(fake_upstream):
    f = fake_upstream
    f.mode_dead()
    with pytest.raises(harness.NoAnswer):
        harness.query(f.addr, f.port, "www.fake.test", timeout=0.3)
    assert len(f.queries) == 1
    f.mode_delay(0.4)
    t = time.monotonic()
    r = harness.query(f.addr, f.port, "www.fake.test", timeout=2)
    assert time.monotonic() - t >= 0.35 and harness.rdata_of(r, "A") == {"192.0.2.1"}


@pytest.mark.parametrize("kind", ["junk", "idjunk", "short", "badcount", "loop"])
def test_fake_garbage(fake_upstream, kind):
    f = fake_upstream
    f.mode_garbage(kind)
    q = harness.make_query("www.fake.test", "A", edns=1232)
    data = harness.send_raw_udp(f.addr, f.port, q.to_wire())
    assert data is not None
    if kind != "junk":
        assert struct.unpack("!H", data[:2])[0] == q.id
    with pytest.raises(Exception):
        dns.message.from_wire(data)


def test_fake_truncate_then_tcp(fake_upstream):
    f = fake_upstream
    f.mode_truncate()
    r = harness.query(f.addr, f.port, "multi.fake.test", edns=1232)
    assert r.flags & dns.flags.TC and not r.answer
    r = harness.query(f.addr, f.port, "multi.fake.test", tcp=True)
    assert harness.rdata_of(r, "A") == {"192.0.2.11", "192.0.2.12", "192.0.2.13"}
    assert [q.transport for q in f.queries] == ["udp", "tcp"]


def test_fake_tcp_close_mid_answer(fake_upstream):
    f = fake_upstream
    f.mode_tcp_close_mid_answer()
    q = harness.make_query("multi.fake.test", "A")
    assert harness.send_raw_tcp(f.addr, f.port, q.to_wire(), timeout=2) is None


def test_fake_forged_replies_arrive_first(fake_upstream):
    f = fake_upstream
    f.mode_forge(real_delay=0.2)
    q = harness.make_query("www.fake.test", "A", edns=1232)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(q.to_wire(), (f.addr, f.port))
        got = []
        for _ in range(4):
            data, src = s.recvfrom(65535)
            got.append((dns.message.from_wire(data), src[1]))
    (wid, p1), (wport, p2), (wq, p3), (real, p4) = got
    assert wid.id != q.id and harness.rdata_of(wid, "A") == {FORGED_A} and p1 == f.port
    assert wport.id == q.id and harness.rdata_of(wport, "A") == {FORGED_A} and p2 != f.port
    assert wq.id == q.id and p3 == f.port and \
        wq.question[0].name.to_text() == "forged-www.fake.test."
    assert harness.rdata_of(wq, "A") == {FORGED_A}
    assert real.id == q.id and p4 == f.port and harness.rdata_of(real, "A") == {"192.0.2.1"}


def test_dead_port_never_answers(dead_port):
    q = harness.make_query("www.example.test", "A")
    assert harness.send_raw_udp("127.0.0.1", dead_port.port, q.to_wire(), timeout=0.3) is None
    assert dead_port.received() == 1  # it arrived, nobody answered (no ICMP)
    assert harness.send_raw_tcp("127.0.0.1", dead_port.port, q.to_wire(), timeout=0.3) is None


# --- helpers --------------------------------------------------------------------

def test_free_port_is_free_on_both_families():
    p = harness.free_port(ipv6=True)
    for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        for typ in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(fam, typ) as s:
                s.bind((host, p))


def test_config_yaml_writer(tmp_path):
    cfg = harness.merge(
        {"server": {"listen": ["127.0.0.1:1", "[::1]:1"], "threads": 1},
         "upstreams": ["127.0.0.1:2"], "log": {"database": "/x/a.db"}},
        {"server": {"threads": 2, "rate_limit": {"qps": 0, "burst": 10}},
         "log": harness.DELETE,
         "clients": [{"network": "10.1.2.0/24", "name": "finance"}],
         "cache": {"max_ttl": 60}})
    text = harness.to_yaml(cfg)
    assert yaml.safe_load(text) == {
        "server": {"listen": ["127.0.0.1:1", "[::1]:1"], "threads": 2,
                   "rate_limit": {"qps": 0, "burst": 10}},
        "upstreams": ["127.0.0.1:2"],
        "clients": [{"network": "10.1.2.0/24", "name": "finance"}],
        "cache": {"max_ttl": 60}}


def test_blocklist_writer(blocklist):
    p = blocklist({"commercial-sex": {"Backpage": ["backpage.com", "backpage.net"],
                                      "The Erotic Review": ["theeroticreview.com"]}},
                  allow=["example.org"])
    doc = yaml.safe_load(p.read_text())
    assert doc["allow"] == ["example.org"]
    cat = doc["categories"][0]
    assert cat["name"] == "commercial-sex"
    assert cat["sites"] == [{"name": "Backpage", "domains": ["backpage.com", "backpage.net"]},
                            {"name": "The Erotic Review", "domains": ["theeroticreview.com"]}]


def test_header_helper():
    q = harness.make_query("a.test", "A", id=0x1234)
    h = harness.header(q.to_wire())
    assert h["id"] == 0x1234 and not h["qr"] and h["rd"] and h["qdcount"] == 1


# --- the dnswarden process handling, against a stand-in daemon --------------------

STUB = str(harness.REPO / "tests" / "e2e" / "stub_dnswarden.py")


def test_dnswarden_fixture_starts_queries_and_stops(nsd_upstream, dnswarden, monkeypatch):
    monkeypatch.setenv("DNSWARDEN_BIN", STUB)
    dw = dnswarden([nsd_upstream])
    assert yaml.safe_load(dw.config_path.read_text())["upstreams"] == [nsd_upstream.server]
    r = dw.query("WwW.example.test", id=99)
    assert r.id == 99 and harness.rdata_of(r, "A") == {"192.0.2.10"}
    assert harness.rdata_of(dw.query("www.example.test", family=6, tcp=True), "A") == \
        {"192.0.2.10"}
    assert dw.running()
    dw.stop()
    assert not dw.running() and dw.problems() == []


@pytest.mark.parametrize("env,problem", [
    ({"STUB_STDERR": "==1==ERROR: AddressSanitizer: heap-use-after-free"}, "AddressSanitizer"),
    ({"STUB_STDERR": "x.c:1:2: runtime error: signed integer overflow"}, "runtime error"),
    ({"STUB_STDERR": "==1==ERROR: LeakSanitizer: detected memory leaks"}, "LeakSanitizer"),
    ({"STUB_CRASH_ON_TERM": "1"}, "died of signal 11"),
])
def test_teardown_detects_sanitizer_reports_and_crashes(nsd_upstream, workdir, monkeypatch,
                                                        env, problem):
    monkeypatch.setenv("DNSWARDEN_BIN", STUB)
    dw = harness.Dnswarden(workdir / "dw", [nsd_upstream], env=env).start()
    assert dw.query("www.example.test").rcode() == 0
    dw.close()
    assert any(problem in p for p in dw.problems()), dw.problems()


def test_start_fails_when_binary_missing(workdir, monkeypatch):
    monkeypatch.setenv("DNSWARDEN_BIN", str(workdir / "nope"))
    with pytest.raises(RuntimeError, match="missing"):
        harness.Dnswarden(workdir / "dw", ["127.0.0.1:1"]).start()


def test_query_helper_rejects_mismatched_replies(fake_upstream):
    f = fake_upstream
    f.mode_forge(kinds=("wrong_id",), real_delay=0.3)
    with pytest.raises(AssertionError, match="reply ID"):
        harness.query(f.addr, f.port, "www.fake.test", timeout=2)
    f.mode_forge(kinds=("wrong_question",), real_delay=0.3)
    with pytest.raises(AssertionError, match="reply question"):
        harness.query(f.addr, f.port, "www.fake.test", timeout=2)

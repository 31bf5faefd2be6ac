"""End-to-end tests of issue 19, "evidence that holds": blocking fails
closed on every name a client would follow, and an answer too long to
check is never served (nor cached) as clean; TCP is held to the same
limits as UDP (rate limit, allow_clients at accept, connections per
client, write timeout, lifetime); and each attempt row says whether its
source address was proven (TCP, or a DNS Cookie) or could be forged.
"""

import os
import signal
import socket
import struct
import time

import dns.edns
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

import harness
from fakeupstream import Reply
from harness import rdata_of
from test_blocking import SAMPLE, assert_blocked, attempt_rows, cname_plan


@pytest.fixture
def dnswarden(dnswarden):
    """The conftest factory with the sample list and a roomy upstream
    timeout (the fake upstream is Python threads on a loaded machine)."""
    return harness.with_defaults(dnswarden, timeout_ms=1500,
                                 blocklists=[SAMPLE])


def chain(n, last):
    """n CNAME targets, the last one `last`."""
    return [f"hop{i}.elsewhere.test." for i in range(n - 1)] + [last]


# --- blocking fails closed -------------------------------------------------------

@pytest.mark.parametrize("links", [9, 20])
def test_long_cname_chain_into_blocked_name(fake_upstream, dnswarden, links):
    """Past the 8 targets that used to be collected, the chain is still
    followed to its end; the answer is blocked, and stays blocked when it
    comes from the cache."""
    fake_upstream.handler = cname_plan(fake_upstream, {
        "long.fake.test.": (chain(links, "www.backpage.com."), "203.0.113.5")})
    dw = dnswarden([fake_upstream])
    for _ in range(2):
        r = dw.query("long.fake.test", edns=1232)
        assert_blocked(r, "commercial-sex", direct=False)
        assert "203.0.113.5" not in r.to_text()
    assert len(fake_upstream.queries_for("long.fake.test")) == 1
    rows = attempt_rows(dw.database, 2)
    assert [(x["qname"], x["rule"]) for x in rows] == \
        [("long.fake.test", "backpage.com")] * 2, rows
    assert dw.stats().get("blocked_cname") == 2


def dname_plan(fake):
    """alias.fake.test. DNAME backpage.com., with the synthesized CNAME for
    www.alias.fake.test. and the A record at its target; and
    bare.fake.test. DNAME dname-target.test., with no CNAME (RFC 6672 lets
    a DNAME-aware client synthesize it): only the A record's owner says
    where www.bare.fake.test. leads."""
    def plan(q):
        r = dns.message.make_response(q.msg)
        if q.qname_lower == "www.alias.fake.test.":
            r.answer.append(dns.rrset.from_text("alias.fake.test.", 300, "IN", "DNAME",
                                                "backpage.com."))
            r.answer.append(dns.rrset.from_text(q.msg.question[0].name, 300, "IN",
                                                "CNAME", "www.backpage.com."))
            r.answer.append(dns.rrset.from_text("www.backpage.com.", 300, "IN", "A",
                                                "203.0.113.6"))
        elif q.qname_lower == "www.bare.fake.test.":
            r.answer.append(dns.rrset.from_text("bare.fake.test.", 300, "IN", "DNAME",
                                                "dname-target.test."))
            r.answer.append(dns.rrset.from_text("www.dname-target.test.", 300, "IN",
                                                "A", "203.0.113.6"))
        else:
            return fake.answer_plan(q)
        return [Reply(r)]
    return plan


def test_dname_into_blocked_name(fake_upstream, dnswarden, blocklist):
    fake_upstream.handler = dname_plan(fake_upstream)
    only_www = blocklist({"test-cat": {"Target": ["www.dname-target.test"]}})
    dw = dnswarden([fake_upstream], blocklists=[SAMPLE, only_www])
    r = dw.query("www.alias.fake.test", edns=1232)
    assert_blocked(r, "commercial-sex", direct=False)
    assert "203.0.113.6" not in r.to_text()
    r = dw.query("www.bare.fake.test", edns=1232)
    assert_blocked(r, "test-cat", direct=False)
    assert "203.0.113.6" not in r.to_text()
    assert [x["qname"] for x in attempt_rows(dw.database, 2)] == \
        ["www.alias.fake.test", "www.bare.fake.test"]


def https_plan(fake, targets):
    """HTTPS records at the names in targets: name -> TargetName, each
    with an ipv4hint a client could connect to without asking again."""
    def plan(q):
        if q.qname_lower not in targets or q.qtype != "HTTPS":
            return fake.answer_plan(q)
        r = dns.message.make_response(q.msg)
        r.answer.append(dns.rrset.from_text(
            q.msg.question[0].name, 300, "IN", "HTTPS",
            f"1 {targets[q.qname_lower]} alpn=h2 ipv4hint=203.0.113.7"))
        return [Reply(r)]
    return plan


def test_https_target_blocked(fake_upstream, dnswarden):
    fake_upstream.handler = https_plan(fake_upstream, {
        "svc.fake.test.": "www.backpage.com.",
        "clean.fake.test.": "cdn.fake.test."})
    dw = dnswarden([fake_upstream])
    r = dw.query("svc.fake.test", "HTTPS", edns=1232)
    assert_blocked(r, "commercial-sex", direct=False)
    assert "203.0.113.7" not in r.to_text()
    # A service binding to a name not on the list is answered as it came.
    r = dw.query("clean.fake.test", "HTTPS", edns=1232)
    assert r.rcode() == dns.rcode.NOERROR
    assert [rd.target.to_text() for rd in r.answer[0]] == ["cdn.fake.test."], r
    assert [x["qname"] for x in attempt_rows(dw.database, 1)] == ["svc.fake.test"]


def test_reply_too_long_to_check_not_served(fake_upstream, dnswarden):
    """A chain with more names than the forwarder notes (64) cannot be
    checked: SERVFAIL, not kept in the cache, and no attempt row (it is
    not known to be one). A shorter clean chain is answered as usual."""
    fake_upstream.handler = cname_plan(fake_upstream, {
        "huge.fake.test.": (chain(70, "end.fake.test."), "203.0.113.8"),
        "fine.fake.test.": (chain(30, "end.fake.test."), "203.0.113.9")})
    dw = dnswarden([fake_upstream])
    for _ in range(2):
        r = dw.query("huge.fake.test", edns=1232, timeout=5)
        assert r.rcode() == dns.rcode.SERVFAIL, r
        assert not r.answer
    assert len(fake_upstream.queries_for("huge.fake.test")) == 2, "cached"
    assert dw.stats().get("reply_unchecked") == 2
    r = dw.query("fine.fake.test", edns=1232)
    assert rdata_of(r, "A") == {"203.0.113.9"}, r
    assert attempt_rows(dw.database, 1, timeout=1) == []


# --- TCP held to the same limits as UDP --------------------------------------------

def tcp_connect(dw, src="127.0.0.1", rcvbuf=None, timeout=3.0):
    """A TCP connection to dw from the loopback address src."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect((dw.addr, dw.port))
    return s


def frame(name, rdtype="A", qid=1):
    wire = harness.make_query(name, rdtype, id=qid).to_wire()
    return struct.pack("!H", len(wire)) + wire


def read_answer(s):
    """One length-prefixed answer, or None at EOF or reset."""
    try:
        head = harness.recv_exactly(s, 2)
        body = head and harness.recv_exactly(s, struct.unpack("!H", head)[0])
    except ConnectionResetError:
        return None
    return dns.message.from_wire(body) if body else None


def closed_by_peer(s, timeout=3.0):
    """True if the other end closes s (EOF or reset) within timeout
    without our having sent anything."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_tcp_pipelining_over_rate_limit(fake_upstream, dnswarden):
    """40 queries pipelined on one connection under qps 5, burst 5: the
    burst (and what refills meanwhile) is answered, the rest REFUSED, on
    a connection that stays open."""
    dw = dnswarden([fake_upstream], {"server": {"rate_limit": {"qps": 5, "burst": 5}}})
    s = tcp_connect(dw)
    start = time.monotonic()
    s.sendall(b"".join(frame("www.fake.test", qid=i) for i in range(40)))
    answers = [read_answer(s) for _ in range(40)]
    took = time.monotonic() - start
    assert all(a is not None for a in answers), "connection closed"
    rcodes = [a.rcode() for a in answers]
    ok = rcodes.count(dns.rcode.NOERROR)
    assert rcodes.count(dns.rcode.REFUSED) == 40 - ok, rcodes
    assert 5 <= ok <= 5 + int(took * 5) + 1, (ok, took)
    assert sorted(a.id for a in answers) == list(range(40))
    assert dw.stats().get("ratelimited") == 40 - ok
    # Slowed down, the same connection is served again. The sleep is the
    # stimulus: 0.5 s refills two tokens at 5 qps.
    time.sleep(0.5)
    s.sendall(frame("www.fake.test", qid=99))
    assert read_answer(s).rcode() == dns.rcode.NOERROR
    s.close()


def test_tcp_outside_allow_clients_refused_at_accept(fake_upstream, dnswarden):
    dw = dnswarden([fake_upstream], {"server": {"allow_clients": ["127.0.0.1/32", "::1/128"]}})
    s = tcp_connect(dw, "127.0.0.2")
    assert closed_by_peer(s), "a client outside allow_clients holds a TCP slot"
    s.close()
    s = tcp_connect(dw, "127.0.0.1")
    s.sendall(frame("www.fake.test"))
    assert read_answer(s).rcode() == dns.rcode.NOERROR
    s.close()
    stats = dw.stats()
    assert stats.get("tcp_refused_client") == 1 and stats.get("tcp_accepted") >= 1, stats


def test_tcp_connections_per_client(fake_upstream, dnswarden):
    dw = dnswarden([fake_upstream], {"server": {"tcp_max_connections_per_client": 2}})
    held = [tcp_connect(dw, "127.0.0.3") for _ in range(2)]
    for s in held:
        s.sendall(frame("www.fake.test"))
        assert read_answer(s).rcode() == dns.rcode.NOERROR
    third = tcp_connect(dw, "127.0.0.3")
    assert closed_by_peer(third), "a third connection from one client was kept"
    other = tcp_connect(dw, "127.0.0.4")
    other.sendall(frame("www.fake.test"))
    assert read_answer(other).rcode() == dns.rcode.NOERROR
    # One closed, the client may open another.
    held.pop().close()
    deadline = time.monotonic() + 5
    while True:
        s = tcp_connect(dw, "127.0.0.3")
        s.sendall(frame("www.fake.test"))
        a = read_answer(s)
        s.close()
        if a is not None:
            break
        assert time.monotonic() < deadline, "the slot was not given back"
        time.sleep(0.05)
    assert dw.stats().get("tcp_client_limit") >= 1
    for s in held + [third, other]:
        s.close()


def big_txt(fake):
    """big.fake.test TXT: about 16 KB, an answer only TCP carries."""
    fake.add("big.fake.test", "TXT", [f'"{i:03d}{"x" * 250}"' for i in range(64)])


def test_tcp_write_timeout_frees_slots(fake_upstream, dnswarden):
    """Four clients pipeline queries for a 16 KB answer and never read:
    their answers fill the socket buffers, then dnswarden's queue, and
    reading stops. The write timeout closes them, and a fifth client,
    refused while the four held every slot, gets in. (2 s: time enough to
    set the four up on a loaded machine before the first one goes.)"""
    big_txt(fake_upstream)
    dw = dnswarden([fake_upstream], {"server": {
        "tcp_max_connections": 4, "tcp_write_timeout_ms": 2000,
        "tcp_idle_timeout_ms": 60000, "rate_limit": {"qps": 0, "burst": 1}}})
    assert len(dw.query("big.fake.test", "TXT", tcp=True).answer[0]) == 64  # cached
    hogs = []
    for i in range(4):
        s = tcp_connect(dw, f"127.0.0.{11 + i}", rcvbuf=4096)
        s.sendall(b"".join(frame("big.fake.test", "TXT", q) for q in range(1000)))
        hogs.append(s)
    start = time.monotonic()
    refused = 0
    while True:
        s = tcp_connect(dw, "127.0.0.15")
        s.sendall(frame("www.fake.test"))
        a = read_answer(s)
        s.close()
        if a is not None:
            break
        refused += 1
        assert time.monotonic() - start < 15, "the fifth client never got in"
        time.sleep(0.05)
    assert a.rcode() == dns.rcode.NOERROR
    assert refused >= 1, "the fifth client was let in beside four held slots"
    # Every one of the four goes the same way.
    deadline = time.monotonic() + 10
    while True:
        stats = dw.stats()
        if stats.get("tcp_write_timeouts") == 4:
            break
        assert time.monotonic() < deadline, \
            str({k: v for k, v in stats.items() if "tcp" in k})
        time.sleep(0.2)
    assert stats.get("tcp_refused") == refused, (refused, stats)
    for s in hogs:
        s.close()


def test_tcp_max_lifetime(fake_upstream, dnswarden):
    """A connection that keeps asking is still closed at its maximum age."""
    dw = dnswarden([fake_upstream], {"server": {"tcp_max_lifetime_ms": 1000}})
    s = tcp_connect(dw)
    start = time.monotonic()
    while True:
        s.sendall(frame("www.fake.test"))
        a = read_answer(s)
        if a is None:
            break
        assert time.monotonic() - start < 5, "connection lived past its lifetime"
        time.sleep(0.1)
    assert time.monotonic() - start >= 0.9
    assert dw.stats().get("tcp_lifetime_closed") == 1
    s.close()


# --- rows that can be forged told apart from those that cannot ---------------------

COOKIE = 10  # EDNS option code, RFC 7873


def udp_from_forged(src, dst, port, payload):
    """One UDP datagram to dst:port whose IP source is src, whoever we are:
    a raw socket writes the IP header itself (root only)."""
    sport = 40000
    udp = struct.pack("!HHHH", sport, port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64,
                     socket.IPPROTO_UDP, 0, socket.inet_aton(src), socket.inet_aton(dst))
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        s.sendto(ip + udp, (dst, 0))
    finally:
        s.close()


def rows_by_client(db, want):
    return {(r["client"], r["transport"]): r["verified"]
            for r in attempt_rows(db, want)}


@pytest.mark.skipif(os.geteuid() != 0, reason="a forged source address needs a raw socket")
def test_forged_udp_row_unverified_tcp_row_verified(fake_upstream, dnswarden):
    """A datagram with a forged source still makes a row in that address's
    name (dnswarden cannot tell), but the row says its source was not
    proven; a TCP row says it was."""
    dw = dnswarden([fake_upstream])
    udp_from_forged("127.0.0.99", dw.addr, dw.port,
                    harness.make_query("www.backpage.com", id=77).to_wire())
    assert_blocked(dw.query("www.backpage.com", tcp=True, edns=1232), "commercial-sex")
    rows = rows_by_client(dw.database, 2)
    assert rows == {("127.0.0.99", "udp"): 0, ("127.0.0.1", "tcp"): 1}, rows


def cookie_query(name, cookie, qid=None):
    q = harness.make_query(name, id=qid, edns=1232)
    q.use_edns(0, 0, 1232, options=[dns.edns.GenericOption(COOKIE, cookie)])
    return q


def cookie_of(r):
    opts = [o for o in r.options if o.otype == COOKIE]
    assert len(opts) == 1, f"no COOKIE option in the answer:\n{r}"
    return opts[0].to_wire() if hasattr(opts[0], "to_wire") else opts[0].data


def test_cookie_exchange_verified(fake_upstream, dnswarden):
    """RFC 7873: a client cookie alone gets our server cookie back (RFC
    9018 format); returned with the next query it proves the client's
    address, and the row says so. A cookie not ours, a plain UDP query,
    and a client cookie alone do not. The secret outlives a reload."""
    dw = dnswarden([fake_upstream])
    client = bytes.fromhex("2464c4abcf10c957")
    r = dw.query_msg(cookie_query("www.fake.test", client))
    assert r.rcode() == dns.rcode.NOERROR
    got = cookie_of(r)
    assert len(got) == 24 and got[:8] == client and got[8] == 1 and got[9:12] == b"\0\0\0", got
    assert abs(struct.unpack("!I", got[12:16])[0] - time.time()) < 60
    # The cookie returned: proven.
    r = dw.query_msg(cookie_query("www.backpage.com", got))
    assert_blocked(r, "commercial-sex")
    assert cookie_of(r)[:8] == client
    # Not proven: a server cookie not ours, a client cookie alone, none.
    forged = got[:23] + bytes([got[23] ^ 1])
    assert_blocked(dw.query_msg(cookie_query("www.backpage.com", forged)), "commercial-sex")
    assert_blocked(dw.query_msg(cookie_query("www.backpage.com", client)), "commercial-sex")
    assert_blocked(dw.query("www.backpage.com", edns=1232), "commercial-sex")
    # A reload keeps the secret: the cookie still proves the address.
    since = len(dw.stderr())
    dw.send_signal(signal.SIGHUP)
    assert dw.wait_stderr("reload", since=since), dw.stderr()[since:]
    assert_blocked(dw.query_msg(cookie_query("www.backpage.com", got)), "commercial-sex")
    rows = attempt_rows(dw.database, 5)
    assert [r["verified"] for r in rows] == [1, 0, 0, 0, 1], rows
    stats = dw.stats()
    assert stats.get("cookies_valid") == 2 and stats.get("cookies_invalid") == 1, stats


def test_cookie_malformed_formerr(fake_upstream, dnswarden):
    """RFC 7873 5.2.2: a COOKIE option of a length it does not allow."""
    dw = dnswarden([fake_upstream])
    for n in (7, 9, 15, 41):
        r = dw.query_msg(cookie_query("www.fake.test", bytes(range(n))))
        assert r.rcode() == dns.rcode.FORMERR, (n, r)
    assert fake_upstream.queries == []

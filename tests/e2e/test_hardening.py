"""End-to-end tests of hardening (issue 5): access control, rate limits,
TCP limits and bad TCP input, load shedding, privileges and counters, with
the real dnswarden binary and clients and upstreams started by the tests on
loopback addresses (127.0.0.1, .2 and .3 stand for different clients).

Covered elsewhere, not repeated here:
  forged upstream replies (wrong ID, wrong port, wrong question) sent before
  the real one: test_forwarding.py::test_forged_replies_ignored (answer and
  cache unchanged, forged_replies counted);
  an upstream answering garbage, slowly, truncating, closing TCP mid-answer,
  never answering over TCP after TC: test_upstream_faults.py. This file adds
  the TCP fallback answers that were missing (junk, wrong ID, wrong question,
  close without data, length prefix only, too slow).
"""

import os
import re
import resource
import select
import socket
import sqlite3
import struct
import time

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest

import harness
from fakeupstream import Close, Raw, Reply
from harness import rdata_of

SAMPLE = harness.REPO / "blocklist" / "sample-sites.yaml"
COUNTERS_H = harness.REPO / "resolver" / "counters.h"


@pytest.fixture
def dnswarden(dnswarden):
    """The conftest factory, with a roomier upstream timeout (1.5 s) unless
    a test sets one: the fake upstream is Python threads, and on a loaded
    machine 300 ms is sometimes not enough for it to answer."""
    return harness.with_defaults(dnswarden, timeout_ms=1500)


# --- helpers ------------------------------------------------------------------------

def udp_from(src, dw, q, timeout=2.0):
    """Send q over UDP from address src; the parsed reply or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((src, 0))
        s.sendto(q.to_wire(), (dw.addr, dw.port))
        if not select.select([s], [], [], timeout)[0]:
            return None
        return dns.message.from_wire(s.recv(65535))


class FramedReader:
    """Length-prefixed messages from a TCP socket, several per recv."""

    def __init__(self, s):
        self.s = s
        self.buf = b""

    def next(self, timeout):
        """The next message; None on close or timeout."""
        end = time.monotonic() + timeout
        while len(self.buf) < 2 or len(self.buf) < 2 + struct.unpack("!H", self.buf[:2])[0]:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.s], [], [], left)[0]:
                return None
            try:
                chunk = self.s.recv(65535)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.buf += chunk
        n = struct.unpack("!H", self.buf[:2])[0]
        msg, self.buf = self.buf[2:2 + n], self.buf[2 + n:]
        return msg


def framed(q):
    w = q.to_wire()
    return struct.pack("!H", len(w)) + w


def tcp_from(src, dw, q, timeout=2.0):
    """Send q on a new TCP connection from address src; the reply or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((src, 0))
        s.settimeout(timeout)
        s.connect((dw.addr, dw.port))
        s.sendall(framed(q))
        data = FramedReader(s).next(timeout)
    return dns.message.from_wire(data) if data is not None else None


def closed_by_peer(s):
    """True if the peer closed s (EOF or reset), False if it is still open
    and silent. Data from the peer is an error here."""
    p = select.poll()  # not select(): the descriptors may pass 1024
    p.register(s, select.POLLIN)
    if not p.poll(0):
        return False
    try:
        data = s.recv(1)
    except ConnectionResetError:
        return True
    assert data == b"", f"unexpected data {data!r} on an idle connection"
    return True


def wait_closed(s, timeout):
    """Seconds until the peer closed s, or None if it did not in time.
    Data from the peer is an error."""
    t0 = time.monotonic()
    s.settimeout(timeout)
    try:
        data = s.recv(65535)
    except socket.timeout:
        return None
    except ConnectionResetError:
        return time.monotonic() - t0
    assert data == b"", f"unexpected data {data!r} on a connection that must not be answered"
    return time.monotonic() - t0


def ede_codes(msg):
    return [o.code for o in msg.options if o.otype == dns.edns.OptionType.EDE]


def attempt_rows(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
    try:
        con.row_factory = sqlite3.Row
        return [dict(x) for x in con.execute("SELECT * FROM attempts ORDER BY id")]
    finally:
        con.close()


def collect_udp(s, n, timeout):
    """Read up to n replies from s within timeout: {id: (msg, arrival)}."""
    got = {}
    end = time.monotonic() + timeout
    while len(got) < n:
        left = end - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            break
        m = dns.message.from_wire(s.recv(65535))
        assert m.id not in got, f"two replies with ID {m.id}"
        got[m.id] = (m, time.monotonic())
    return got


# --- access control ------------------------------------------------------------------

def test_client_outside_allow_clients_refused(fake_upstream, dnswarden):
    dw = dnswarden([fake_upstream], {"server": {"allow_clients": ["127.0.0.2/32"]}},
                   blocklists=[SAMPLE])
    refused = 0
    at_accept = dw.stats().get("tcp_refused_client", 0)  # the start-up probes
    for name in ("www.fake.test", "www.backpage.com"):
        for edns in (None, 1232):
            # Over TCP the connection itself is refused at accept (issue
            # 19): a client that may not ask holds no slot.
            try:
                r = tcp_from("127.0.0.1", dw, harness.make_query(name))
            except (BrokenPipeError, ConnectionResetError):
                r = None
            assert r is None, f"answered over TCP outside allow_clients:\n{r}"
            for send in (udp_from,):
                q = harness.make_query(name, "A", edns=edns, id=4242)
                r = send("127.0.0.1", dw, q)
                assert r is not None, f"no answer to {name} over {send.__name__}"
                refused += 1
                assert r.id == 4242 and r.question == q.question
                assert r.rcode() == dns.rcode.REFUSED, \
                    f"{name} from 127.0.0.1 over {send.__name__}:\n{r}"
                assert not r.answer and not r.authority, r
                if edns is None:
                    assert r.edns == -1, f"OPT in the answer to a query without EDNS:\n{r}"
                else:
                    assert ede_codes(r) == [dns.edns.EDECode.PROHIBITED], \
                        f"expected EDE 18 (Prohibited):\n{r}"
    # ::1 is not in the list either.
    r = dw.query("www.fake.test", family=6, edns=1232)
    assert r.rcode() == dns.rcode.REFUSED and ede_codes(r) == [dns.edns.EDECode.PROHIBITED]
    refused += 1
    assert fake_upstream.queries == [], \
        f"queries of a refused client reached the upstream: {fake_upstream.queries}"
    stats = dw.stats()
    assert stats.get("refused") == refused, stats
    assert stats.get("tcp_refused_client") == at_accept + 4, stats
    assert stats.get("blocked") == 0, "a refused client's query was matched and counted"
    # The allowed client is answered and blocked as usual.
    for send in (udp_from, tcp_from):
        r = send("127.0.0.2", dw, harness.make_query("www.fake.test", "A"))
        assert r is not None and rdata_of(r, "A") == {"192.0.2.1"}, r
        r = send("127.0.0.2", dw, harness.make_query("www.backpage.com", "A", edns=1232))
        assert r is not None and r.rcode() == dns.rcode.NXDOMAIN
        assert ede_codes(r) == [dns.edns.EDECode.BLOCKED], r
    assert {q.qname_lower for q in fake_upstream.queries} == {"www.fake.test."}
    dw.stop()
    rows = attempt_rows(dw.database)
    assert [(x["client"], x["transport"]) for x in rows] == \
        [("127.0.0.2", "udp"), ("127.0.0.2", "tcp")], \
        f"attempt rows must come from the allowed client only: {rows}"


# --- rate limit ------------------------------------------------------------------------

def test_rate_limit_drops_one_client_and_answers_another(fake_upstream, dnswarden):
    dw = dnswarden([fake_upstream], {"server": {"rate_limit": {"qps": 20, "burst": 20}}})
    # Warm the cache from another address, so the flood is cache hits.
    assert rdata_of(udp_from("127.0.0.4", dw, harness.make_query("www.fake.test")), "A")
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    a.connect((dw.addr, dw.port))
    try:
        t0 = time.monotonic()
        for i in range(1, 201):
            a.send(harness.make_query("www.fake.test", "A", id=i).to_wire())
        # Another client meanwhile: answered, every time.
        for i in range(10):
            r = udp_from("127.0.0.3", dw, harness.make_query("www.fake.test", "A", id=i),
                         timeout=1.0)
            assert r is not None, f"client 127.0.0.3 not answered ({i}) while 127.0.0.1 floods"
            assert rdata_of(r, "A") == {"192.0.2.1"}
        # The flooding client is still over its rate.
        for i in range(201, 211):
            a.send(harness.make_query("www.fake.test", "A", id=i).to_wire())
        t1 = time.monotonic()
        got = collect_udp(a, 210, 0.7)
        # TCP is not rate limited (it cannot be used for amplification).
        r = tcp_from("127.0.0.1", dw, harness.make_query("www.fake.test", "A"))
        assert r is not None and rdata_of(r, "A") == {"192.0.2.1"}, \
            "a TCP query from the rate-limited client was not answered"
        allowed = 20 + 20 * (t1 - t0) + 1
        assert 20 <= len(got) <= allowed, \
            f"{len(got)} of 210 answered in {t1 - t0:.2f} s at 20 qps, burst 20"
        assert all(rdata_of(m, "A") == {"192.0.2.1"} for m, _ in got.values())
        late = [i for i in got if i > 200]
        assert len(late) <= 20 * (t1 - t0) + 1, f"answered after the flood: {late}"
        stats = dw.stats()
        assert stats.get("ratelimited") == 210 - len(got), stats
        # Once it stops, the bucket refills (a token every 50 ms at 20
        # qps): asked every 0.2 s, it is answered again well within 1 s.
        stopped = time.monotonic()
        ids = iter(range(999, 2000))

        def answered():
            a.send(harness.make_query("www.fake.test", "A", id=next(ids)).to_wire())
            return collect_udp(a, 1, 0.2)
        harness.wait_for(answered, "an answer once the client stopped flooding", timeout=5)
        took = time.monotonic() - stopped
        assert took < 2.5, f"the client was still dropped {took:.2f} s after it stopped " \
            "(1 s and ASan's headroom on a loaded machine)"
    finally:
        a.close()


def test_rate_limit_per_client_whatever_the_threads(fake_upstream, dnswarden):
    """The bucket is per client address (dnswarden.yaml(5)), so a client
    sending each query from a new source port, as stub resolvers do, gets
    the same rate with server.threads: 2 (queries spread over the threads'
    SO_REUSEPORT sockets by 4-tuple) as with one thread."""
    dw = dnswarden([fake_upstream], {"server": {"threads": 2,
                                                "rate_limit": {"qps": 20, "burst": 20}}})
    assert rdata_of(udp_from("127.0.0.4", dw, harness.make_query("www.fake.test")), "A")
    socks = []
    try:
        t0 = time.monotonic()
        for i in range(200):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
            s.sendto(harness.make_query("www.fake.test", "A", id=i).to_wire(),
                     (dw.addr, dw.port))
        counted = lambda: sum(1 for s in socks if select.select([s], [], [], 0)[0])
        # Every query read: answered or counted as dropped. The bucket is
        # measured over the time until then (a loaded machine reads late).
        harness.wait_for(lambda: counted() + dw.stats().get("ratelimited", 0) >= 200,
                         "all 200 queries answered or counted as rate limited")
        elapsed = time.monotonic() - t0
        answered = counted()
    finally:
        for s in socks:
            s.close()
    assert 20 <= answered <= 20 + 20 * elapsed + 1, \
        f"{answered} of 200 queries from 200 source ports answered in {elapsed:.2f} s " \
        "at 20 qps, burst 20, with 2 threads"


# --- TCP limits ---------------------------------------------------------------------------

def _raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (min(n, hard) if hard != resource.RLIM_INFINITY else n, hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= n, \
        f"cannot open {n} files (ulimit -n {soft}, hard {hard})"


def test_idle_tcp_connections_limit_and_timeout(fake_upstream, dnswarden):
    """300 idle connections against the default limit of 256: the extra
    ones are closed at once, UDP is still answered, a new TCP connection is
    refused while the idle ones are held, the idle timeout closes them, and
    then TCP works again.

    tcp_idle_timeout_ms is 3 s, not 1 s: connections accepted while the
    table is 3/4 full get a fifth of it (600 ms), and the "refused while
    full" check must run before the first of those goes. The connections
    are paced (the daemon's listen backlog is 128; a SYN dropped from a
    full queue is sent again only after 1 s), and a filling that still
    took too long is tried again."""
    _raise_nofile(1024)
    dw = dnswarden([fake_upstream], {"server": {"tcp_idle_timeout_ms": 3000,
                                                "tcp_max_connections_per_client": 1000}})
    assert rdata_of(dw.query("www.fake.test"), "A") == {"192.0.2.1"}
    before = dw.stats()
    conns, fills = [], []
    try:
        for attempt in range(3):
            t0 = time.monotonic()
            for i in range(300):
                conns.append(socket.create_connection((dw.addr, dw.port), timeout=3))
                if i % 25 == 24:
                    time.sleep(0.01)  # let it accept: its listen backlog is 128
            fills.append(time.monotonic() - t0)
            if fills[-1] < 0.35:
                break
            for c in conns:
                c.close()
            conns = []
            # Only before a retry: the closes reach the daemon (no counter
            # shows its open connections; the check below counts exactly).
            time.sleep(0.3)
        assert conns, f"could not open 300 connections in 0.35 s (took {fills})"
        # The 44 over the limit are closed when accepted; the rest only at
        # the idle timeout, 3 s after t0.
        harness.wait_for(lambda: sum(1 for c in conns if closed_by_peer(c)) >= 300 - 256,
                         "the connections over the limit closed", timeout=2)
        closed = [c for c in conns if closed_by_peer(c)]
        assert len(closed) == 300 - 256, \
            f"{len(closed)} of 300 connections closed at once with a limit of 256"
        # UDP goes on, and a new TCP connection is closed unanswered.
        r = dw.query("www.fake.test", timeout=1)
        assert rdata_of(r, "A") == {"192.0.2.1"}, "UDP not answered with 300 TCP connections"
        data = dw.send_raw(harness.make_query("www.fake.test").to_wire(), tcp=True,
                           timeout=1)
        checked = time.monotonic() - t0
        assert data is None, \
            f"a TCP connection beyond the limit was served ({checked:.2f} s after filling)"
        # The idle ones are closed by the timeout.
        end = t0 + 3.0 + 2.0
        while time.monotonic() < end and not all(closed_by_peer(c) for c in conns):
            time.sleep(0.1)
        still = sum(1 for c in conns if not closed_by_peer(c))
        assert still == 0, f"{still} idle connections still open {time.monotonic() - t0:.1f} s " \
            "after they were opened, with tcp_idle_timeout_ms 3000"
    finally:
        for c in conns:
            c.close()
    r = dw.query("www.fake.test", tcp=True, timeout=2)
    assert rdata_of(r, "A") == {"192.0.2.1"}, "TCP not served after the idle connections closed"
    stats = dw.stats()
    refused = stats["tcp_refused"] - before["tcp_refused"]
    timeouts = stats["tcp_timeouts"] - before["tcp_timeouts"]
    # Exact when the first filling was used; a retried one adds its own.
    assert refused == 45 if len(fills) == 1 else refused >= 45, \
        f"tcp_refused went up by {refused} ({len(fills)} fillings): {stats}"
    assert timeouts == 256, f"tcp_timeouts went up by {timeouts}: {stats}"
    assert dw.running()


def test_stalled_half_message_closed(fake_upstream, dnswarden):
    """Length prefix 100, then 10 bytes, then nothing: closed by the idle
    timeout (1 s), while another connection is served meanwhile."""
    dw = dnswarden([fake_upstream], {"server": {"tcp_idle_timeout_ms": 1000}})
    with socket.create_connection((dw.addr, dw.port), timeout=3) as stalled:
        stalled.sendall(struct.pack("!H", 100) + b"\x12\x34" + b"\x00" * 8)
        t0 = time.monotonic()
        for i in range(3):
            r = dw.query("www.fake.test", tcp=True, timeout=1)
            assert rdata_of(r, "A") == {"192.0.2.1"}
        assert not closed_by_peer(stalled), \
            f"the stalled connection was closed {time.monotonic() - t0:.2f} s after it stalled"
        assert wait_closed(stalled, 5) is not None, \
            "the stalled connection was not closed within 5 s"
        took = time.monotonic() - t0
        assert took >= 0.9, f"closed {took:.2f} s after it stalled, before the idle timeout"
    assert dw.stats().get("tcp_timeouts", 0) >= 1
    assert rdata_of(dw.query("www.fake.test", tcp=True), "A") == {"192.0.2.1"}


def test_message_dripped_byte_by_byte_closed(fake_upstream, dnswarden):
    """A client that sends a length prefix of 100 and then one byte every
    0.4 s never goes idle for tcp_idle_timeout_ms (1 s), yet it holds a
    connection slot without ever completing a query: 256 such clients
    would shut TCP service down (slowloris). A message must arrive whole
    within a bounded time; this test allows 3 s, three idle timeouts."""
    dw = dnswarden([fake_upstream], {"server": {"tcp_idle_timeout_ms": 1000}})
    with socket.create_connection((dw.addr, dw.port), timeout=3) as s:
        s.sendall(struct.pack("!H", 100))
        t0 = time.monotonic()
        closed, sent = False, 0
        while time.monotonic() - t0 < 4.0 and not closed:
            time.sleep(0.4)  # the stimulus: a byte every 0.4 s
            closed = closed_by_peer(s)
            if not closed:
                try:
                    s.sendall(b"\x00")
                    sent += 1
                except OSError:
                    closed = True
        took = time.monotonic() - t0
    assert closed and took <= 3.5, \
        f"a message dripped at 2.5 bytes/s kept its connection open {took:.1f} s " \
        f"(only {sent} of its 100 bytes arrived)"
    assert rdata_of(dw.query("www.fake.test", tcp=True), "A") == {"192.0.2.1"}


@pytest.mark.parametrize("half_close", [False, True], ids=["open", "half-closed"])
def test_length_prefix_larger_than_data(fake_upstream, dnswarden, half_close):
    """A whole query under a length prefix 200 bytes too large: never
    answered; closed at the idle timeout (500 ms) while the client keeps
    the connection open, at once (long before the 2 s timeout used then)
    when it has closed its side."""
    idle = 5000 if half_close else 500
    dw = dnswarden([fake_upstream], {"server": {"tcp_idle_timeout_ms": idle}})
    w = harness.make_query("www.fake.test", "A").to_wire()
    with socket.create_connection((dw.addr, dw.port), timeout=3) as s:
        s.sendall(struct.pack("!H", len(w) + 200) + w)
        t0 = time.monotonic()
        if half_close:
            s.shutdown(socket.SHUT_WR)
        took = wait_closed(s, 5)
        assert took is not None, "connection with a short message not closed within 5 s"
        elapsed = time.monotonic() - t0
        if half_close:
            # At once, not at the 5 s idle timeout (2.5 s: ASan on a loaded machine).
            assert elapsed < 2.5, f"closed after {elapsed:.2f} s: the client had finished"
        else:
            assert elapsed >= 0.4, f"closed after {elapsed:.2f} s, before the idle timeout"
    assert fake_upstream.queries == [], "the incomplete message was processed"
    assert rdata_of(dw.query("www.fake.test", tcp=True), "A") == {"192.0.2.1"}
    assert rdata_of(dw.query("www.fake.test"), "A") == {"192.0.2.1"}


@pytest.mark.parametrize("half_close", [False, True], ids=["open", "half-closed"])
def test_pipelined_tcp_queries_all_answered(fake_upstream, dnswarden, half_close):
    dw = dnswarden([fake_upstream], blocklists=[SAMPLE])
    asks = [("www.fake.test", "A"), ("www.fake.test", "AAAA"), ("multi.fake.test", "A"),
            ("nothing.fake.test", "A"), ("www.backpage.com", "A"), ("www.fake.test", "A"),
            ("use-application-dns.net", "AAAA"), ("fake.test", "SOA"),
            ("MULTI.FAKE.TEST", "A"), ("www.fake.test", "MX")]
    qs = [harness.make_query(n, t, id=100 + i, edns=1232) for i, (n, t) in enumerate(asks)]
    got = {}
    with socket.create_connection((dw.addr, dw.port), timeout=3) as s:
        s.sendall(b"".join(framed(q) for q in qs))  # ten queries, one write
        if half_close:
            s.shutdown(socket.SHUT_WR)
        reader = FramedReader(s)
        while len(got) < len(qs):
            data = reader.next(3)
            assert data is not None, f"{len(got)} of {len(qs)} pipelined queries answered"
            m = dns.message.from_wire(data)
            assert m.id not in got
            got[m.id] = m
        if half_close:
            assert wait_closed(s, 3) is not None, "not closed after the last answer"
    for q in qs:
        r = got[q.id]
        assert r.question == q.question
    assert rdata_of(got[100], "A") == rdata_of(got[105], "A") == {"192.0.2.1"}
    assert rdata_of(got[101], "AAAA") == {"2001:db8::1"}
    assert rdata_of(got[102], "A") == rdata_of(got[108], "A") == \
        {"192.0.2.11", "192.0.2.12", "192.0.2.13"}
    assert got[103].rcode() == dns.rcode.NXDOMAIN and not ede_codes(got[103])
    for i in (104, 106):
        assert got[i].rcode() == dns.rcode.NXDOMAIN
        assert ede_codes(got[i]) == [dns.edns.EDECode.BLOCKED]
    assert rdata_of(got[107], "SOA")
    assert got[109].rcode() == dns.rcode.NOERROR and not got[109].answer


# --- upstream faults over TCP (the rest: test_upstream_faults.py) -------------------------

def _tcp_fault(fake, kind):
    def plan(q):
        full = fake.response(q)
        if kind == "junk":
            data = struct.pack("!H", q.id) + bytes(range(7, 67))
            return [Reply(data)]
        if kind == "wrong_id":
            full.id = q.id ^ 0x5A5A
            return [Reply(full)]
        if kind == "wrong_question":
            return [fake.forged(q, "wrong_question")]
        if kind == "close":
            return [Close()]
        if kind == "prefix_only":
            return [Raw(struct.pack("!H", 300)), Close(0.05)]
        if kind == "slow":
            return [Reply(full, delay=1.6)]
        raise ValueError(kind)
    return plan


@pytest.mark.parametrize("kind", ["junk", "wrong_id", "wrong_question", "close",
                                  "prefix_only", "slow"])
def test_tcp_fallback_fault_servfail(fake_upstream, dnswarden, kind):
    """The upstream answers TC over UDP, then misbehaves over TCP: the
    client gets SERVFAIL within the timeout (800 ms), nothing is cached."""
    fake_upstream.mode_truncate(_tcp_fault(fake_upstream, kind))
    dw = dnswarden([fake_upstream], timeout_ms=800)
    t = time.monotonic()
    r = dw.query("multi.fake.test", edns=1232, timeout=5)
    assert r.rcode() == dns.rcode.SERVFAIL, f"{kind} over TCP after TC:\n{r}"
    assert not r.answer and not r.flags & dns.flags.TC
    assert time.monotonic() - t < 3
    if kind == "slow":  # by order: given up before the 1.6 s TCP answer was written
        assert fake_upstream.replies_sent == 1, "waited for the slow TCP answer"
    assert [q.transport for q in fake_upstream.queries_for("multi.fake.test")][:2] == \
        ["udp", "tcp"]
    if kind == "slow":
        fake_upstream.wait_replies_sent(2)  # the late TCP answer arrives now
    assert dw.running()
    fake_upstream.mode_normal()
    r = dw.query("multi.fake.test", timeout=3)
    assert rdata_of(r, "A") == {"192.0.2.11", "192.0.2.12", "192.0.2.13"}, \
        f"not answered once the upstream works again:\n{r}\n{fake_upstream.queries}"


# --- privileges --------------------------------------------------------------------------

def _status(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        out[k] = v.split()
    return out


def default_user() -> str:
    """server.user when the file names none: dnswarden, or nobody (with a
    warning) where that user was not created."""
    import pwd
    try:
        pwd.getpwnam("dnswarden")
        return "dnswarden"
    except KeyError:
        return "nobody"


@pytest.mark.parametrize("user,expect", [(None, default_user()), ("daemon", "daemon"),
                                         ("nobody", "nobody")])
def test_runs_as_unprivileged_user(fake_upstream, dnswarden, user, expect):
    """Started as root, the daemon binds, then switches every thread to
    server.user (dnswarden by default; nobody, with a warning saying why
    that is weaker, only when dnswarden does not exist and the file names
    no user) before it reads from the network: once it has answered a
    query, no thread may be root. It still answers and writes its
    database. (A user the file names that does not exist:
    test_privdrop.py::test_missing_user.)"""
    import pwd
    over = {"server": {"user": user, "threads": 2}} if user else {"server": {"threads": 2}}
    dw = dnswarden([fake_upstream], over, blocklists=[SAMPLE])
    assert rdata_of(dw.query("www.fake.test"), "A") == {"192.0.2.1"}
    assert rdata_of(dw.query("www.fake.test", tcp=True), "A") == {"192.0.2.1"}
    tasks = sorted(os.listdir(f"/proc/{dw.proc.pid}/task"))
    assert len(tasks) >= 2, tasks
    pw = pwd.getpwnam(expect) if os.geteuid() == 0 else None
    for tid in tasks:
        st = _status(f"{dw.proc.pid}/task/{tid}")
        if pw is None:
            # Not root: nothing to drop; the daemon keeps the caller's ids.
            assert st["Uid"] == [str(os.geteuid())] * 4, st["Uid"]
            continue
        assert st["Uid"] == [str(pw.pw_uid)] * 4, \
            f"thread {tid}: Uid (real, effective, saved, fs) {st['Uid']}, " \
            f"want {expect} ({pw.pw_uid})"
        assert st["Gid"] == [str(pw.pw_gid)] * 4, \
            f"thread {tid}: Gid {st['Gid']}, want {expect}'s group {pw.pw_gid}"
        assert "0" not in st.get("Groups", []), f"still in group root: {st.get('Groups')}"
        assert int(st["CapEff"][0], 16) == 0 and int(st["CapPrm"][0], 16) == 0, \
            f"thread {tid}: capabilities left: CapEff {st['CapEff']} CapPrm {st['CapPrm']}"
    r = dw.query("www.backpage.com", edns=1232)
    assert r.rcode() == dns.rcode.NXDOMAIN
    end = time.monotonic() + 3
    rows = []
    while time.monotonic() < end and not rows:
        try:
            rows = attempt_rows(dw.database)
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)
    assert [x["qname"] for x in rows] == ["www.backpage.com"], \
        f"attempt not written within 3 s by the unprivileged daemon: {rows}\n{dw.stderr()}"
    if pw is not None:
        assert os.stat(dw.database).st_uid == pw.pw_uid, "database not owned by the daemon user"
    assert dw.stats().get("log_write_errors") == 0
    fell_back = "running as nobody, which other services share" in dw.stderr()
    assert fell_back == (user is None and expect == "nobody"), dw.stderr()


def test_database_ready_before_first_answer(fake_upstream, dnswarden):
    """By the time the daemon answers its first query, its writer has
    created the database with its schema and the WAL files (-wal, -shm),
    owned by the daemon's user. Otherwise an admin who reads the log as
    root at that moment (dnswarden log, sqlite3, this test) creates them:
    SQLite running as root creates a missing -wal or -shm file as root and
    only then hands it to the database's owner, and the writer's first
    open in between failed with "Permission denied" (log_write_errors 1,
    the rows a second late; once in 30 runs of the test above). Four
    starts: before the fix, about one start in two answered first."""
    import pwd
    for _ in range(4):
        # Not until "serving": the point is what holds at the first answer.
        dw = dnswarden([fake_upstream], blocklists=[SAMPLE], until_serving=False)
        r = dw.query("www.backpage.com")   # the first query the daemon answers
        assert r.rcode() == dns.rcode.NXDOMAIN
        db = str(dw.database)
        # Nothing here may open the database before these checks: it
        # would create the files itself.
        missing = [s for s in ("", "-wal", "-shm") if not os.path.exists(db + s)]
        assert not missing, f"{missing} of {db} not there at the first answer:\n{dw.stderr()}"
        if os.geteuid() == 0:
            uid = pwd.getpwnam(default_user()).pw_uid
            for s in ("", "-wal", "-shm"):
                assert os.stat(db + s).st_uid == uid, \
                    f"{db}{s} not owned by {default_user()}"
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            tables = {x[0] for x in con.execute("SELECT name FROM sqlite_master")}
        finally:
            con.close()
        assert {"attempts", "log_gaps"} <= tables, tables
        end = time.monotonic() + 3
        while time.monotonic() < end and not attempt_rows(dw.database):
            time.sleep(0.05)
        assert [x["qname"] for x in attempt_rows(dw.database)] == ["www.backpage.com"]
        assert dw.stats().get("log_write_errors") == 0, dw.stderr()


# --- load shedding -----------------------------------------------------------------------

def test_max_outstanding_sheds_load(fake_upstream, dnswarden):
    names = [f"n{i}.fake.test" for i in range(50)]
    for i, n in enumerate(names):
        fake_upstream.add(n, "A", f"198.51.100.{i + 1}")
    fake_upstream.mode_delay(1.0)
    dw = dnswarden([fake_upstream], {"server": {"max_outstanding": 5}}, timeout_ms=2500)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((dw.addr, dw.port))
    try:
        t0 = time.monotonic()
        for i, n in enumerate(names):
            s.send(harness.make_query(n, "A", id=i + 1).to_wire())
        got = collect_udp(s, 50, 4.0)
    finally:
        s.close()
    assert len(got) == 50, f"only {len(got)} of 50 answered"
    ok = sorted(i for i, (m, _) in got.items() if m.rcode() == dns.rcode.NOERROR)
    shed = [i for i, (m, _) in got.items() if m.rcode() == dns.rcode.SERVFAIL]
    assert ok == [1, 2, 3, 4, 5], f"answered: {ok}; with max_outstanding 5 the first 5 go upstream"
    for i in ok:
        assert rdata_of(got[i][0], "A") == {f"198.51.100.{i}"}
        assert got[i][1] - t0 >= 0.9, "answered before the upstream's 1 s delay"
    assert len(shed) == 45
    # Shed at once: every SERVFAIL comes before the upstream answered (by
    # order, not a clock bound, so a loaded machine cannot fail it).
    last_shed = max(got[i][1] for i in shed)
    # The upstream notes a reply's time after writing it: the answer can
    # be here first.
    fake_upstream.wait_replies_sent(5)
    first_reply = min(fake_upstream.reply_times)
    assert last_shed < first_reply, \
        f"shed queries answered {last_shed - first_reply:.2f} s after the upstream's reply"
    assert len(fake_upstream.queries) == 5, fake_upstream.queries
    stats = dw.stats()
    assert stats.get("overload_dropped") == 45, stats
    assert dw.running()
    # Shed answers are not cached: asked again, answered.
    fake_upstream.mode_normal()
    assert rdata_of(dw.query("n30.fake.test"), "A") == {"198.51.100.31"}


def test_max_waiters_sheds_extra_identical_questions(fake_upstream, dnswarden):
    """max_waiters: 2 -> the first query and one merged into it wait for
    the upstream and get its answer; the other eight get SERVFAIL at once."""
    fake_upstream.mode_delay(1.0)
    dw = dnswarden([fake_upstream], {"server": {"max_waiters": 2}}, timeout_ms=2500)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((dw.addr, dw.port))
    try:
        t0 = time.monotonic()
        for i in range(1, 11):
            s.send(harness.make_query("multi.fake.test", "A", id=i).to_wire())
        got = collect_udp(s, 10, 4.0)
    finally:
        s.close()
    assert len(got) == 10, f"only {len(got)} of 10 answered"
    ok = sorted(i for i, (m, _) in got.items() if m.rcode() == dns.rcode.NOERROR)
    assert ok == [1, 2], f"answered by the upstream: {ok}"
    for i in ok:
        assert rdata_of(got[i][0], "A") == {"192.0.2.11", "192.0.2.12", "192.0.2.13"}
        assert got[i][1] - t0 >= 0.9
    fake_upstream.wait_replies_sent(1)  # its time is noted after the write
    first_reply = min(fake_upstream.reply_times)
    for i in range(3, 11):
        assert got[i][0].rcode() == dns.rcode.SERVFAIL, got[i][0]
        assert got[i][1] < first_reply, \
            f"query {i} shed {got[i][1] - first_reply:.2f} s after the upstream's reply"
    assert len(fake_upstream.queries) == 1
    stats = dw.stats()
    assert stats.get("merged") == 1 and stats.get("overload_dropped") == 8, stats


# --- counters -------------------------------------------------------------------------------

def counter_names():
    text = COUNTERS_H.read_text()
    block = text[text.index("#define COUNTERS_FIELDS"):]
    block = block[:block.index("struct counters")]
    names = re.findall(r"\bX\(\s*([a-z_0-9]+)\s*,", block)
    assert len(names) >= 20 and "queries" in names, names
    return names


def test_sigusr1_prints_every_counter(fake_upstream, dnswarden):
    dw = dnswarden([fake_upstream], blocklists=[SAMPLE])
    dw.query("www.fake.test")                     # miss
    dw.query("www.fake.test")                     # hit
    dw.query("www.backpage.com", tcp=True)        # blocked, TCP
    dw.send_raw(b"\x00\x01\x02")                  # too short: dropped
    udp_from("127.0.0.1", dw, harness.make_query("www.fake.test", "A"))  # hit
    since = len(dw.stderr())
    stats = dw.stats()
    text = dw.stderr()[since:]
    names = counter_names() + ["log_rows_dropped"]
    for name in names:
        assert re.search(rf"^dnswarden: stats: {name} \d+$", text, re.M), \
            f"counter {name} missing from the SIGUSR1 output:\n{text}"
    # Every packet read counts in queries and in its transport's counter,
    # the dropped one too.
    want = {"queries": 5, "queries_udp": 4, "queries_tcp": 1, "cache_hits": 2,
            "cache_misses": 1, "upstream_queries": 1, "blocked": 1, "dropped": 1,
            "refused": 0, "ratelimited": 0, "servfail": 0, "overload_dropped": 0,
            "log_rows_dropped": 0}
    assert {k: stats.get(k) for k in want} == want, stats
    assert dw.running()

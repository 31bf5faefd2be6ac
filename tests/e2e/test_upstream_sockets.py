"""Upstream UDP sockets under load: tries in flight at the same time share
a socket (one random source port), at most upstream_queries_per_socket of
them, each under an ID unique on that socket; a socket closes when its last
try is over. What a client relies on stays as it was: every answer is the
right one, forgeries and late replies are told apart, a refused port fails
over at once, and an oversized reply is asked again over TCP."""

import collections
import os
import select
import signal
import socket
import struct
import subprocess
import threading
import time

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

from fakeupstream import FakeUpstream, Reply
from harness import closed_port, rdata_of, wait_for


def ask_many(dw, names, timeout=8.0):
    """Send a query for each name at once, from one client socket, and
    return {name: reply}; names without a reply within timeout are absent."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        by_id = {}
        for i, name in enumerate(names):
            q = dns.message.make_query(name, "A")
            q.id = i + 1
            by_id[q.id] = name
            s.sendto(q.to_wire(), (dw.addr, dw.port))
        got = {}
        end = time.monotonic() + timeout
        while len(got) < len(names) and time.monotonic() < end:
            r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
            if not r:
                break
            m = dns.message.from_wire(s.recv(65535))
            if m.id in by_id:
                got[by_id[m.id]] = m
        return got
    finally:
        s.close()


def add_names(fake, n, prefix):
    names = [f"{prefix}{i}.fake.test" for i in range(n)]
    for i, name in enumerate(names):
        fake.add(name, "A", f"192.0.2.{i % 250 + 1}")
    return names


def upstream_sockets_open(port: int) -> int:
    """UDP sockets on this machine connected to 127.0.0.1:port."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        next(f)
        return sum(1 for line in f if line.split()[2] == want)


def tcp_clients_open(port: int) -> int:
    """TCP connections to local port port whose server side is not closed
    yet (established or half-closed by the client, accepted or still
    queued): each holds, or will hold, a descriptor of the server."""
    n = 0
    for table in ("tcp", "tcp6"):
        with open(f"/proc/net/{table}") as f:
            next(f)
            for line in f:
                col = line.split()
                if col[1].endswith(f":{port:04X}") and col[3] in ("01", "08"):
                    n += 1
    return n


def by_port(queries):
    ports = collections.defaultdict(list)
    for q in queries:
        ports[q.src[1]].append(q.id)
    return ports


def test_busy_tries_share_sockets_within_the_limit(fake_upstream, dnswarden):
    fake_upstream.mode_delay(0.4)  # 40 tries in flight together
    names = add_names(fake_upstream, 40, "share")
    dw = dnswarden([fake_upstream], {"upstream_queries_per_socket": 8},
                   timeout_ms=3000)
    got = ask_many(dw, names)
    for i, name in enumerate(names):
        assert name in got, f"no answer for {name}"
        assert rdata_of(got[name], "A") == {f"192.0.2.{i % 250 + 1}"}, got[name]
    qs = [q for q in fake_upstream.queries if q.qname_lower.startswith("share")]
    assert len(qs) == 40
    ports = by_port(qs)
    for port, ids in ports.items():
        assert 1024 <= port <= 65535
        assert len(ids) <= 8, f"port {port} carried {len(ids)} tries, limit 8"
        assert len(set(ids)) == len(ids), f"an ID repeats on port {port}: {ids}"
    assert 5 <= len(ports) < 40, f"{len(ports)} ports for 40 concurrent tries"
    st = dw.stats()
    assert st["upstream_sockets"] == len(ports), st
    assert st["upstream_queries"] == 40 and st["forged_replies"] == 0, st
    # Nothing waits any more: no socket stays open.
    assert upstream_sockets_open(fake_upstream.port) == 0


def test_ipv6_upstream_tries_share_sockets(dnswarden):
    fake = FakeUpstream("::1").start()
    try:
        fake.mode_delay(0.4)
        names = add_names(fake, 24, "six")
        dw = dnswarden([fake], timeout_ms=3000)
        got = ask_many(dw, names)
        for i, name in enumerate(names):
            assert rdata_of(got[name], "A") == {f"192.0.2.{i + 1}"}, got.get(name)
        qs = [q for q in fake.queries if q.qname_lower.startswith("six")]
        ports = by_port(qs)
        assert len(qs) == 24 and 2 <= len(ports) < 24, ports
        for port, ids in ports.items():
            assert len(ids) <= 16 and len(set(ids)) == len(ids), (port, ids)
    finally:
        fake.close()


def test_one_query_per_socket_gives_every_try_its_own_port(fake_upstream, dnswarden):
    fake_upstream.mode_delay(0.4)
    names = add_names(fake_upstream, 30, "own")
    dw = dnswarden([fake_upstream], {"upstream_queries_per_socket": 1},
                   timeout_ms=3000)
    got = ask_many(dw, names)
    assert len(got) == 30
    qs = [q for q in fake_upstream.queries if q.qname_lower.startswith("own")]
    ports = by_port(qs)
    assert len(qs) == 30 and len(ports) == 30, ports
    assert dw.stats()["upstream_sockets"] == 30


def test_sockets_open_only_while_tries_wait(fake_upstream, dnswarden):
    fake_upstream.mode_delay(1.0)
    names = add_names(fake_upstream, 20, "open")
    dw = dnswarden([fake_upstream], {"upstream_queries_per_socket": 4},
                   timeout_ms=3000)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i, name in enumerate(names):
        q = dns.message.make_query(name, "A")
        q.id = i + 1
        s.sendto(q.to_wire(), (dw.addr, dw.port))
    fake_upstream.wait_queries(20)
    assert upstream_sockets_open(fake_upstream.port) == 5  # 20 tries / 4
    got = ask_many(dw, names)  # answered from the cache or the same tries
    assert len(got) == 20
    end = time.monotonic() + 3
    while upstream_sockets_open(fake_upstream.port) and time.monotonic() < end:
        time.sleep(0.05)
    assert upstream_sockets_open(fake_upstream.port) == 0
    s.close()


def test_socket_takes_tries_only_for_one_timeout(fake_upstream, dnswarden):
    """A socket kept open by overlapping tries still takes new ones only
    for upstream_timeout_ms after it was opened, so no port lives longer
    than about two timeouts."""
    fake_upstream.mode_delay(1.5)
    names = add_names(fake_upstream, 4, "age")
    dw = dnswarden([fake_upstream], timeout_ms=2000)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(6)
    # Sent 0, 0.5, 1.2 and 2.3 s after the first reached the upstream (so
    # after the socket was opened); each answered 1.5 s after it arrives,
    # so the socket always has a try waiting, but is over 2.3 s old at the
    # fourth.
    start = None
    for i, (name, at) in enumerate(zip(names, (0, 0.5, 1.2, 2.3))):
        if start is not None:
            time.sleep(max(0.0, start + at - time.monotonic()))
        q = dns.message.make_query(name, "A")
        q.id = i + 1
        s.sendto(q.to_wire(), (dw.addr, dw.port))
        if start is None:
            start = fake_upstream.wait_queries(1)[0].time
    answered = set()
    while len(answered) < 4:
        m = dns.message.from_wire(s.recv(65535))
        assert m.rcode() == dns.rcode.NOERROR, m
        answered.add(m.id)
    s.close()
    src = {q.qname_lower: q.src[1] for q in fake_upstream.queries}
    ports = [src[n + "."] for n in names]
    assert ports[0] == ports[1] == ports[2], ports
    assert ports[3] != ports[0], "a socket took a try after one timeout"


def test_late_reply_on_a_shared_socket_is_late_not_forged(fake_upstream, dnswarden):
    """A try that gave up leaves its socket; its reply, coming while another
    try still waits there, is counted as late and changes nothing; a
    datagram with its ID but another question is a forgery."""
    fake_upstream.add("late.fake.test", "A", "192.0.2.80")
    fake_upstream.add("ontime.fake.test", "A", "192.0.2.81")

    # By order, not by delays: "late"'s two datagrams are written once the
    # client has its SERVFAIL (the try is gone), and "ontime"'s answer
    # right after them, while its own try still waits on that socket.
    late_gone = threading.Event()

    def plan(q):
        if q.qname_lower.startswith("late."):
            # A forgery with the gone try's ID but another question, then
            # the real, late, reply.
            late_gone.wait(10)
            return [fake_upstream.forged(q, "wrong_question"),
                    Reply(fake_upstream.response(q))]
        fake_upstream.wait_replies_sent(2)
        return [Reply(fake_upstream.response(q))]
    fake_upstream.handler = plan
    dw = dnswarden([fake_upstream], timeout_ms=2000)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(6)
    late = dns.message.make_query("late.fake.test", "A")
    s.sendto(late.to_wire(), (dw.addr, dw.port))
    fake_upstream.wait_queries(1)
    # The stimulus: "ontime" is sent 1 s after "late", so that its try
    # still waits (until 3.0 s) when "late" gives up (at 2.0 s) and the
    # late reply comes; 1 s is its margin on a loaded machine.
    time.sleep(1.0)
    ontime = dns.message.make_query("ontime.fake.test", "A")
    s.sendto(ontime.to_wire(), (dw.addr, dw.port))
    replies = {}
    while len(replies) < 2:
        m = dns.message.from_wire(s.recv(65535))
        replies[m.question[0].name.to_text()] = m
        late_gone.set()  # the first one to come is late's SERVFAIL
    s.close()
    assert replies["late.fake.test."].rcode() == dns.rcode.SERVFAIL
    assert rdata_of(replies["ontime.fake.test."], "A") == {"192.0.2.81"}
    qs = fake_upstream.queries
    assert len(qs) == 2 and qs[0].src == qs[1].src, "the two tries did not share"
    st = dw.stats()
    # The late reply is known by its question; the forgery is not late.
    assert st["upstream_late"] == 1 and st["forged_replies"] == 1, st
    # The late answer did not reach the cache.
    fake_upstream.mode_normal()
    fake_upstream.add("late.fake.test", "A", "192.0.2.82")
    assert rdata_of(dw.query("late.fake.test", timeout=3), "A") == {"192.0.2.82"}


def test_unknown_id_on_a_shared_socket_is_forged(fake_upstream, dnswarden):
    def plan(q):
        forged = fake_upstream.response(q, rdata_override="6.6.6.6")
        forged.id = (q.id + 1) % 65536
        return [Reply(forged), Reply(fake_upstream.response(q), delay=0.2)]
    fake_upstream.handler = plan
    names = add_names(fake_upstream, 10, "forge")
    dw = dnswarden([fake_upstream], timeout_ms=2000)
    got = ask_many(dw, names)
    assert len(got) == 10
    for i, name in enumerate(names):
        assert rdata_of(got[name], "A") == {f"192.0.2.{i + 1}"}, got[name]
    st = dw.stats()
    # An ID one above a real one may be another try's on the same socket:
    # that try then sees a wrong question, which is counted as forged too;
    # it may, rarely, be that of a try already answered: late.
    assert st["forged_replies"] + st["upstream_late"] == 10, st
    assert st["forged_replies"] >= 9, st


def test_refused_port_moves_every_try_on_its_socket(nsd_shared, dnswarden):
    """ICMP port unreachable comes back as an error on the shared socket:
    every try waiting there moves to the next upstream at once, not after
    the timeout."""
    dw = dnswarden([closed_port(), nsd_shared], timeout_ms=5000)
    names = [f"r{i}.example.test" for i in range(30)]
    t = time.monotonic()
    got = ask_many(dw, names, timeout=10)
    elapsed = time.monotonic() - t
    assert len(got) == 30
    for r in got.values():  # NSD's answer: no such names in its zone
        assert r.rcode() == dns.rcode.NXDOMAIN and r.authority, r
    # Not a bound on elapsed time: the counter says whether a try waited
    # for its 5 s timeout.
    st = dw.stats()
    assert st["upstream_timeouts"] == 0, (st, f"{elapsed:.1f} s")


def test_reply_too_large_for_the_buffer_asked_over_tcp(fake_upstream, dnswarden):
    """An upstream that ignores our EDNS size and sends a datagram past
    4096 bytes: the reply cannot be read whole, so it is asked over TCP."""
    big = [f"192.0.2.{i}" for i in range(1, 255)] + \
          [f"198.51.100.{i}" for i in range(1, 100)]
    fake_upstream.add("big.fake.test", "A", big)

    def plan(q):
        if q.transport == "udp":
            return [Reply(fake_upstream.response(q).to_wire(max_size=65535))]
        return [Reply(fake_upstream.response(q))]
    fake_upstream.handler = plan
    dw = dnswarden([fake_upstream], timeout_ms=2000)
    # Over UDP the client gets TC (the answer is over 1232 bytes); its
    # retry over TCP is served whole from the cache, which the reply
    # fetched over TCP filled: no third question upstream.
    r = dw.query("big.fake.test", timeout=5)
    assert r.flags & dns.flags.TC and not r.answer
    r = dw.query("big.fake.test", tcp=True, timeout=5)
    assert rdata_of(r, "A") == set(big)
    transports = [q.transport for q in fake_upstream.queries_for("big.fake.test")]
    assert transports == ["udp", "tcp"], transports
    assert dw.stats()["upstream_tcp"] == 1


def test_oversized_forgery_is_not_taken_for_a_truncated_answer(fake_upstream, dnswarden):
    """A datagram past 4,096 bytes with the right ID but another question
    is a forgery: it neither sends the try to TCP nor stops it waiting."""
    def plan(q):
        if q.transport != "udp":
            return [Reply(fake_upstream.response(q))]
        forged = fake_upstream.forged(q, "wrong_question").data
        wire = forged.to_wire() + bytes(5000)  # past the read buffer
        return [Reply(wire), Reply(fake_upstream.response(q), delay=0.2)]
    fake_upstream.handler = plan
    dw = dnswarden([fake_upstream], timeout_ms=2000)
    r = dw.query("www.fake.test", timeout=5)
    assert rdata_of(r, "A") == {"192.0.2.1"}, r
    st = dw.stats()
    assert st["upstream_tcp"] == 0 and st["forged_replies"] == 1, st
    assert [q.transport for q in fake_upstream.queries] == ["udp"]


def icmp_port_unreachable(src, dst):
    """Send, as the kernel would, an ICMP port unreachable for a UDP
    datagram that went from src to dst ((address, port) on 127.0.0.1)."""
    def csum(b):
        if len(b) % 2:
            b += b"\0"
        t = sum(struct.unpack(f"!{len(b) // 2}H", b))
        t = (t >> 16) + (t & 0xFFFF)
        t += t >> 16
        return ~t & 0xFFFF
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + 32, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + 32, 0, 0x4000, 64, 17, 0,
                     socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    body = ip + udp + bytes(32)
    icmp = struct.pack("!BBHI", 3, 3, 0, 0) + body
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        raw.sendto(icmp, (dst[0], 0))
    finally:
        raw.close()


def test_answer_queued_before_a_socket_error_is_kept(fake_upstream, fake_upstream2,
                                                     dnswarden):
    """Two tries share a socket; the answer to one is queued on it when an
    ICMP port unreachable arrives for it. The kernel reports the error
    before the queued answer: the answer is still taken, and only the try
    still waiting moves on to the next upstream, at once."""
    fake_upstream.add("qa.fake.test", "A", "192.0.2.71")
    fake_upstream2.add("qa.fake.test", "A", "192.0.2.99")
    fake_upstream2.add("qb.fake.test", "A", "192.0.2.72")

    def plan(q):
        if q.qname_lower.startswith("qa."):
            return [Reply(fake_upstream.response(q), delay=0.3)]
        return []  # qb: this upstream never answers
    fake_upstream.handler = plan
    dw = dnswarden([fake_upstream, fake_upstream2], timeout_ms=5000)
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(4)
    for i, name in enumerate(("qa.fake.test", "qb.fake.test")):
        q = dns.message.make_query(name, "A")
        q.id = i + 1
        c.sendto(q.to_wire(), (dw.addr, dw.port))
    qs = fake_upstream.wait_queries(2)
    assert len(qs) == 2 and qs[0].src == qs[1].src, "the tries did not share"
    dw.send_signal(signal.SIGSTOP)
    try:
        fake_upstream.wait_replies_sent(1)  # qa's answer is queued on the stopped daemon
        icmp_port_unreachable(qs[0].src, ("127.0.0.1", fake_upstream.port))
        # Not observable from here: give the kernel a moment to queue the
        # error behind the answer before the daemon runs again.
        time.sleep(0.1)
    finally:
        dw.send_signal(signal.SIGCONT)
    got = {}
    while len(got) < 2:
        m = dns.message.from_wire(c.recv(65535))
        got[m.question[0].name.to_text()] = m
    c.close()
    # No bound on the time: the counters below say whether the try sat
    # out its 5 s timeout (and c's 4 s timeout would fail first).
    assert rdata_of(got["qa.fake.test."], "A") == {"192.0.2.71"}, \
        "the answer queued before the error was thrown away"
    assert rdata_of(got["qb.fake.test."], "A") == {"192.0.2.72"}
    assert not fake_upstream2.queries_for("qa.fake.test")
    st = dw.stats()
    assert st["upstream_errors"] == 1 and st["upstream_timeouts"] == 0, st


def test_out_of_descriptors_every_client_answered_and_said_once(fake_upstream, dnswarden):
    """With no descriptor left for an upstream socket, the try fails at
    once (SERVFAIL with one upstream), the warning is written once a
    second with a count, not once a try, and answers resume as soon as
    sockets close."""
    fake_upstream.mode_delay(0.5)
    names = add_names(fake_upstream, 12, "fd")
    # As root, so that prlimit may lower its limit without CAP_SYS_RESOURCE.
    dw = dnswarden([fake_upstream], {"upstream_queries_per_socket": 1,
                                     "server": {"user": "root"}},
                   timeout_ms=3000)
    pid = dw.proc.pid
    # The harness's start-up probes (TCP connects to the daemon's port)
    # closed first: then the descriptors counted here are the ones the
    # daemon keeps.
    wait_for(lambda: tcp_clients_open(dw.port) == 0,
             "the start-up probes' connections closed in the daemon")
    nfd = len(os.listdir(f"/proc/{pid}/fd"))
    subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={nfd + 2}:{nfd + 2}"],
                   check=True)
    got = ask_many(dw, names)
    assert len(got) == 12, "a client went unanswered"
    ok = [n for n in names if got[n].rcode() == dns.rcode.NOERROR]
    failed = [n for n in names if got[n].rcode() == dns.rcode.SERVFAIL]
    assert len(ok) <= 2 and len(ok) + len(failed) == 12, \
        ({n: dns.rcode.to_text(m.rcode()) for n, m in got.items()}, dw.stderr())
    warned = [line for line in dw.stderr().splitlines()
              if "cannot open a socket to upstream" in line]
    assert len(warned) == 1 and "Too many open files" in warned[0], warned
    assert dw.stats()["upstream_errors"] == len(failed)
    # A second later the sockets are closed again: new names are answered,
    # and a new shortage is said with the count of the ones not said. The
    # sleep is the stimulus: the warning is written at most once a second.
    time.sleep(1.1)
    assert rdata_of(dw.query(failed[0], timeout=3), "A")
    got = ask_many(dw, failed[1:])
    assert len(got) == len(failed) - 1
    again = [n for n in failed[1:] if got[n].rcode() == dns.rcode.SERVFAIL]
    warned = [line for line in dw.stderr().splitlines()
              if "cannot open a socket to upstream" in line]
    assert len(warned) == 2 and f"(and {len(failed) - 1} more times" in warned[1], \
        warned
    assert again, "the second shortage did not happen"

"""A scriptable DNS server for the fault cases NSD cannot produce.

It listens on 127.0.0.1 or ::1 (UDP and TCP, the same random port), records every
query it receives and answers according to a handler the test sets. A handler
takes a Query and returns a plan: a list of steps executed in order, each one
of Reply (a message or raw bytes, optionally after a delay, optionally sent
from a second socket with another source port), Raw (TCP only: bytes written
without the length prefix) and Close (TCP only: close the connection).
Returning an empty list means "never answer".

Ready-made handlers are set with the mode_* methods.
"""

import dataclasses
import os
import random
import select
import socket
import struct
import threading
import time
from typing import Callable, List, Optional, Union

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

ZONE = "fake.test."
FORGED_A = "6.6.6.6"


@dataclasses.dataclass
class Query:
    """One query as the fake upstream received it."""
    wire: bytes
    msg: Optional[dns.message.Message]  # None if it did not parse
    transport: str  # "udp" or "tcp"
    src: tuple  # (address, port) of the sender
    time: float
    conn: Optional[socket.socket] = None  # TCP connection it came on

    @property
    def id(self) -> int:
        return struct.unpack("!H", self.wire[:2])[0] if len(self.wire) >= 2 else -1

    @property
    def qname(self) -> str:
        """The name exactly as sent, with the trailing dot."""
        return self.msg.question[0].name.to_text() if self.msg and self.msg.question else ""

    @property
    def qname_lower(self) -> str:
        return self.qname.lower()

    @property
    def qtype(self) -> str:
        if not self.msg or not self.msg.question:
            return ""
        return dns.rdatatype.to_text(self.msg.question[0].rdtype)

    @property
    def edns(self) -> int:
        """EDNS payload size, or -1 when the query had no OPT record."""
        if not self.msg or self.msg.edns < 0:
            return -1
        return self.msg.payload

    @property
    def do(self) -> bool:
        return bool(self.msg and self.msg.ednsflags & dns.flags.DO)

    @property
    def cd(self) -> bool:
        return bool(self.msg and self.msg.flags & dns.flags.CD)

    def __repr__(self):
        return (f"Query({self.transport} id={self.id} {self.qname} {self.qtype} "
                f"from {self.src[0]}:{self.src[1]})")


@dataclasses.dataclass
class Reply:
    """Send data (a Message, rendered, or raw bytes) after delay seconds.
    other_port: send it over UDP from a different socket (forgery)."""
    data: Union[dns.message.Message, bytes]
    delay: float = 0.0
    other_port: bool = False


@dataclasses.dataclass
class Raw:
    """TCP only: write these bytes as they are (no length prefix)."""
    data: bytes
    delay: float = 0.0


@dataclasses.dataclass
class Close:
    """TCP only: close the connection."""
    delay: float = 0.0


Handler = Callable[[Query], list]


def render(data) -> bytes:
    if isinstance(data, dns.message.Message):
        return data.to_wire(max_size=65535)
    return bytes(data)


class FakeUpstream:
    def __init__(self, addr: str = "127.0.0.1"):
        self.addr = addr
        self.family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        self._lock = threading.Lock()
        self._queries: List[Query] = []
        # Replies written (or tried, when the peer had gone), late ones
        # too, and when (time.monotonic()).
        self.replies_sent = 0
        self.reply_times: List[float] = []
        self._cond = threading.Condition(self._lock)
        self.records = {}  # (name lower with dot, rdtype text) -> (ttl, [rdata text])
        self.handler: Handler = self.answer_plan
        self._stop = threading.Event()
        self._threads = []
        self._bind()
        self.other = socket.socket(self.family, socket.SOCK_DGRAM)
        self.other.bind((addr, 0))
        self.add("www.fake.test", "A", "192.0.2.1")
        self.add("www.fake.test", "AAAA", "2001:db8::1")
        self.add("multi.fake.test", "A", ["192.0.2.11", "192.0.2.12", "192.0.2.13"])
        self.add("fake.test", "SOA", "ns.fake.test. host.fake.test. 1 3600 600 86400 30")

    # --- set-up and tear-down -------------------------------------------

    def _bind(self):
        for _ in range(50):
            u = socket.socket(self.family, socket.SOCK_DGRAM)
            u.bind((self.addr, 0))
            port = u.getsockname()[1]
            t = socket.socket(self.family, socket.SOCK_STREAM)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                t.bind((self.addr, port))
            except OSError:
                u.close()
                t.close()
                continue
            t.listen(64)
            self.udp, self.tcp, self.port = u, t, port
            return
        raise RuntimeError("no free port for the fake upstream")

    @property
    def server(self) -> str:
        """The address as written in dnswarden's upstreams list."""
        if self.family == socket.AF_INET6:
            return f"[{self.addr}]:{self.port}"
        return f"{self.addr}:{self.port}"

    def start(self):
        for target in (self._udp_loop, self._tcp_loop):
            th = threading.Thread(target=target, daemon=True)
            th.start()
            self._threads.append(th)
        return self

    def close(self):
        self._stop.set()
        for th in self._threads:
            th.join(2)
        for s in (self.udp, self.tcp, self.other):
            s.close()

    # --- zone data --------------------------------------------------------

    def add(self, name: str, rdtype: str, rdatas, ttl: int = 300):
        if isinstance(rdatas, str):
            rdatas = [rdatas]
        key = (dns.name.from_text(name).to_text().lower(), rdtype.upper())
        self.records[key] = (ttl, list(rdatas))

    def response(self, q: Query, rdata_override=None) -> dns.message.Message:
        """The correct answer to q from self.records (NXDOMAIN/NODATA with
        the SOA otherwise). rdata_override replaces the A records' data."""
        r = dns.message.make_response(q.msg)
        r.flags |= dns.flags.AA | dns.flags.RA
        qn = q.msg.question[0].name
        key = (qn.to_text().lower(), q.qtype)
        if key in self.records:
            ttl, rdatas = self.records[key]
            if rdata_override is not None:
                rdatas = [rdata_override]
            r.answer.append(dns.rrset.from_text_list(qn, ttl, "IN", q.qtype, rdatas))
            return r
        ttl, soa = self.records[(ZONE, "SOA")]
        r.authority.append(dns.rrset.from_text_list(ZONE, ttl, "IN", "SOA", soa))
        if not any(k[0] == qn.to_text().lower() for k in self.records):
            r.set_rcode(dns.rcode.NXDOMAIN)
        return r

    # --- recorded queries -------------------------------------------------

    @property
    def queries(self) -> List[Query]:
        with self._lock:
            return list(self._queries)

    def queries_for(self, name: str, rdtype: Optional[str] = None) -> List[Query]:
        n = dns.name.from_text(name).to_text().lower()
        return [q for q in self.queries
                if q.qname_lower == n and (rdtype is None or q.qtype == rdtype.upper())]

    def clear(self):
        with self._lock:
            self._queries.clear()

    def wait_queries(self, n: int, timeout: float = 5.0) -> List[Query]:
        """Wait until at least n queries arrived; return them all."""
        end = time.monotonic() + timeout
        with self._cond:
            while len(self._queries) < n:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self._queries)

    def wait_replies_sent(self, n: int, timeout: float = 10.0) -> int:
        """Wait until at least n replies were written (a delayed plan's
        late reply is written when this returns); returns the count."""
        end = time.monotonic() + timeout
        with self._cond:
            while self.replies_sent < n:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.replies_sent} replies sent after "
                                         f"{timeout} s, awaited {n}")
                self._cond.wait(left)
            return self.replies_sent

    def _sent(self):
        with self._cond:
            self.replies_sent += 1
            self.reply_times.append(time.monotonic())
            self._cond.notify_all()

    def _record(self, q: Query):
        with self._cond:
            self._queries.append(q)
            self._cond.notify_all()

    # --- handlers (plans) --------------------------------------------------

    def answer_plan(self, q: Query) -> list:
        return [Reply(self.response(q))]

    def mode_normal(self):
        self.handler = self.answer_plan

    def mode_dead(self):
        """Receive and record, never answer."""
        self.handler = lambda q: []

    def mode_delay(self, seconds: float):
        self.handler = lambda q: [Reply(self.response(q), delay=seconds)]

    def mode_garbage(self, kind: str = "junk"):
        """Answer with bytes that are not a valid reply.
        junk: random bytes; idjunk: the right ID then junk; short: a valid
        reply cut in the middle; badcount: header claiming 5 answers, none
        present; loop: the right ID and question, an answer whose owner is
        a compression pointer to itself."""
        def plan(q: Query):
            full = render(self.response(q))
            rnd = random.Random(q.id)
            if kind == "junk":
                data = bytes(rnd.getrandbits(8) for _ in range(60))
            elif kind == "idjunk":
                data = full[:2] + bytes(rnd.getrandbits(8) for _ in range(60))
            elif kind == "short":
                data = full[: max(13, len(full) // 2)]
            elif kind == "badcount":
                qend = len(q.wire) - _trailer_len(q)
                data = (full[:2] + struct.pack("!HHHHH", 0x8180, 1, 5, 0, 0)
                        + q.wire[12:qend])
            elif kind == "loop":
                qend = len(q.wire) - _trailer_len(q)  # the answer starts here
                data = (full[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)
                        + q.wire[12:qend]
                        + struct.pack("!H", 0xC000 | qend)
                        + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([6, 6, 6, 6]))
            else:
                raise ValueError(kind)
            return [Reply(data)]
        self.handler = plan

    def mode_truncate(self, tcp_plan: Optional[Handler] = None):
        """Over UDP: an empty reply with TC set. Over TCP: tcp_plan(q), by
        default the full answer."""
        def plan(q: Query):
            if q.transport == "udp":
                r = dns.message.make_response(q.msg)
                r.flags |= dns.flags.TC | dns.flags.AA | dns.flags.RA
                return [Reply(r)]
            if tcp_plan:
                return tcp_plan(q)
            return self.answer_plan(q)
        self.handler = plan

    def mode_tcp_close_mid_answer(self):
        """TC over UDP; over TCP the length prefix and half the answer,
        then the connection is closed."""
        def tcp(q: Query):
            full = render(self.response(q))
            return [Raw(struct.pack("!H", len(full)) + full[: len(full) // 2]), Close(0.05)]
        self.mode_truncate(tcp)

    def forged(self, q: Query, kind: str) -> Reply:
        """A forged reply carrying FORGED_A for the asked name."""
        r = self.response(q, rdata_override=FORGED_A)
        if kind == "wrong_id":
            r.id = q.id ^ 0x5A5A
            return Reply(r)
        if kind == "wrong_port":
            return Reply(r, other_port=True)
        if kind == "wrong_question":
            # Same ID and port, but the question names another name; the
            # forged answer is still owned by the asked name.
            qn = q.msg.question[0].name
            other = dns.name.Name((b"forged-" + qn.labels[0],) + qn.labels[1:])
            m = dns.message.Message(id=q.id)
            m.flags = r.flags
            m.question = [dns.rrset.RRset(other, dns.rdataclass.IN, q.msg.question[0].rdtype)]
            m.answer = r.answer
            if q.msg.edns >= 0:
                m.use_edns(0, 0, 1232)
            return Reply(m)
        raise ValueError(kind)

    def mode_forge(self, kinds=("wrong_id", "wrong_port", "wrong_question"),
                   real_delay: float = 0.1):
        """Send the forged replies of the given kinds at once, then the real
        answer after real_delay seconds."""
        def plan(q: Query):
            if q.transport == "tcp":
                return self.answer_plan(q)
            steps = [self.forged(q, k) for k in kinds]
            steps.append(Reply(self.response(q), delay=real_delay))
            return steps
        self.handler = plan

    # --- serving ------------------------------------------------------------

    def _parse(self, wire: bytes, transport: str, src, conn=None) -> Query:
        try:
            msg = dns.message.from_wire(wire)
        except Exception:
            msg = None
        return Query(wire, msg, transport, src, time.monotonic(), conn)

    def _udp_loop(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self.udp], [], [], 0.1)
            if not r:
                continue
            try:
                wire, src = self.udp.recvfrom(65535)
            except OSError:
                continue
            q = self._parse(wire, "udp", src)
            self._record(q)
            if q.msg is None:
                continue
            threading.Thread(target=self._run_udp, args=(q,), daemon=True).start()

    def _run_udp(self, q: Query):
        try:
            steps = self.handler(q)
        except Exception as e:  # a bug in a test's handler: show it
            print(f"fake upstream handler failed: {e!r}")
            return
        for st in steps:
            if st.delay:
                time.sleep(st.delay)
            if self._stop.is_set():
                return
            if isinstance(st, Reply):
                sock = self.other if st.other_port else self.udp
                try:
                    sock.sendto(render(st.data), q.src)
                except OSError:
                    pass
                self._sent()

    def _tcp_loop(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self.tcp], [], [], 0.1)
            if not r:
                continue
            try:
                conn, src = self.tcp.accept()
            except OSError:
                continue
            threading.Thread(target=self._tcp_conn, args=(conn, src), daemon=True).start()

    def _tcp_conn(self, conn: socket.socket, src):
        conn.settimeout(0.2)
        buf = b""
        closed = False
        try:
            while not self._stop.is_set() and not closed:
                try:
                    chunk = conn.recv(65535)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 2 and not closed:
                    n = struct.unpack("!H", buf[:2])[0]
                    if len(buf) < 2 + n:
                        break
                    wire, buf = buf[2:2 + n], buf[2 + n:]
                    q = self._parse(wire, "tcp", src, conn)
                    self._record(q)
                    if q.msg is None:
                        continue
                    closed = self._run_tcp(q, conn)
        finally:
            conn.close()

    def _run_tcp(self, q: Query, conn: socket.socket) -> bool:
        """Execute the plan for q; True if the connection was closed."""
        try:
            steps = self.handler(q)
        except Exception as e:
            print(f"fake upstream handler failed: {e!r}")
            return True
        for st in steps:
            if st.delay:
                time.sleep(st.delay)
            try:
                if isinstance(st, Reply):
                    data = render(st.data)
                    try:
                        conn.sendall(struct.pack("!H", len(data)) + data)
                    finally:
                        self._sent()
                elif isinstance(st, Raw):
                    conn.sendall(st.data)
                elif isinstance(st, Close):
                    return True
            except OSError:
                return True
        return False


def _trailer_len(q: Query) -> int:
    """Bytes after the question in q's wire form (the OPT record etc.)."""
    if not q.msg:
        return 0
    # Question section: the name as sent (uncompressed) + type + class.
    qn = q.msg.question[0].name
    qlen = len(qn.to_wire()) + 4
    return len(q.wire) - 12 - qlen

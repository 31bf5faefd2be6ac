"""Helpers for the end-to-end tests: free ports, an NSD upstream, a dead
upstream, YAML writers and a running dnswarden process.

Every address used here is on the loopback interface, and every server is
one the tests start themselves.
"""

import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Optional

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

REPO = Path(__file__).resolve().parents[2]
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                   "ERROR: ThreadSanitizer", "Sanitizer:DEADLYSIGNAL")


def daemon_binary() -> str:
    return os.environ.get("DNSWARDEN_BIN", str(REPO / "build" / "resolver" / "dnswarden"))


def _resolve_bin() -> str:
    b = Path(daemon_binary())
    if not b.is_absolute():
        b = REPO / b
    return str(b)


# --- waiting ----------------------------------------------------------------

def wait_for(cond, what: str, timeout: float = 10.0, interval: float = 0.02):
    """Poll cond() until it returns a true value, and return that value.
    After timeout seconds fail, saying what was awaited (what may also be a
    function that returns the text, to show the state at the time).

    Tests wait for the event they need (a row written, a reload applied, a
    counter moved), never for a fixed time: a fixed sleep is too short on a
    loaded machine under ASan and wasted on an idle one. The timeout is
    generous because reaching it is a failure, not the normal way out."""
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() >= end:
            text = what() if callable(what) else what
            raise AssertionError(f"waited {timeout} s for {text}")
        time.sleep(interval)


def with_defaults(factory, **defaults):
    """The conftest's dnswarden factory with other defaults for its keyword
    arguments (say timeout_ms=1500: the fake upstream is Python threads,
    and on a loaded machine 300 ms is sometimes not enough for it to
    answer); a test may still pass its own."""
    def start(upstreams, overrides=None, **kw):
        for k, v in defaults.items():
            kw.setdefault(k, v)
        return factory(upstreams, overrides, **kw)
    return start


# --- ports ------------------------------------------------------------------

def _port_free(port: int, ipv6: bool) -> bool:
    fams = [(socket.AF_INET, "127.0.0.1")] + ([(socket.AF_INET6, "::1")] if ipv6 else [])
    socks = []
    try:
        for fam, host in fams:
            for typ in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(fam, typ)
                socks.append(s)
                if fam == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def _below_ephemeral() -> range:
    """The ports from 10000 up to where the kernel's ephemeral ports begin
    (net.ipv4.ip_local_port_range, 32768 by default)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(10000, max(low, 20000))


# A port handed out here is bound by the daemon only later (after the
# configuration is written and ASan has started). It is taken below the
# ephemeral range, where no other socket on the machine gets a port it did
# not ask for: a client's query or the daemon's upstream socket (bound to
# port 0) in a test running beside this one could otherwise take it in
# between. scripts/test.sh runs the tests in parallel processes
# (pytest-xdist): each hands out only the ports that fall to it modulo
# their number, and none twice in a run.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
_PORTS = _below_ephemeral()
_pick = random.SystemRandom()  # not the random module's state: tests seed it
_handed_out = set()


def free_port(ipv6: bool = False) -> int:
    """A port free for UDP and TCP on 127.0.0.1 (and ::1 if ipv6), below
    the ephemeral range, that this run has not handed out before."""
    for _ in range(2000):
        port = _pick.choice(_PORTS)
        if port % _WORKERS != _WORKER or port in _handed_out:
            continue
        if _port_free(port, ipv6):
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port")


class DeadPort:
    """A loopback UDP port bound by a socket that never reads, so queries
    to it time out (no ICMP port unreachable); TCP connects complete into a
    listen backlog that is never accepted."""

    def __init__(self):
        for _ in range(50):
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(("127.0.0.1", 0))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                self.tcp.bind(("127.0.0.1", self.port))
            except OSError:
                self.udp.close()
                self.tcp.close()
                continue
            self.tcp.listen(1)
            self.addr = "127.0.0.1"
            self.server = f"127.0.0.1:{self.port}"
            return
        raise RuntimeError("no free port")

    def received(self) -> int:
        """Number of UDP datagrams waiting unread (consumes them)."""
        n = 0
        while select.select([self.udp], [], [], 0)[0]:
            self.udp.recv(65535)
            n += 1
        return n

    def close(self):
        self.udp.close()
        self.tcp.close()


def closed_port() -> str:
    """A loopback port nobody listens on: UDP gets ICMP port unreachable."""
    return f"127.0.0.1:{free_port()}"


# --- the NSD upstream -------------------------------------------------------

NSD = "/usr/sbin/nsd"
ZONE = "example.test."
ZONE_TTL = 3600
NEG_TTL = 60  # SOA minimum: the negative TTL


def _txt_records(name: str, count: int, size: int, tag: str) -> str:
    lines = []
    for i in range(count):
        s = (f"{tag}{i:03d}-" + "x" * size)[:size]
        lines.append(f'{name} TXT "{s}"')
    return "\n".join(lines)


def zone_text() -> str:
    many_a = "\n".join(f"many A 198.51.100.{i}" for i in range(1, 41))
    return textwrap.dedent(f"""\
        $ORIGIN {ZONE}
        $TTL {ZONE_TTL}
        @ IN SOA ns1 hostmaster 2024010101 3600 600 86400 {NEG_TTL}
        @ NS ns1
        ns1 A 127.0.0.1
        www A 192.0.2.10
        www AAAA 2001:db8::10
        @ MX 10 mail
        @ MX 20 mail2
        mail A 192.0.2.25
        mail2 A 192.0.2.26
        txt TXT "hello world" "second string"
        txt TXT "v=spf1 -all"
        alias CNAME alias2
        alias2 CNAME www
        short 5 A 192.0.2.55
        zero 0 A 192.0.2.56
        onlya A 192.0.2.57
        """) + many_a + "\n" + _txt_records("big900", 7, 100, "b") + "\n" + \
        _txt_records("huge", 30, 100, "h") + "\n"


class Nsd:
    """NSD serving ZONE on 127.0.0.1:port, in the foreground (-d); or, given
    zone and text, that zone (its file's text) instead. minimal=False: with
    the additional records a full answer has (NSD's minimal-responses: no)."""

    def __init__(self, workdir: Path, zone: str = None, text: str = None,
                 minimal: bool = True):
        self.zone = zone or ZONE
        self.text = text
        self.minimal = minimal
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.addr = "127.0.0.1"
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0

    @property
    def server(self) -> str:
        return f"{self.addr}:{self.port}"

    def _write_conf(self):
        d = self.dir
        (d / "example.test.zone").write_text(self.text or zone_text())
        conf = textwrap.dedent(f"""\
            server:
              ip-address: 127.0.0.1@{self.port}
              port: {self.port}
              do-ip4: yes
              do-ip6: no
              username: ""
              chroot: ""
              zonesdir: "{d}"
              pidfile: "{d}/nsd.pid"
              database: ""
              xfrdfile: "{d}/xfrd.state"
              xfrdir: "{d}"
              zonelistfile: "{d}/zone.list"
              cookie-secret-file: "{d}/cookiesecrets.txt"
              logfile: "{d}/nsd.log"
              verbosity: 0
              server-count: 1
              minimal-responses: {"yes" if self.minimal else "no"}
              refuse-any: no
              rrl-ratelimit: 0
              rrl-whitelist-ratelimit: 0
              hide-version: yes
              ipv4-edns-size: 1232
            remote-control:
              control-enable: no
            zone:
              name: "{self.zone}"
              zonefile: "{d}/example.test.zone"
            """)
        (d / "nsd.conf").write_text(conf)

    def start(self, timeout: float = 10.0):
        if not os.access(NSD, os.X_OK):
            raise RuntimeError(f"{NSD} is missing: install the Debian package nsd")
        if not self.port:
            self.port = free_port()
        self._write_conf()
        self.proc = subprocess.Popen([NSD, "-d", "-c", str(self.dir / "nsd.conf")],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "nsd.stderr", "ab"))
        end = time.monotonic() + timeout
        q = dns.message.make_query(self.zone, "SOA")
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nsd exited with {self.proc.returncode}: "
                                   f"{self.log()}")
            try:
                dns.query.udp(q, self.addr, timeout=0.05, port=self.port)
                return self
            except (dns.exception.Timeout, OSError):
                time.sleep(0.02)
        raise RuntimeError(f"nsd did not answer within {timeout} s: {self.log()}")

    def log(self) -> str:
        out = ""
        for f in ("nsd.log", "nsd.stderr"):
            p = self.dir / f
            if p.exists():
                out += p.read_text(errors="replace")
        return out

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Stop NSD; afterwards nothing answers on its port."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # NSD's server child can outlive the parent for a moment: wait until
        # the port no longer answers.
        end = time.monotonic() + 5
        q = dns.message.make_query(self.zone, "SOA")
        while time.monotonic() < end:
            try:
                dns.query.udp(q, self.addr, timeout=0.1, port=self.port)
                time.sleep(0.05)
            except (dns.exception.Timeout, OSError):
                return
        raise RuntimeError("nsd still answers after stop")

    def query(self, name, rdtype="A", tcp=False, edns=None, timeout=2.0):
        return query(self.addr, self.port, name, rdtype, tcp=tcp, edns=edns, timeout=timeout)


# --- DNS client helpers -----------------------------------------------------

def make_query(name, rdtype="A", *, edns=None, id=None, dnssec=False, cd=False, rd=True):
    """A query; edns=None: no OPT record, else the advertised payload."""
    kw = {}
    if edns is not None:
        kw = {"use_edns": 0, "payload": edns}
    q = dns.message.make_query(name, rdtype, want_dnssec=dnssec, **kw)
    if dnssec and edns is None:
        q.use_edns(0, dns.flags.DO, 1232)
    if id is not None:
        q.id = id
    if cd:
        q.flags |= dns.flags.CD
    if not rd:
        q.flags &= ~dns.flags.RD
    return q


def query(addr, port, name, rdtype="A", *, tcp=False, edns=None, id=None, dnssec=False,
          cd=False, rd=True, timeout=3.0):
    q = make_query(name, rdtype, edns=edns, id=id, dnssec=dnssec, cd=cd, rd=rd)
    return query_msg(addr, port, q, tcp=tcp, timeout=timeout)


def blocked(m) -> bool:
    """Blocked by dnswarden: NXDOMAIN with EDE 15 (asked with EDNS)."""
    return m.rcode() == dns.rcode.NXDOMAIN and any(
        o.otype == dns.edns.EDE and o.code == dns.edns.EDECode.BLOCKED
        for o in m.options)


def ask_until_blocked(sock, name, *, change_at, change, timeout, after=200):
    """Ask name/A with EDNS over the connected UDP socket sock without a
    pause, four queries in flight, IDs 1, 2, ...; call change() just before
    query change_at goes out (a reload, a new list: what should block the
    name while queries are in flight). Ends once the answers up to `after`
    queries past the first blocked answer are in, after timeout seconds,
    or when no answer comes for 3 s. Returns (the IDs sent, {ID: answer},
    the first blocked ID or None): the caller checks that none went
    unanswered and that none after the first blocked one was let through."""
    sent, got, first_blocked, qid = set(), {}, None, 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while len(sent) - len(got) < 4 and (first_blocked is None or
                                             qid < first_blocked + after):
            qid += 1
            if qid == change_at:
                change()
            sock.send(make_query(name, "A", id=qid, edns=1232).to_wire())
            sent.add(qid)
        if first_blocked is not None and qid >= first_blocked + after and \
                len(got) == len(sent):
            break
        ready, _, _ = select.select([sock], [], [], 3.0)
        if not ready:
            break
        m = dns.message.from_wire(sock.recv(65535))
        got[m.id] = m
        if blocked(m) and (first_blocked is None or m.id < first_blocked):
            first_blocked = m.id
    return sent, got, first_blocked


class NoAnswer(AssertionError):
    pass


def query_msg(addr, port, q, *, tcp=False, timeout=3.0):
    """Send q, return the parsed reply. Fails (AssertionError) with a clear
    message when no reply comes within timeout or the reply does not match
    the query's ID and question."""
    wire = q.to_wire()
    t0 = time.monotonic()
    if tcp:
        data = send_raw_tcp(addr, port, wire, timeout=timeout)
    else:
        data = send_raw_udp(addr, port, wire, timeout=timeout)
    if data is None:
        raise NoAnswer(f"no answer over {'TCP' if tcp else 'UDP'} from {addr} port {port} "
                       f"within {timeout} s (waited {time.monotonic() - t0:.2f} s) "
                       f"to {q.question[0].to_text()}")
    if len(data) >= 2 and struct.unpack("!H", data[:2])[0] != q.id:
        raise AssertionError(f"reply ID {struct.unpack('!H', data[:2])[0]} to a query with "
                             f"ID {q.id}")
    r = dns.message.from_wire(data)
    assert r.flags & dns.flags.QR, "reply without QR"
    if r.question != q.question:
        raise AssertionError(f"reply question {[x.to_text() for x in r.question]} to a "
                             f"query for {[x.to_text() for x in q.question]}")
    return r


def send_raw_udp(addr, port, data: bytes, timeout=1.0) -> Optional[bytes]:
    """Send one datagram; the first reply, or None if none came in time."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.connect((addr, port))
        s.send(data)
        r, _, _ = select.select([s], [], [], timeout)
        if not r:
            return None
        try:
            return s.recv(65535)
        except ConnectionRefusedError:
            return None


def send_raw_tcp(addr, port, data: bytes, timeout=1.0, frame=True) -> Optional[bytes]:
    """Send data on a new TCP connection (with the 2-byte length prefix if
    frame); the first message back, or None on close/timeout."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect((addr, port))
        s.sendall((struct.pack("!H", len(data)) if frame else b"") + data)
        buf = b""
        try:
            while True:
                if len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                    n = struct.unpack("!H", buf[:2])[0]
                    return buf[2:2 + n]
                chunk = s.recv(65535)
                if not chunk:
                    return None
                buf += chunk
        except (socket.timeout, ConnectionResetError):
            return None


def recv_exactly(sock, n: int) -> Optional[bytes]:
    """n bytes from the stream socket sock, or None if the peer closes it
    first (a timeout or a reset is the caller's to catch)."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def header(wire: bytes) -> dict:
    """The header fields of a DNS message."""
    idn, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", wire[:12])
    return {"id": idn, "qr": bool(flags & 0x8000), "opcode": (flags >> 11) & 0xF,
            "aa": bool(flags & 0x0400), "tc": bool(flags & 0x0200),
            "rd": bool(flags & 0x0100), "ra": bool(flags & 0x0080),
            "rcode": flags & 0xF, "qdcount": qd, "ancount": an, "nscount": ns,
            "arcount": ar}


def rrset_texts(section) -> set:
    """A section as a set of "name ttl-less type rdata" strings, lower case."""
    out = set()
    for rrset in section:
        for rd in rrset:
            out.add(f"{rrset.name.to_text().lower()} {dns.rdatatype.to_text(rrset.rdtype)} "
                    f"{rd.to_text()}")
    return out


def rdata_of(msg, rdtype: str) -> set:
    t = dns.rdatatype.from_text(rdtype)
    return {rd.to_text() for rrset in msg.answer if rrset.rdtype == t for rd in rrset}


def min_ttl(section) -> int:
    return min(rrset.ttl for rrset in section)


# --- YAML ---------------------------------------------------------------------

def _scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a YAML double-quoted scalar


def _flow(v) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k}: {_flow(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    return _scalar(v)


def to_yaml(obj: dict, indent: int = 0) -> str:
    """Block-style YAML for nested dicts; lists of scalars in flow style,
    lists of dicts one "- { ... }" per line."""
    pad = " " * indent
    out = []
    for k, v in obj.items():
        if isinstance(v, dict):
            out.append(f"{pad}{k}:")
            out.append(to_yaml(v, indent + 2).rstrip("\n"))
        elif isinstance(v, (list, tuple)) and v and any(isinstance(x, dict) for x in v):
            out.append(f"{pad}{k}:")
            for x in v:
                if isinstance(x, dict) and any(isinstance(y, (dict, list)) for y in x.values()):
                    first = True
                    for line in to_yaml(x, indent + 4).rstrip("\n").split("\n"):
                        out.append((pad + "  - " + line[indent + 4:]) if first else line)
                        first = False
                else:
                    out.append(f"{pad}  - {_flow(x)}")
        else:
            out.append(f"{pad}{k}: {_flow(v)}")
    return "\n".join(x for x in out if x != "") + "\n"


DELETE = object()  # in overrides: remove this key from the default config


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if v is DELETE:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def write_blocklist(path, categories, allow=None) -> Path:
    """Write a blocklist file. categories: {category: {site name: [domains]}}
    or the raw list of category dicts as in the file format."""
    path = Path(path)
    if isinstance(categories, dict):
        cats = []
        for cname, sites in categories.items():
            cats.append({"name": cname, "description": f"test category {cname}",
                         "sites": [{"name": s, "domains": list(d)} for s, d in sites.items()]})
    else:
        cats = categories
    lines = ["categories:"]
    for c in cats:
        lines.append(f"  - name: {_scalar(c['name'])}")
        if "description" in c:
            lines.append(f"    description: {_scalar(c['description'])}")
        if c.get("sites"):
            lines.append("    sites:")
            for s in c["sites"]:
                lines.append(f"      - name: {_scalar(s['name'])}")
                lines.append(f"        domains: {_flow(s['domains'])}")
        if c.get("import"):
            lines.append("    import:")
            for imp in c["import"]:
                lines.append(f"      - {_flow(imp)}")
    if allow:
        lines.append(f"allow: {_flow(list(allow))}")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o644)
    return path


# --- the daemon ---------------------------------------------------------------

class Dnswarden:
    """A running `dnswarden serve` with helpers to query it."""

    def __init__(self, workdir: Path, upstreams, overrides=None, ipv6=True,
                 timeout_ms=300, blocklists=None, env=None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        # Run as root, the daemon drops to an unprivileged user: it must
        # still be able to read its configuration (on SIGHUP too) and write
        # its database.
        self.dir.chmod(0o755)
        (self.dir / "db").mkdir(exist_ok=True)
        (self.dir / "db").chmod(0o777)
        self.ipv6 = ipv6
        self.port = free_port(ipv6=ipv6)
        self.addr = "127.0.0.1"
        self.addr6 = "::1"
        self.config_path = self.dir / "dnswarden.yaml"
        self.stderr_path = self.dir / "stderr.txt"
        self.database = self.dir / "db" / "attempts.db"
        self.control_socket = self.dir / "control.sock"
        listen = [f"127.0.0.1:{self.port}"] + ([f"[::1]:{self.port}"] if ipv6 else [])
        cfg = {
            "server": {
                "listen": listen,
                "allow_clients": ["127.0.0.0/8", "::1/128"],
                # Each daemon its own: several run at once in the tests.
                "control_socket": str(self.dir / "control.sock"),
            },
            "upstreams": [u if isinstance(u, str) else u.server for u in upstreams],
            "upstream_timeout_ms": timeout_ms,
            "log": {"database": str(self.database)},
        }
        if blocklists is not None:
            cfg["blocklist"] = {"files": [str(b) for b in blocklists]}
        self.config = merge(cfg, overrides or {})
        self.write_config(self.config)
        self.env = dict(os.environ)
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:halt_on_error=1")
        self.env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        self.env.update(env or {})
        self.args = []  # more options for serve, e.g. ["-v"]
        self.proc: Optional[subprocess.Popen] = None
        self.stopped_rc: Optional[int] = None
        self.stopped_by_test = False
        self.killed_by_test = False
        self.exited_unasked: Optional[int] = None

    def write_config(self, cfg: dict = None, text: str = None):
        """Rewrite the configuration file (for SIGHUP tests)."""
        if text is None:
            text = to_yaml(cfg)
        self.config_path.write_text(text)
        self.config_path.chmod(0o644)

    def start(self, timeout: float = 15.0, until_serving: bool = True):
        """Start and wait until it listens and, with until_serving, until it
        says it serves: only then has its attempt-log writer created or
        opened the database (it may take seconds on a loaded machine, and a
        test's first query would time out meanwhile)."""
        binary = _resolve_bin()
        if not os.access(binary, os.X_OK):
            raise RuntimeError(f"dnswarden binary {binary} is missing "
                               "(set DNSWARDEN_BIN or build it)")
        self._err = open(self.stderr_path, "ab")
        since = len(self.stderr())
        self.proc = subprocess.Popen([binary, "serve", *self.args, "-c", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=self._err,
                                     stderr=self._err, env=self.env, cwd=self.dir)
        t0 = time.monotonic()
        self._wait_ready(timeout)
        # A daemon that listened and then refused to serve (say, the attempt
        # log or the central database) has exited: said at once, not after
        # the whole timeout.
        end = t0 + timeout
        while until_serving and " serving, " not in self.stderr()[since:]:
            if self.proc.poll() is not None and " serving, " not in self.stderr()[since:]:
                raise RuntimeError(f"dnswarden exited with {self.proc.returncode} at "
                                   f"start-up:\n{self.stderr()}")
            if time.monotonic() >= end:
                raise RuntimeError(f"dnswarden listened but did not say it serves within "
                                   f"{timeout} s:\n{self.stderr()}")
            time.sleep(0.02)
        return self

    def _listening(self, fam, host) -> bool:
        # TCP: a connect succeeds. UDP: our own bind of the port fails.
        try:
            with socket.create_connection((host, self.port), timeout=0.2):
                pass
        except OSError:
            return False
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s.bind((host, self.port))
            except OSError:
                return True
        return False

    def _control_ready(self) -> bool:
        # Made after the DNS ports: ready when it exists (or is off).
        path = self.config.get("server", {}).get("control_socket")
        return path in (None, "off") or os.path.exists(path)

    def _wait_ready(self, timeout):
        end = time.monotonic() + timeout
        targets = [(socket.AF_INET, self.addr)] + \
            ([(socket.AF_INET6, self.addr6)] if self.ipv6 else [])
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dnswarden exited with {self.proc.returncode} at "
                                   f"start-up:\n{self.stderr()}")
            if all(self._listening(f, h) for f, h in targets) and \
                    self._control_ready():
                return
            time.sleep(0.02)
        raise RuntimeError(f"dnswarden did not listen on port {self.port} within "
                           f"{timeout} s:\n{self.stderr()}")

    # --- querying -------------------------------------------------------

    def query(self, name, rdtype="A", *, tcp=False, edns=None, id=None, dnssec=False,
              cd=False, rd=True, family=4, timeout=3.0) -> dns.message.Message:
        addr = self.addr6 if family == 6 else self.addr
        return query(addr, self.port, name, rdtype, tcp=tcp, edns=edns, id=id,
                     dnssec=dnssec, cd=cd, rd=rd, timeout=timeout)

    def query_msg(self, q, *, tcp=False, family=4, timeout=3.0):
        addr = self.addr6 if family == 6 else self.addr
        return query_msg(addr, self.port, q, tcp=tcp, timeout=timeout)

    def send_raw(self, data: bytes, *, tcp=False, family=4, timeout=1.0, frame=True):
        addr = self.addr6 if family == 6 else self.addr
        if tcp:
            return send_raw_tcp(addr, self.port, data, timeout=timeout, frame=frame)
        return send_raw_udp(addr, self.port, data, timeout=timeout)

    # --- process --------------------------------------------------------

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_stderr(self, text: str, since: int = 0, timeout: float = 5.0) -> bool:
        """Wait until text appears in stderr after character offset since."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.stderr()[since:]:
                return True
            time.sleep(0.05)
        return False

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal the daemon and wait; asserts a clean exit (status 0)."""
        if self.proc is not None and self.proc.poll() is None:
            self.stopped_by_test = True
        rc = self._terminate(sig, timeout)
        assert rc == 0, f"dnswarden exited with status {rc} after {sig!r}:\n{self.stderr()}"
        return rc

    def kill(self, timeout: float = 10.0) -> int:
        """SIGKILL the daemon, as a crash would stop it, and wait for it; the
        teardown then does not count that death as a problem."""
        self.stopped_by_test = True
        self.killed_by_test = True
        self.proc.kill()
        return self.proc.wait(timeout)

    def _terminate(self, sig=signal.SIGTERM, timeout: float = 10.0) -> Optional[int]:
        if self.proc is None:
            return None
        if self.proc.poll() is not None and not self.stopped_by_test:
            self.exited_unasked = self.proc.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.stopped_rc = "timeout"
                return "timeout"
        self.stopped_rc = self.proc.returncode
        return self.proc.returncode

    def ctl(self, *args, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run `dnswarden ctl -c CONFIG ARGS...` against this daemon."""
        return subprocess.run([_resolve_bin(), "ctl", "-c", str(self.config_path),
                               *args], capture_output=True, text=True,
                              timeout=timeout, env=self.env)

    def stats(self, timeout: float = 3.0) -> dict:
        """Send SIGUSR1 and parse the counters printed to stderr after it
        ("name value" pairs, one a line). The daemon prints
        last_reload_success_ms last: its line ends the block (a stand-in
        that never prints it is read once its output stops growing)."""
        import re
        since = len(self.stderr())
        self.send_signal(signal.SIGUSR1)
        end = time.monotonic() + timeout
        out, last = {}, -1
        while time.monotonic() < end:
            text = self.stderr()[since:]
            out = {m.group(1): int(m.group(2)) for m in
                   re.finditer(r"^.*?\b([a-z_]+)[ :=]+(\d+)\s*$", text, re.M)}
            if ("last_reload_success_ms" in out and text.endswith("\n")) or \
                    (out and len(out) == last):
                return out
            last = len(out)
            time.sleep(0.02 if not out else 0.1)
        return out

    def sanitizer_marks(self, since: int = 0) -> list:
        """Sanitizer report marks in stderr after character offset since."""
        err = self.stderr()[since:]
        return [m for m in SANITIZER_MARKS if m in err]

    def problems(self) -> list:
        """What the teardown reports: sanitizer output, crashes, hangs."""
        out = []
        err = self.stderr()
        for mark in SANITIZER_MARKS:
            if mark in err:
                out.append(f"stderr contains {mark!r}")
        rc = self.stopped_rc
        if rc == "timeout":
            out.append("did not exit within 10 s of SIGTERM (killed)")
        elif isinstance(rc, int) and rc < 0 and not (
                self.killed_by_test and rc == -signal.SIGKILL):
            out.append(f"died of signal {-rc}")
        elif self.exited_unasked is not None and self.exited_unasked != 0:
            out.append(f"exited by itself with status {self.exited_unasked}")
        return out

    def close(self):
        self._terminate()
        if getattr(self, "_err", None):
            self._err.close()

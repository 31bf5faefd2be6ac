#!/usr/bin/python3
"""DNS clients for bench/soak.sh, on loopback only.

  soak_client.py wait --port P --name N --rcode R [--timeout S]
      ask P for N/A over UDP until an answer with rcode R comes (start-up)
  soak_client.py check --port P --names FILE
      one query over UDP and one over TCP for a hit, a new name, a blocked
      name and a CNAME into a blocked name; prints JSON, exits 1 on a
      missing or wrong answer
  soak_client.py query --port P [--type T] [--tcp] NAME...
      one query per name in turn; prints each rcode and how long it took
  soak_client.py ask --port P --file FILE [--count N]
      ask again the first N new names of a dnsperf query file (they were
      asked at the start of the run): prints JSON, exits 1 if any is not
      answered NOERROR
  soak_client.py abuse --port P --seconds S --names FILE [...]
      bad packets and misbehaving TCP clients at a fixed rate, plus short
      well-behaved TCP connections whose every answer is checked; prints a
      JSON summary

The abuse sender never waits for the daemon to keep its pace: UDP
datagrams are sent from non-blocking sockets bound to random addresses in
127.0.0.0/8 (some outside the daemon's allow_clients, 127.0.0.0/9 in the
soak configuration), and the replies are counted as they come.
"""

import argparse
import json
import os
import random
import select
import socket
import struct
import sys
import threading
import time

RCODES = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3,
          "NOTIMP": 4, "REFUSED": 5}
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16,
         "AAAA": 28, "SRV": 33, "OPT": 41, "IXFR": 251, "AXFR": 252,
         "ANY": 255, "HTTPS": 65, "CAA": 257}


# ---- wire format ----

def wire_name(name):
    out = b""
    for lb in name.rstrip(".").split("."):
        out += bytes([len(lb)]) + lb.encode()
    return out + b"\0"


def header(qid, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def opt_rr(version=0, payload=1232, do=False, options=b"", owner=b"\0"):
    ttl = (version << 16) | (0x8000 if do else 0)
    return owner + struct.pack("!HHIH", 41, payload, ttl, len(options)) + \
        options


def query(name, qtype="A", qid=None, edns=False):
    qid = random.getrandbits(16) if qid is None else qid
    q = header(qid, ar=1 if edns else 0) + wire_name(name) + \
        struct.pack("!HH", TYPES[qtype], 1)
    return (q + opt_rr()) if edns else q


def rcode_of(msg):
    return msg[3] & 0x0F if len(msg) >= 4 else -1


def udp_ask(port, wire, timeout):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", port))
        s.settimeout(timeout)
        s.send(wire)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                r = s.recv(65535)
            except (socket.timeout, ConnectionRefusedError):
                return None
            if r[:2] == wire[:2]:
                return r
        return None


def tcp_read_msg(s, buf=b""):
    """One length-prefixed message from s; (msg, rest) or (None, rest)."""
    while True:
        if len(buf) >= 2:
            n = struct.unpack("!H", buf[:2])[0]
            if len(buf) >= 2 + n:
                return buf[2:2 + n], buf[2 + n:]
        chunk = s.recv(65535)
        if not chunk:
            return None, buf
        buf += chunk


def tcp_ask(port, wire, timeout):
    try:
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=timeout) as s:
            s.sendall(struct.pack("!H", len(wire)) + wire)
            msg, _ = tcp_read_msg(s)
            return msg
    except OSError:
        return None


# ---- wait, check ----

def cmd_wait(a):
    end = time.monotonic() + a.timeout
    want = RCODES[a.rcode]
    while time.monotonic() < end:
        r = udp_ask(a.port, query(a.name), 0.2)
        if r is not None and rcode_of(r) == want:
            return 0
        time.sleep(0.1)
    print("no %s answer for %s from port %d within %d s" %
          (a.rcode, a.name, a.port, a.timeout), file=sys.stderr)
    return 1


def cmd_check(a):
    names = json.load(open(a.names))
    fresh = "final-%d.%s" % (random.getrandbits(32), names["zone"])
    cases = [("hit", names["hit"], "A", "NOERROR"),
             ("miss", fresh, "AAAA", "NOERROR"),
             ("blocked", names["blocked"][0], "A", "NXDOMAIN"),
             ("cname", names["cname"], "A", "NXDOMAIN")]
    out, ok = {}, True
    for kind, name, qtype, want in cases:
        for proto in ("udp", "tcp"):
            wire = query(name, qtype, edns=(proto == "tcp"))
            r = (udp_ask if proto == "udp" else tcp_ask)(a.port, wire, 3.0)
            got = "none" if r is None else \
                {v: k for k, v in RCODES.items()}.get(rcode_of(r), "other")
            out["%s_%s" % (kind, proto)] = got
            ok = ok and got == want
    out["ok"] = ok
    print(json.dumps(out))
    return 0 if ok else 1


def cmd_query(a):
    """One query per name, one after the other; rcode and time of each."""
    out = []
    for name in a.name:
        wire = query(name, a.type, edns=a.tcp)
        t0 = time.monotonic()
        r = (tcp_ask if a.tcp else udp_ask)(a.port, wire, a.timeout)
        got = "none" if r is None else \
            {v: k for k, v in RCODES.items()}.get(rcode_of(r), "other")
        out.append({"name": name, "rcode": got,
                    "seconds": round(time.monotonic() - t0, 3)})
    print(json.dumps(out))
    return 0


def cmd_ask(a):
    """Ask again the first COUNT new (miss) names of a dnsperf file."""
    asked = answered = 0
    with open(a.file) as f:
        for line in f:
            name, qtype = line.split()
            lead = name.split("-", 1)[0]
            if not (lead[:1] == "m" and lead[1:].isdigit() and
                    name.count(".") == 2):
                continue
            asked += 1
            r = udp_ask(a.port, query(name, qtype), 3.0)
            answered += r is not None and rcode_of(r) == 0
            if asked == a.count:
                break
    print(json.dumps({"asked": asked, "answered": answered}))
    return 0 if asked == answered == a.count else 1


# ---- abuse ----

def bad_udp_packets(rng, names):
    """(kind, bytes) makers of malformed or unwelcome queries."""
    blocked = names["blocked"]
    hit = names["hit"]

    def valid(qtype="A"):
        return query(rng.choice([hit, rng.choice(blocked)]), qtype)

    def flipped():
        b = bytearray(valid(rng.choice(["A", "AAAA", "TXT"])))
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)

    qid = lambda: rng.getrandbits(16)
    tail = struct.pack("!HH", 1, 1)
    return [
        ("short", lambda: os.urandom(rng.randint(0, 11))),
        ("garbage", lambda: os.urandom(rng.randint(12, 512))),
        ("garbage_big", lambda: os.urandom(rng.randint(1500, 4000))),
        ("qr_set", lambda: header(qid(), 0x8180) + wire_name(hit) + tail),
        ("ptr_loop", lambda: header(qid()) + b"\xc0\x0c" + tail),
        ("ptr_chain", lambda: header(qid()) + b"\x01a\xc0\x0e\xc0\x0c" +
         tail),
        ("ptr_out", lambda: header(qid()) + b"\x01a\xc0\xff" + tail),
        ("ext_label", lambda: header(qid()) + b"\x41abc\x00" + tail),
        ("long_name", lambda: header(qid()) +
         (b"\x3f" + b"a" * 63) * 5 + b"\0" + tail),
        ("no_question", lambda: header(qid(), qd=0)),
        ("two_questions", lambda: header(qid(), qd=2) + wire_name(hit) +
         tail + wire_name(hit) + tail),
        ("cut_question", lambda: header(qid()) + wire_name(hit)[:-3]),
        ("no_type", lambda: header(qid()) + wire_name(hit)),
        ("opcode_status", lambda: header(qid(), 0x1100) + wire_name(hit) +
         tail),
        ("opcode_update", lambda: header(qid(), 0x2800) + wire_name(hit) +
         tail),
        ("axfr", lambda: query(hit, "AXFR")),
        ("ixfr", lambda: query(hit, "IXFR")),
        ("any", lambda: query(hit, "ANY")),
        ("class_ch", lambda: header(qid()) + wire_name("version.bind") +
         struct.pack("!HH", 16, 3)),
        ("answer_in_query", lambda: header(qid(), an=1) + wire_name(hit) +
         tail),
        ("edns_v1", lambda: header(qid(), ar=1) + wire_name(hit) + tail +
         opt_rr(version=1)),
        ("two_opt", lambda: header(qid(), ar=2) + wire_name(hit) + tail +
         opt_rr() + opt_rr()),
        ("opt_owner", lambda: header(qid(), ar=1) + wire_name(hit) + tail +
         opt_rr(owner=wire_name("x.y"))),
        ("opt_len_over", lambda: header(qid(), ar=1) + wire_name(hit) +
         tail + b"\0" + struct.pack("!HHIH", 41, 1232, 0, 40) +
         b"\x00\x0a\x00\x08abc"),
        ("opt_option_over", lambda: header(qid(), ar=1) + wire_name(hit) +
         tail + opt_rr(options=b"\x00\x0a\x01\x00abcd")),
        ("ar_count_lies", lambda: header(qid(), ar=3) + wire_name(hit) +
         tail),
        ("trailing", lambda: valid() + os.urandom(rng.randint(1, 64))),
        ("bitflip", flipped),
    ]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = {}

    def add(self, key, n=1):
        with self.lock:
            self.c[key] = self.c.get(key, 0) + n


def random_src(rng, inside):
    """An address in 127.0.0.0/9 (inside) or 127.128.0.0/9 (outside)."""
    b = rng.randrange(1, 128) if inside else rng.randrange(128, 256)
    return "127.%d.%d.%d" % (b, rng.randrange(256), rng.randrange(1, 255))


def udp_abuse(a, names, st, stop):
    rng = random.Random(a.seed)
    makers = bad_udp_packets(rng, names)
    socks = []
    for i in range(a.sources):
        inside = i % 4 != 0		# a quarter outside allow_clients
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        s.bind((random_src(rng, inside), 0))
        socks.append((s, inside))
    dst = ("127.0.0.1", a.port)
    per_tick = max(1, a.udp_rate // 100)
    t = time.monotonic()
    while not stop.is_set():
        for _ in range(per_tick):
            s, inside = rng.choice(socks)
            if not inside and rng.random() < 0.5:
                kind, pkt = "refused_valid", query(names["hit"])
            else:
                kind, mk = rng.choice(makers)
                pkt = mk()
            try:
                s.sendto(pkt, dst)
                st.add("udp_sent")
                st.add("udp_kind_" + kind)
            except (BlockingIOError, ConnectionRefusedError):
                st.add("udp_send_blocked")
            except OSError:
                st.add("udp_send_error")
        drain(socks, st)
        t += 0.01
        d = t - time.monotonic()
        if d > 0:
            time.sleep(d)
        elif d < -1:
            t = time.monotonic()	# fell behind: do not burst
    time.sleep(0.5)
    drain(socks, st)
    for s, _ in socks:
        s.close()


def drain(socks, st):
    inside_of = dict(socks)
    ready, _, _ = select.select(list(inside_of), [], [], 0)
    for s in ready:
        inside = inside_of[s]
        while True:
            try:
                r = s.recv(65535)
            except (BlockingIOError, ConnectionRefusedError):
                break
            st.add("udp_replies")
            if not inside:
                st.add("udp_replies_outside")
                if rcode_of(r) == RCODES["REFUSED"]:
                    st.add("udp_refused")


def tcp_connect(port, timeout=2.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return s


def tcp_bad_one(a, rng, names, stalls, st):
    """One misbehaving TCP connection."""
    hit = names["hit"]
    blocked = names["blocked"]
    kind = rng.choice(["huge_len", "huge_len_stall", "half_stall",
                       "len_only_stall", "zero_len", "garbage", "short_len",
                       "pipeline_rst", "half_close", "bad_frames"])
    st.add("tcp_kind_" + kind)
    try:
        s = tcp_connect(a.port)
    except OSError:
        st.add("tcp_connect_failed")
        return
    try:
        q = query(hit)
        if kind == "huge_len":
            s.sendall(b"\xff\xff" + os.urandom(rng.randint(1, 300)))
        elif kind == "huge_len_stall":
            s.sendall(b"\xff\xff" + q)
        elif kind == "half_stall":
            s.sendall(struct.pack("!H", len(q)) + q[:len(q) // 2])
        elif kind == "len_only_stall":
            s.sendall(b"\x00")
        elif kind == "zero_len":
            s.sendall(b"\x00\x00" * rng.randint(1, 5))
        elif kind == "garbage":
            s.sendall(os.urandom(rng.randint(1, 600)))
        elif kind == "short_len":
            s.sendall(struct.pack("!H", len(q) - 7) + q + q)
        elif kind == "bad_frames":
            for _, mk in rng.sample(bad_udp_packets(rng, names), 5):
                p = mk()[:65535]
                s.sendall(struct.pack("!H", len(p)) + p)
        elif kind == "pipeline_rst":
            for _ in range(10):
                p = query(rng.choice([hit, rng.choice(blocked)]))
                s.sendall(struct.pack("!H", len(p)) + p)
            # Reset at once, before the answers come back.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
        elif kind == "half_close":
            sent = []
            qid = rng.getrandbits(16)
            for i in range(3):
                p = query(rng.choice([hit, rng.choice(blocked)]),
                          qid=(qid + i) & 0xFFFF)
                sent.append(p[:2])
                s.sendall(struct.pack("!H", len(p)) + p)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(5)
            buf, got = b"", 0
            for _ in range(3):
                msg, buf = tcp_read_msg(s, buf)
                if msg is None:
                    break
                got += msg[:2] in sent
            st.add("tcp_half_close_queries", 3)
            st.add("tcp_half_close_answered", got)
        if kind.endswith("_stall") and len(stalls) < a.max_stalls:
            stalls.append((s, time.monotonic()))
            st.add("tcp_stalled")
            return
    except OSError:
        st.add("tcp_send_error")
    s.close()


def stalls_reap(stalls, st, limit_s, final=False):
    """Connections the daemon closed, and those it kept too long."""
    now = time.monotonic()
    if stalls:
        ready, _, _ = select.select([s for s, _ in stalls], [], [], 0)
    else:
        ready = []
    keep = []
    for s, t0 in stalls:
        if s in ready:
            try:
                closed = s.recv(4096) == b""
            except OSError:
                closed = True
            if closed:
                st.add("tcp_stall_closed")
                held = now - t0
                st.add("tcp_stall_held_ms_sum", int(held * 1000))
                with st.lock:
                    st.c["tcp_stall_held_ms_max"] = max(
                        st.c.get("tcp_stall_held_ms_max", 0),
                        int(held * 1000))
                s.close()
                continue
        if now - t0 > limit_s or final:
            st.add("tcp_stall_not_closed")
            s.close()
            continue
        keep.append((s, t0))
    stalls[:] = keep


def tcp_abuse(a, names, st, stop):
    rng = random.Random(a.seed + 1)
    stalls = []
    limit = a.idle_timeout_ms / 1000 + 3
    t = time.monotonic()
    while not stop.is_set():
        tcp_bad_one(a, rng, names, stalls, st)
        stalls_reap(stalls, st, limit)
        t += 1 / a.tcp_rate
        d = t - time.monotonic()
        if d > 0:
            time.sleep(d)
        elif d < -1:
            t = time.monotonic()
    end = time.monotonic() + limit
    while stalls and time.monotonic() < end:
        stalls_reap(stalls, st, limit)
        time.sleep(0.1)
    stalls_reap(stalls, st, limit, final=True)


def tcp_good(a, names, st, stop):
    """Short connections with a few pipelined queries: all answered."""
    rng = random.Random(a.seed + 2)
    zone = names["zone"]
    t = time.monotonic()
    n = 0
    while not stop.is_set():
        want = {}
        # Distinct IDs within the connection: answers are matched by ID.
        qid = rng.getrandbits(16)
        try:
            s = tcp_connect(a.port, timeout=5)
            s.settimeout(5)
            out = b""
            for i in range(a.pipeline):
                r = rng.random()
                n += 1
                if r < 0.4:
                    name, rc = rng.choice(names["hits"]), 0
                elif r < 0.7:
                    name, rc = "g%d-%d.%s" % (a.seed, n, zone), 0
                else:
                    name, rc = rng.choice(names["blocked"]), 3
                p = query(name, rng.choice(["A", "AAAA"]),
                          qid=(qid + i) & 0xFFFF, edns=rng.random() < 0.5)
                want[p[:2]] = rc
                out += struct.pack("!H", len(p)) + p
            s.sendall(out)
            st.add("tcp_good_queries", len(want))
            buf = b""
            while want:
                msg, buf = tcp_read_msg(s, buf)
                if msg is None:
                    break
                rc = want.pop(msg[:2], None)
                if rc is None:
                    st.add("tcp_good_unexpected")
                    continue
                st.add("tcp_good_answered")
                if rcode_of(msg) != rc:
                    st.add("tcp_good_wrong_rcode")
                    st.add("tcp_good_rcode_%d" % rcode_of(msg))
            s.close()
        except OSError as e:
            st.add("tcp_good_error_" + type(e).__name__)
        st.add("tcp_good_unanswered", len(want))
        t += 1 / a.good_rate
        d = t - time.monotonic()
        if d > 0:
            time.sleep(d)
        elif d < -1:
            t = time.monotonic()


def cmd_abuse(a):
    names = json.load(open(a.names))
    st = Stats()
    stop = threading.Event()
    threads = [threading.Thread(target=f, args=(a, names, st, stop))
               for f in (udp_abuse, tcp_abuse, tcp_good)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    time.sleep(a.seconds)
    stop.set()
    for th in threads:
        th.join()
    st.c["seconds"] = round(time.monotonic() - t0, 1)
    st.c["udp_rate_achieved"] = round(st.c.get("udp_sent", 0) / a.seconds)
    print(json.dumps(dict(sorted(st.c.items()))))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait")
    w.add_argument("--port", type=int, required=True)
    w.add_argument("--name", required=True)
    w.add_argument("--rcode", default="NOERROR", choices=RCODES)
    w.add_argument("--timeout", type=float, default=60)
    c = sub.add_parser("check")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--names", required=True)
    y = sub.add_parser("query")
    y.add_argument("--port", type=int, required=True)
    y.add_argument("--type", default="A", choices=TYPES)
    y.add_argument("--tcp", action="store_true")
    y.add_argument("--timeout", type=float, default=10)
    y.add_argument("name", nargs="+")
    k = sub.add_parser("ask")
    k.add_argument("--port", type=int, required=True)
    k.add_argument("--file", required=True)
    k.add_argument("--count", type=int, default=20)
    b = sub.add_parser("abuse")
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--names", required=True)
    b.add_argument("--seconds", type=float, required=True)
    b.add_argument("--udp-rate", type=int, default=1500,
                   help="bad UDP datagrams a second")
    b.add_argument("--tcp-rate", type=float, default=20,
                   help="misbehaving TCP connections a second")
    b.add_argument("--good-rate", type=float, default=20,
                   help="well-behaved TCP connections a second")
    b.add_argument("--pipeline", type=int, default=5,
                   help="queries per well-behaved TCP connection")
    b.add_argument("--max-stalls", type=int, default=40,
                   help="stalled TCP connections held at once")
    b.add_argument("--idle-timeout-ms", type=int, default=3000,
                   help="the daemon's tcp_idle_timeout_ms")
    b.add_argument("--sources", type=int, default=64,
                   help="UDP source addresses")
    b.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    return {"wait": cmd_wait, "check": cmd_check, "ask": cmd_ask,
            "query": cmd_query,
            "abuse": cmd_abuse}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Write the seed corpora of the fuzz targets into tests/fuzz/corpus/.

Run from anywhere: ./tests/fuzz/make-seeds.py. Deterministic, so the files
only change when this script does; needs python3-dnspython. The seeds are
small valid (and a few deliberately broken) inputs that reach each branch
of the code under test quickly; the fuzzer mutates from there. Files
named by their SHA-1 were added by "scripts/fuzz.sh --merge" from long
runs and are left alone.
"""
import os
import struct
import sys

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def query(qname, qtype="A", edns=-1, do=False, flags=dns.flags.RD,
          qid=0x1234, payload=1232):
    m = dns.message.make_query(qname, qtype, use_edns=edns, want_dnssec=do,
                               payload=payload)
    m.id = qid
    m.flags = flags
    return m.to_wire()


def long_name(total=255, label=63, suffix="example.com."):
    """A name as close to 255 wire bytes as the labels allow."""
    labels = []
    base = dns.name.from_text(suffix)
    while True:
        n = dns.name.Name(labels + list(base.labels))
        if len(n.to_wire()) + label + 1 > total:
            rest = total - len(n.to_wire()) - 1
            if rest > 0:
                labels.append(b"b" * rest)
            break
        labels.append(b"a" * label)
    return dns.name.Name(labels + list(base.labels))


def queries():
    t = "query"
    write(t, "a-plain", query("www.dnswarden.test.", edns=-1))
    write(t, "aaaa-edns-do", query("Mixed.Case.Test.", "AAAA", edns=0,
                                   do=True))
    write(t, "blocked", query("www.Example.COM.", edns=0))
    write(t, "blocked-noedns", query("example.com.", "MX"))
    write(t, "blocked-wildcard", query("a.b.wild.example.", edns=0))
    write(t, "allowed", query("ok.example.com.", edns=0))
    write(t, "deep-rule", query("z.a.b.c.d.example.", edns=0))
    write(t, "root-ns", query(".", "NS", edns=0))
    write(t, "long-name", query(long_name(), "TXT"))
    write(t, "long-name-blocked", query(long_name(), "A", edns=0))
    write(t, "any", query("example.net.", "ANY", edns=0, payload=4096))
    write(t, "axfr", query("example.net.", "AXFR"))
    write(t, "ixfr", query("example.net.", "IXFR", edns=0))
    write(t, "edns-small", query("small.test.", edns=0, payload=100))
    write(t, "cd-ad", query("dnssec.test.", edns=0, do=True,
                            flags=dns.flags.RD | dns.flags.CD |
                            dns.flags.AD))
    m = dns.message.make_query("v1.test.", "A", use_edns=1)
    write(t, "edns-v1", m.to_wire())
    m = dns.message.make_query("notify.test.", "SOA")
    m.set_opcode(dns.opcode.NOTIFY)
    write(t, "opcode-notify", m.to_wire())
    m = dns.message.make_query("ede.test.", "A", use_edns=0, options=[
        dns.edns.GenericOption(10, b"\x01" * 8)])		# cookie
    write(t, "edns-cookie", m.to_wire())
    # Client and an RFC 9018 server cookie; a length RFC 7873 refuses.
    m = dns.message.make_query("cookie.test.", "A", use_edns=0, options=[
        dns.edns.GenericOption(10, bytes.fromhex(
            "2464c4abcf10c957010000005cf79f111f8130c3eee29480"))])
    write(t, "edns-cookie-server", m.to_wire())
    m = dns.message.make_query("cookie.test.", "A", use_edns=0, options=[
        dns.edns.GenericOption(10, b"\x02" * 12)])
    write(t, "edns-cookie-badlen", m.to_wire())
    base = query("two-opt.test.", edns=0)
    opt = base[-11:]
    two = bytearray(base + opt)
    two[11] = 2
    write(t, "two-opt", bytes(two))
    # An additional record whose owner is a pointer to the question.
    q = bytearray(query("ptr.test."))
    q[11] = 1
    q += b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + b"\x7f\0\0\1"
    write(t, "additional-ptr", bytes(q))
    write(t, "response-bit", query("qr.test.", flags=dns.flags.QR))
    q = bytearray(query("nq.test."))
    q[5] = 0
    write(t, "qdcount-0", bytes(q))
    q = bytearray(query("two.test."))
    q[5] = 2
    write(t, "qdcount-2", bytes(q))
    write(t, "header-only", query("x.test.")[:12])
    write(t, "cut-question", query("cut.test.")[:17])
    write(t, "compressed-question",
          bytes.fromhex("abcd01000001000000000000c00c00010001"))
    write(t, "binary-label", bytes.fromhex("beef010000010000000000000461"
                                           "2e62ff076578616d706c6503636f"
                                           "6d0000010001"))


def reply(qname, qtype, answers=(), authority=(), additional=(),
          rcode=dns.rcode.NOERROR, edns=-1, do=False, flags=None):
    q = dns.message.make_query(qname, qtype)
    r = dns.message.make_response(q)
    r.id = 0x0501		# bits for fuzz_reply: client EDNS, 5 s later
    r.set_rcode(rcode)
    if flags is not None:
        r.flags = flags
    if edns >= 0:
        r.use_edns(edns, dns.flags.DO if do else 0, 1232)
    for sec, rrs in ((r.answer, answers), (r.authority, authority),
                     (r.additional, additional)):
        for text in rrs:
            name, ttl, rtype, *rdata = text.split(None, 3)
            rrset = dns.rrset.from_text(name, int(ttl), "IN", rtype,
                                        *rdata)
            sec.append(rrset)
    return r.to_wire(max_size=65535)


SOA = "example.net. 900 SOA ns.example.net. host.example.net. 1 2 3 4 300"


def replies():
    t = "reply"
    write(t, "a", reply("www.example.net.", "A",
                        ["www.example.net. 300 A 192.0.2.1"]))
    write(t, "a-edns", reply("www.example.net.", "A",
                             ["www.example.net. 300 A 192.0.2.1",
                              "www.example.net. 300 A 192.0.2.2"],
                             edns=0, do=True))
    write(t, "cname-chain", reply(
        "a.example.net.", "A",
        ["a.example.net. 60 CNAME b.example.net.",
         "b.example.net. 60 CNAME c.Example.COM.",
         "c.example.com. 30 A 192.0.2.3"], edns=0))
    write(t, "dname", reply(
        "x.sub.example.net.", "A",
        ["sub.example.net. 60 DNAME other.example.",
         "x.sub.example.net. 60 CNAME x.other.example.",
         "x.other.example. 60 A 192.0.2.4"]))
    write(t, "cname-chain-70", reply(
        "long.example.net.", "A",
        ["%s 60 CNAME h%d.example.net." % (
            "long.example.net." if i == 0 else "h%d.example.net." % (i - 1), i)
         for i in range(70)] + ["h69.example.net. 60 A 192.0.2.9"]))
    write(t, "https-svcb-srv", reply(
        "svc.example.net.", "HTTPS",
        ["svc.example.net. 300 HTTPS 1 www.other.example. alpn=h2 "
         "ipv4hint=192.0.2.10",
         "svc.example.net. 300 SVCB 0 alias.other.example.",
         "svc.example.net. 300 SRV 0 0 443 srv.other.example."], edns=0))
    write(t, "nxdomain-soa", reply("nx.example.net.", "A", [], [SOA],
                                   rcode=dns.rcode.NXDOMAIN, edns=0))
    write(t, "nodata-soa", reply("www.example.net.", "AAAA", [], [SOA]))
    write(t, "nxdomain-nosoa", reply("nx.example.net.", "A",
                                     rcode=dns.rcode.NXDOMAIN))
    write(t, "servfail", reply("sf.example.net.", "A",
                               rcode=dns.rcode.SERVFAIL, edns=0))
    write(t, "ttl-huge", reply("t.example.net.", "A",
                               ["t.example.net. 4294967295 A 192.0.2.5",
                                "t.example.net. 2147483648 A 192.0.2.6"]))
    write(t, "ttl-zero", reply("z.example.net.", "A",
                               ["z.example.net. 0 A 192.0.2.7"]))
    write(t, "mx-additional", reply(
        "example.net.", "MX", ["example.net. 3600 MX 10 mail.example.net."],
        ["example.net. 3600 NS ns.example.net."],
        ["mail.example.net. 3600 A 192.0.2.8",
         "mail.example.net. 3600 AAAA 2001:db8::8"], edns=0))
    many = ["big.example.net. 300 A 192.0.%d.%d" % (i // 200, i % 200 + 1)
            for i in range(100)]
    write(t, "big-udp", reply("big.example.net.", "A", many, edns=0))
    # An ID whose bits ask for a client without EDNS, later than max_ttl.
    r = bytearray(reply("big.example.net.", "A", many[:40]))
    r[0:2] = b"\xff\x00"
    write(t, "big-noedns", bytes(r))
    r = bytearray(reply("tc.example.net.", "A",
                        ["tc.example.net. 300 A 192.0.2.9"]))
    r[2] |= 0x02
    write(t, "truncated", bytes(r[:40]))
    # OPT first in the additional section, another record after it.
    r = bytearray(reply("opt.example.net.", "A",
                        ["opt.example.net. 300 A 192.0.2.10"], edns=0))
    extra = (b"\x03opt\x07example\x03net\x00" + struct.pack(
        ">HHIH", 16, 1, 300, 4) + b"\x03abc")
    r[11] += 1
    write(t, "opt-not-last", bytes(r) + extra)
    # The same with the record after OPT pointing at the question.
    r2 = bytearray(reply("opt.example.net.", "A",
                         ["opt.example.net. 300 A 192.0.2.10"], edns=0))
    r2[11] += 1
    write(t, "opt-not-last-ptr", bytes(r2) + b"\xc0\x0c" + struct.pack(
        ">HHIH", 16, 1, 300, 4) + b"\x03abc")
    write(t, "trailing-bytes", reply("www.example.net.", "A",
                                     ["www.example.net. 300 A 192.0.2.1"])
          + b"\0\0\0")
    write(t, "rrsig", reply(
        "s.example.net.", "A",
        ["s.example.net. 300 A 192.0.2.11",
         "s.example.net. 300 RRSIG A 13 3 300 20300101000000 "
         "20200101000000 12345 example.net. "
         "dGVzdHNpZ25hdHVyZXRlc3RzaWduYXR1cmU="], edns=0, do=True))
    write(t, "formerr-short", bytes.fromhex("0501818000010000000000"))


def configs():
    t = "config"
    for src, name in (("config/dnswarden.yaml", "shipped"),
                      ("config/testdata/full.yaml", "full")):
        with open(os.path.join(ROOT, src), "rb") as f:
            write(t, name, f.read())
    with open(os.path.join(ROOT, "config/testdata/resolv.conf")) as f:
        resolv = f.read()
    write(t, "system-resolv", "upstreams: [system]\n#%resolv.conf\n" + resolv)
    write(t, "system-empty", "upstreams: [system]\n#%resolv.conf\n"
          "# nothing\nsearch example\n")
    write(t, "minimal", "upstreams: [\"192.0.2.1\"]\n")
    write(t, "loop", "server: {listen: [\"0.0.0.0:53\"]}\n"
          "upstreams: [\"127.0.0.1\"]\n")
    write(t, "anchors", "x: &a [\"192.0.2.1\", \"[2001:db8::1]:5353\"]\n"
          "upstreams: *a\ncache: {max_ttl: 0, max_entries: 4294967295}\n")
    write(t, "errors", "server:\n  listen: 53\n  threads: -1\n"
          "  user: [a]\nupstreams: [\"300.1.1.1\", \"[::1\"]\nbogus: 1\n"
          "server: {}\n")
    write(t, "two-docs", "upstreams: [\"192.0.2.1\"]\n---\nlog: {}\n")
    write(t, "syntax", "server: {listen: [\"127.0.0.1\"\n  x: 'y\n")
    write(t, "pseudonym", "upstreams: [\"192.0.2.1\"]\nlog:\n"
          "  client_identity: pseudonym\n  pseudonym_key: short\n"
          "  database: off\nclients:\n"
          "  - {network: \"10.0.0.0/8\", name: \"x\\ny\"}\n"
          "  - {network: \"10.1.2.3/8\", name: host}\n")


def blocklists():
    t = "blocklist"
    tdir = os.path.join(ROOT, "blocklist/testdata")
    for name in sorted(os.listdir(tdir)):
        if name.endswith(".yaml") and name != "imports.yaml":
            with open(os.path.join(tdir, name), "rb") as f:
                write(t, name[:-5], f.read())
    with open(os.path.join(ROOT, "blocklist/sample-sites.yaml"), "rb") as f:
        write(t, "sample-sites", f.read())
    for fmt in ("hosts", "domains"):
        with open(os.path.join(tdir, "lists/%s-list.txt" % fmt), "rb") as f:
            listed = f.read()
        write(t, "import-" + fmt,
              ("categories:\n  - name: imported\n    import:\n"
               "      - {file: list.txt, format: %s}\n#%%list\n"
               % fmt).encode() + listed)
    for fmt, listed in (("adblock", "adblock.txt"),
                        ("dnsmasq", "dnsmasq.conf"), ("rpz", "rpz.zone")):
        with open(os.path.join(tdir, "lists", listed), "rb") as f:
            text = f.read()
        write(t, "import-" + fmt,
              ("categories:\n  - name: imported\n    import:\n"
               "      - {file: list.txt, format: %s}\n#%%list\n"
               % fmt).encode() + text)
    with open(os.path.join(tdir, "lists/junk.txt")) as f:
        junk = f.read()
    write(t, "import-junk", "categories:\n  - name: j\n    import:\n"
          "      - {file: list.txt, format: domains}\n"
          "allow: [fine.example]\n#%list\n" + junk)
    write(t, "import-missing", "categories:\n  - name: m\n    import:\n"
          "      - {file: /nonexistent/list.txt, format: hosts}\n")


# fuzz_frontend: a flags byte, a chunk byte, then 2-byte-length framed
# messages (datagrams over UDP, the stream itself over TCP).
F_V6, F_REFUSED, F_TCP, F_RATELIMIT, F_RELOAD, F_HALFCLOSE, F_CHUNKED = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40)
LONG_ENTRY = ("a" * 63 + "." + "b" * 63 + "." + "c" * 63 + ".long.example.")


def frontend_input(flags, *msgs, chunk=0):
    return bytes([flags, chunk]) + b"".join(
        struct.pack(">H", len(m)) + m for m in msgs)


def frontend():
    t = "frontend"

    def w(name, flags, *msgs, chunk=0):
        write(t, name, frontend_input(flags, *msgs, chunk=chunk))

    unblocked = query("www.dnswarden.test.")
    blocked = query("www.blocked.example.", qid=0x0101)
    w("udp-a-unblocked", 0, unblocked)
    w("udp-a-blocked", 0, blocked)
    w("udp-blocked-edns-do", 0, query("WWW.Blocked.Example.", edns=0,
                                      do=True))
    w("udp-blocked-small-edns", 0, query("x.", "TXT", edns=0, payload=600))
    w("udp-allowed-entry", 0, query("ok.blocked.example.", edns=0))
    w("udp-wildcard-idn-bypass", F_V6,
      query("a.wild.example.", edns=0), query("xn--bcher-kva.example."),
      query("use-application-dns.net.", edns=0, do=True))
    w("udp-long-blocked", 0, query(LONG_ENTRY, "TXT"),
      query("z." + LONG_ENTRY, edns=0, payload=512),
      query(LONG_ENTRY, edns=0, payload=4096))
    w("udp-cached", 0, query("cached.example.", edns=0),
      query("Big.Example.", "TXT"), query("big.example.", "TXT", edns=0),
      query("huge.example.", "TXT", edns=0, do=True),
      query("alias.example.", edns=0), query("nx.example."),
      query("cached.example.", "AAAA"))
    w("udp-reload", F_RELOAD, query("alias.example.", edns=0),
      query("alias.example.", edns=0), query("cached.example.", edns=0),
      query("cached.example."))
    m = dns.message.make_query("notify.test.", "SOA")
    m.set_opcode(dns.opcode.NOTIFY)
    w("udp-bad-opcode", 0, m.to_wire(), query("example.net.", "AXFR"))
    v1 = bytearray(query("v1.test.", edns=0))
    v1[-5] = 1		# the OPT's EDNS version
    w("udp-badvers", 0, bytes(v1))
    w("udp-truncated-header", 0, unblocked[:5], unblocked[:12],
      unblocked[:20])
    w("udp-compressed-question", 0,
      bytes.fromhex("abcd01000001000000000000c00c00010001"))
    two = bytearray(query("one.test."))
    two[5] = 2
    two += b"\x03two\x04test\x00\x00\x01\x00\x01"
    w("udp-two-questions", 0, bytes(two))
    w("udp-response-bit", 0, query("qr.test.", flags=dns.flags.QR))
    w("udp-refused", F_REFUSED, query("refused.test.", edns=0), blocked)
    w("udp-refused-v6", F_REFUSED | F_V6, query("refused.test."))
    w("udp-ratelimit", F_RATELIMIT, *[unblocked] * 5)
    w("udp-oversized", 0, query("big.test.", edns=0) + b"\0" * 4100)
    base = query("two-opt.test.", edns=0)
    two_opt = bytearray(base + base[-11:])
    two_opt[11] = 2
    w("udp-two-opt", 0, bytes(two_opt))

    w("tcp-pipelined", F_TCP, unblocked, blocked,
      query("cached.example.", edns=0), query("huge.example.", "TXT"),
      unblocked[:11], query("qr.test.", flags=dns.flags.QR))
    w("tcp-chunked", F_TCP | F_CHUNKED, blocked, unblocked, chunk=0)
    w("tcp-halfclose", F_TCP | F_HALFCLOSE, unblocked,
      query("alias.example."))
    w("tcp-reload", F_TCP | F_CHUNKED | F_RELOAD,
      query("alias.example."), query("alias.example."),
      query("cached.example."), chunk=len(query("alias.example.")) + 1)
    w("tcp-refused", F_TCP | F_REFUSED | F_V6, blocked)
    # 4.5 KB answers to 100 queries: past the 256 KB the frontend
    # buffers before it stops reading, then half-closed.
    w("tcp-backpressure", F_TCP | F_HALFCLOSE,
      *[query("huge.example.", "TXT", qid=i) for i in range(100)])
    write(t, "tcp-partial", frontend_input(F_TCP, unblocked)
          + b"\x00\x40" + blocked[:20])


def main():
    queries()
    replies()
    frontend()
    configs()
    blocklists()
    total = sum(os.path.getsize(os.path.join(d, f))
                for d, _, fs in os.walk(CORPUS) for f in fs)
    print("corpus: %d bytes" % total, file=sys.stderr)


if __name__ == "__main__":
    main()

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
    with open(os.path.join(tdir, "lists/junk.txt")) as f:
        junk = f.read()
    write(t, "import-junk", "categories:\n  - name: j\n    import:\n"
          "      - {file: list.txt, format: domains}\n"
          "allow: [fine.example]\n#%list\n" + junk)
    write(t, "import-missing", "categories:\n  - name: m\n    import:\n"
          "      - {file: /nonexistent/list.txt, format: hosts}\n")


def main():
    queries()
    replies()
    configs()
    blocklists()
    total = sum(os.path.getsize(os.path.join(d, f))
                for d, _, fs in os.walk(CORPUS) for f in fs)
    print("corpus: %d bytes" % total, file=sys.stderr)


if __name__ == "__main__":
    main()

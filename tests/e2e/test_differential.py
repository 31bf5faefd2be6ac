"""Differential test (issue 11): every name and type of a signed zone with
large RRsets, long CNAME chains, DNSSEC records and answers near 512 and
1232 bytes, asked of NSD directly and of dnswarden forwarding to it, over
UDP and TCP, with and without EDNS and DO, on a cache miss and on a hit.
dnswarden must give what NSD gives: rcode, TC, and every section record by
record in NSD's order (TTLs may only have counted down). Where an answer
does not fit, both drop the additional records, then authority records the
answer does not need, and set TC only when what is left does not fit (RFC
2181 section 9); a client over TCP always gets the whole answer, never one
an upstream trimmed to fit a datagram."""

import subprocess
import textwrap

import dns.flags
import dns.message
import dns.rcode
import pytest

import harness

ZONE = "diff.test."
TTL = 3600


def zone_text() -> str:
    lines = [f"$ORIGIN {ZONE}", f"$TTL {TTL}",
             "@ SOA ns1 hostmaster 1 3600 600 86400 60",
             "@ NS ns1", "@ NS ns2", "ns1 A 127.0.0.1", "ns2 A 127.0.0.2",
             "www A 192.0.2.1", "www AAAA 2001:db8::1"]
    # Eight MX (an answer of about 480 bytes) and their addresses.
    for i in range(8):
        lines.append(f"mx8 MX {i} mail-exchanger-{i}.mx8")
        lines.append(f"mail-exchanger-{i}.mx8 A 192.0.2.{i + 10}")
        lines.append(f"mail-exchanger-{i}.mx8 AAAA 2001:db8::{i + 10:x}")
    # Fifty MX: the answer fits 1232, the additional records do not.
    for i in range(50):
        lines.append(f"mx50 MX {i} m{i}.mx50")
        lines.append(f"m{i}.mx50 A 198.51.100.{i + 1}")
    # TXT RRsets near 512, near 1232 and far over.
    for name, n in (("t4", 4), ("t5", 5), ("t11", 11), ("t12", 12), ("t30", 30)):
        for i in range(n):
            lines.append(f'{name} TXT "{name}-{i:02d}-' + "x" * 88 + '"')
    # Many addresses, one RRset.
    for i in range(40):
        lines.append(f"many A 203.0.113.{i + 1}")
        lines.append(f"many AAAA 2001:db8:1::{i + 1:x}")
    # CNAME chains: long, into a big answer, into nothing, into no data.
    for i in range(9):
        lines.append(f"c{i} CNAME c{i + 1}")
    lines.append("c9 A 192.0.2.99")
    lines.append("tochain CNAME t11")
    lines.append("tonx CNAME absent")
    lines.append("tonodata CNAME www")
    # A wildcard (with DO, an NSEC proof in the authority section).
    lines.append("*.wild A 192.0.2.77")
    lines.append("*.wild TXT \"wildcard\"")
    # A delegation: a referral with glue.
    for i in range(6):
        lines.append(f"sub NS ns{i}.sub")
        lines.append(f"ns{i}.sub A 192.0.2.{i + 200}")
        lines.append(f"ns{i}.sub AAAA 2001:db8:2::{i + 1:x}")
    return "\n".join(lines) + "\n"


NAMES = ["", "www", "mx8", "mx50", "t4", "t5", "t11", "t12", "t30", "many",
         "c0", "c5", "tochain", "tonx", "tonodata", "a.wild", "b.c.wild",
         "absent", "www.sub", "ns1", "mail-exchanger-3.mx8"]
TYPES = ["A", "AAAA", "MX", "TXT", "NS", "SOA", "DNSKEY"]

# (transport, EDNS payload size or None, DO): UDP ones first, so that a TCP
# client meets entries fetched over UDP (and possibly trimmed) upstream.
VARIANTS = [("udp", None, False), ("udp", 1232, False), ("udp", 512, True),
            ("udp", 1232, True), ("udp", 4096, True), ("tcp", None, False),
            ("tcp", 1232, True)]


@pytest.fixture(scope="module")
def signed_nsd(tmp_path_factory):
    d = tmp_path_factory.mktemp("diff-nsd")
    d.chmod(0o755)
    zonefile = d / "diff.test.zone"
    zonefile.write_text(zone_text())
    keys = []
    for flags in (["-k"], []):
        out = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", *flags, ZONE],
                             cwd=d, capture_output=True, text=True, check=True)
        keys.append(str(d / out.stdout.strip()))
    subprocess.run(["ldns-signzone", "-b", str(zonefile), *keys],
                   cwd=d, capture_output=True, text=True, check=True)
    nsd = harness.Nsd(d / "nsd", zone=ZONE, minimal=False,
                      text=(d / "diff.test.zone.signed").read_text())
    nsd.start()
    yield nsd
    if nsd.proc and nsd.proc.poll() is None:
        nsd.proc.terminate()
        nsd.proc.wait(10)


def ask(addr, port, name, rdtype, transport, edns, do):
    q = dns.message.make_query(name, rdtype, use_edns=edns is not None,
                               payload=edns or 512, want_dnssec=do)
    q.flags |= dns.flags.RD
    q.id = 4321
    return harness.query_msg(addr, port, q, tcp=transport == "tcp")


def records(section):
    """The records of a section in order, without their TTLs."""
    out = []
    for rrset in section:
        for rd in rrset:
            out.append(f"{rrset.name} {dns.rdataclass.to_text(rrset.rdclass)} "
                       f"{dns.rdatatype.to_text(rrset.rdtype)} {rd.to_text()}")
    return out


def differences(got, want, edns, transport):
    d = []
    if got.rcode() != want.rcode():
        d.append(f"rcode {dns.rcode.to_text(got.rcode())}, NSD "
                 f"{dns.rcode.to_text(want.rcode())}")
    if bool(got.flags & dns.flags.TC) != bool(want.flags & dns.flags.TC):
        d.append(f"TC {bool(got.flags & dns.flags.TC)}, NSD "
                 f"{bool(want.flags & dns.flags.TC)}")
    for sec in ("answer", "authority", "additional"):
        g, w = records(getattr(got, sec)), records(getattr(want, sec))
        if g != w:
            d.append(f"{sec}: {len(g)} records, NSD {len(w)}; first different: "
                     f"{next((a, b) for a, b in zip(g + [None] * len(w), w + [None] * len(g)) if a != b)}")
        for rrset in getattr(got, sec):
            if not 0 <= rrset.ttl <= TTL:
                d.append(f"{sec}: TTL {rrset.ttl} of {rrset.name}")
    if (got.edns >= 0) != (edns is not None):
        d.append("EDNS not as asked")
    if transport == "udp" and len(got.to_wire()) > max(512, min(edns or 512, 1232)):
        d.append(f"{len(got.to_wire())} bytes over UDP")
    return d


def test_dnswarden_answers_as_nsd(signed_nsd, dnswarden):
    dw = dnswarden([signed_nsd], ipv6=False)
    problems = []
    compared = 0
    for label in NAMES:
        name = f"{label}.{ZONE}" if label else ZONE
        for rdtype in TYPES:
            for transport, edns, do in VARIANTS:
                want = ask(signed_nsd.addr, signed_nsd.port, name, rdtype,
                           transport, edns, do)
                for attempt in ("first", "again"):
                    got = ask(dw.addr, dw.port, name, rdtype, transport, edns, do)
                    compared += 1
                    for p in differences(got, want, edns, transport):
                        problems.append(f"{name} {rdtype} {transport} edns={edns} "
                                        f"do={do} ({attempt}): {p}")
    assert not problems, f"{len(problems)} differences in {compared} answers:\n" + \
        "\n".join(problems[:40])

"""End-to-end tests of blocking (issue 3): the real dnswarden binary with
the sample blocklist and blocklists written by the tests, between a client
and upstreams started by the tests.

The blocked answer (contract, "Blocked answer"): NXDOMAIN, the question
echoed, RA, an SOA in the authority section whose TTL is
blocklist.blocked_ttl, and EDE 15 naming the category when the client sent
EDNS (no OPT record when it did not). A blocked name never reaches an
upstream, and every blocked query is one row in the attempt log.
"""

import re
import select
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

import harness
from fakeupstream import Reply
from harness import rdata_of

SAMPLE = harness.REPO / "blocklist" / "sample-sites.yaml"

# The sample sites issue 3 names: every one must be in the sample file.
SAMPLE_SITE_NAMES = [
    "Backpage", "Craigslist", "My Provider Guide", "Adult Friend Finder",
    "Find Hot Escorts", "TNA Board", "Hot Local Escorts", "Naughty Reviews",
    "Erotic Mugshots", "Sexy Escorts USA", "Call Me 2nite", "The Erotic Review",
    "Friend 4rent", "Sex Finder", "EroticMP", "RubMaps",
]
DNS_BYPASS = ["use-application-dns.net", "mask.icloud.com", "mask-h2.icloud.com"]
NO_RATE_LIMIT = {"server": {"rate_limit": {"qps": 0, "burst": 1}}}


@pytest.fixture
def dnswarden(dnswarden):
    """The conftest factory, with a roomier upstream timeout (1.5 s) unless
    a test sets one: the fake upstream is Python threads, and on a loaded
    machine 300 ms is sometimes not enough for it to answer."""
    return harness.with_defaults(dnswarden, timeout_ms=1500)


# --- reading the sample file ----------------------------------------------------

def sample_sites(path=SAMPLE):
    """{site name: [(domain, line number)]} from the sample blocklist, read
    with a small line parser (no YAML module in the test dependencies). It
    understands the forms the sample uses: "- name: X" under "sites:",
    "domains: [a, b]" and a "domains:" block of "- a" items; comments are
    ignored, so a commented-out domain is not an entry."""
    sites, cur, in_sites, in_domains = {}, None, False, False
    for no, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not line.strip():
            continue
        if re.fullmatch(r"\s*sites:", line):
            in_sites, in_domains = True, False
            continue
        if not line.startswith(" "):  # a top-level key ends the sites
            in_sites = in_domains = False
            continue
        m = re.fullmatch(r"\s*- name:\s*(.+)", line)
        if m and in_sites:
            cur = m.group(1).strip().strip('"\'')
            sites[cur] = []
            in_domains = False
            continue
        m = re.fullmatch(r"\s*domains:\s*\[(.*)\]", line)
        if m and cur:
            sites[cur] += [(d.strip().strip('"\''), no) for d in m.group(1).split(",")
                           if d.strip()]
            in_domains = False
            continue
        if re.fullmatch(r"\s*domains:", line) and cur:
            in_domains = True
            continue
        m = re.fullmatch(r"\s*-\s*([A-Za-z0-9.-]+)", line)
        if m and in_domains:
            sites[cur].append((m.group(1), no))
            continue
        in_domains = False
    return sites


SITES = sample_sites()
SAMPLE_DOMAINS = [(site, d, no) for site, ds in SITES.items() for d, no in ds]


def test_sample_file_has_the_16_sites():
    assert sorted(SITES) == sorted(SAMPLE_SITE_NAMES), \
        f"sites in {SAMPLE}: {sorted(SITES)}"
    for site, ds in SITES.items():
        assert ds, f"site {site} has no domains"
    assert ("Backpage", "backpage.com") in {(s, d) for s, d, _ in SAMPLE_DOMAINS}


# --- helpers ------------------------------------------------------------------------

def ede_options(msg):
    return [o for o in msg.options if o.otype == dns.edns.OptionType.EDE]


def assert_blocked(r, category, *, ttl=300, edns=True, direct=True):
    """r is the blocked answer. direct: the question itself matched (then
    the SOA's owner must be the question or one of its parents, so clients
    may cache the NXDOMAIN by RFC 2308)."""
    where = f"answer to {r.question[0].to_text()}:\n{r}"
    assert r.rcode() == dns.rcode.NXDOMAIN, f"not NXDOMAIN: {where}"
    assert r.flags & dns.flags.QR, where
    assert r.flags & dns.flags.RA, f"RA not set: {where}"
    assert r.flags & dns.flags.RD, f"RD not echoed: {where}"
    assert not r.answer, f"records in the answer section: {where}"
    assert len(r.authority) == 1, f"authority section is not one SOA: {where}"
    soa = r.authority[0]
    assert soa.rdtype == dns.rdatatype.SOA and len(soa) == 1, f"no SOA: {where}"
    assert soa.ttl == ttl, f"SOA TTL {soa.ttl}, blocked_ttl is {ttl}: {where}"
    assert soa[0].minimum == ttl, \
        f"SOA minimum {soa[0].minimum} (negative TTL), blocked_ttl is {ttl}: {where}"
    if direct:
        assert r.question[0].name.is_subdomain(soa.name), \
            f"SOA owner {soa.name} is not the question or a parent of it: {where}"
    if edns:
        assert r.edns == 0, f"no OPT in the answer to an EDNS query: {where}"
        edes = ede_options(r)
        assert len(edes) == 1, f"expected one EDE option: {where}"
        assert edes[0].code == dns.edns.EDECode.BLOCKED, f"EDE code {edes[0].code}: {where}"
        assert category in (edes[0].text or ""), \
            f"EDE text {edes[0].text!r} does not name the category {category}"
    else:
        assert r.edns == -1, f"OPT in the answer to a query without EDNS: {where}"
    assert not r.additional, where


def is_blocked(r):
    """Blocked: NXDOMAIN with EDE 15 (so ask with EDNS)."""
    return r.rcode() == dns.rcode.NXDOMAIN and ede_options(r) and \
        ede_options(r)[0].code == dns.edns.EDECode.BLOCKED


def attempt_rows(db, want=1, timeout=3.0):
    """The rows of the attempts table once at least want are there (or
    what is there at timeout), oldest first, as dicts."""
    end = time.monotonic() + timeout
    rows = []
    while True:
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
            try:
                con.row_factory = sqlite3.Row
                rows = [dict(x) for x in con.execute("SELECT * FROM attempts ORDER BY id")]
            finally:
                con.close()
        except sqlite3.OperationalError:
            rows = []  # not created yet
        if len(rows) >= want or time.monotonic() >= end:
            return rows
        time.sleep(0.05)


def run_cli(*args, timeout=20):
    return subprocess.run([harness._resolve_bin(), *args], capture_output=True, text=True,
                          timeout=timeout)


def cli_config(workdir, files, extra=None, name="cli.yaml"):
    cfg = {"upstreams": ["127.0.0.1:9"],
           "blocklist": {"files": [str(f) for f in files]},
           "log": {"database": "off"}}
    cfg = harness.merge(cfg, extra or {})
    p = workdir / name
    p.write_text(harness.to_yaml(cfg))
    return p


def lookup_lines(cfg, names):
    res = run_cli("lookup", "-c", str(cfg), *names)
    assert res.returncode == 0, f"lookup exited {res.returncode}:\n{res.stdout}{res.stderr}"
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == len(names), f"one line per name expected:\n{res.stdout}"
    for name, ln in zip(names, lines):
        assert ln.split()[0] == name, f"line for {name} is {ln!r}"
    return dict(zip(names, lines))


def assert_lookup_blocked(line, rule, category, site, source):
    """The contract: blocked, the rule, its category, its site, file:line."""
    words = line.split()
    assert words[1] == "blocked", line
    assert re.search(r"(^|[\s=])" + re.escape(rule) + r"(\s|$)", line), \
        f"rule {rule} not in {line!r}"
    assert re.search(r"(^|[\s=])" + re.escape(category) + r"(\s|$)", line), \
        f"category {category} not in {line!r}"
    if site is not None:
        assert site in line, f"site {site} not in {line!r}"
    assert re.search(re.escape(source) + r"(\s|$)", line), f"source {source} not in {line!r}"


# --- the sample sites ---------------------------------------------------------------

@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_every_sample_site_blocked(fake_upstream, dnswarden, tcp):
    dw = dnswarden([fake_upstream], blocklists=[SAMPLE])
    asked = []
    for site, domain, _ in SAMPLE_DOMAINS:
        for name in (domain, "www." + domain, "a.b." + domain):
            for edns in (None, 1232):
                r = dw.query(name, "A", tcp=tcp, edns=edns)
                assert_blocked(r, "commercial-sex", edns=edns is not None)
                asked.append((name, site, domain))
    assert fake_upstream.queries == [], \
        f"blocked names reached the upstream: {fake_upstream.queries[:5]}"
    stats = dw.stats()
    assert stats.get("blocked") == len(asked), f"blocked counter: {stats}"
    assert stats.get("upstream_queries") == 0, stats
    # One row per blocked query; all of them on disk after a clean stop.
    assert attempt_rows(dw.database, 1), "no attempt row within 3 s"
    dw.stop()
    rows = attempt_rows(dw.database, len(asked), timeout=0)
    assert len(rows) == len(asked), f"{len(rows)} rows for {len(asked)} blocked queries"
    for row, (name, site, domain) in zip(rows, asked):
        assert row["qname"] == name and row["qtype"] == "A", row
        assert row["rule"] == domain and row["site"] == site, row
        assert row["category"] == "commercial-sex", row
        assert row["transport"] == ("tcp" if tcp else "udp"), row
        assert row["client"] == "127.0.0.1", row


def test_every_query_type_blocked(fake_upstream, dnswarden):
    dw = dnswarden([fake_upstream], blocklists=[SAMPLE])
    for rdtype in ("A", "AAAA", "HTTPS", "SVCB", "MX", "TXT", "NS", "SOA", "CNAME", "ANY",
                   "PTR", "SRV", "CAA"):
        for tcp in (False, True):
            assert_blocked(dw.query("www.rubmaps.com", rdtype, tcp=tcp, edns=1232),
                           "commercial-sex")
    assert fake_upstream.queries == []


def test_blocked_ttl_configured(fake_upstream, dnswarden):
    dw = dnswarden([fake_upstream], {"blocklist": {"blocked_ttl": 42}}, blocklists=[SAMPLE])
    for tcp in (False, True):
        assert_blocked(dw.query("www.backpage.com", tcp=tcp, edns=1232), "commercial-sex",
                       ttl=42)
        assert_blocked(dw.query("use-application-dns.net", tcp=tcp), "dns-bypass", ttl=42,
                       edns=False)


def test_blocked_answer_echoes_id_and_question_case(fake_upstream, dnswarden):
    dw = dnswarden([fake_upstream], blocklists=[SAMPLE])
    for name, qid, tcp in (("WWW.BACKPAGE.COM", 0x1234, False), ("wWw.BaCkPaGe.CoM", 0, True),
                           ("TNABoard.com", 0xFFFF, False)):
        r = dw.query(name, id=qid, tcp=tcp, edns=1232)
        assert r.id == qid
        assert r.question[0].name.to_text() == name + ".", "question case not echoed"
        assert_blocked(r, "commercial-sex")
    assert fake_upstream.queries == []


# --- matching --------------------------------------------------------------------

def test_unblocked_names_resolve_through_the_upstream(fake_upstream, dnswarden):
    for name, addr in (("notbackpage.com", "192.0.2.71"), ("backpage.com.fake.test", "192.0.2.72"),
                       ("backpage.co", "192.0.2.73"), ("ackpage.com", "192.0.2.74"),
                       ("craigslist.org.example", "192.0.2.75"), ("icloud.com", "192.0.2.76"),
                       ("other.icloud.com", "192.0.2.77")):
        fake_upstream.add(name, "A", addr)
    dw = dnswarden([fake_upstream], blocklists=[SAMPLE])
    assert rdata_of(dw.query("www.fake.test"), "A") == {"192.0.2.1"}
    assert rdata_of(dw.query("www.fake.test", "AAAA", tcp=True), "AAAA") == {"2001:db8::1"}
    assert fake_upstream.queries_for("www.fake.test", "A")
    for name, addr in (("notbackpage.com", "192.0.2.71"), ("backpage.com.fake.test", "192.0.2.72"),
                       ("backpage.co", "192.0.2.73"), ("ackpage.com", "192.0.2.74"),
                       ("craigslist.org.example", "192.0.2.75"), ("icloud.com", "192.0.2.76"),
                       ("other.icloud.com", "192.0.2.77")):
        r = dw.query(name, edns=1232)
        assert rdata_of(r, "A") == {addr}, f"{name} not resolved (label boundary?):\n{r}"
        assert not ede_options(r)
        assert fake_upstream.queries_for(name), f"{name} did not reach the upstream"
    # Unknown names are the upstream's NXDOMAIN, without EDE 15.
    r = dw.query("nothing.fake.test", edns=1232)
    assert r.rcode() == dns.rcode.NXDOMAIN and not ede_options(r)
    assert dw.stats().get("blocked") == 0


def test_entries_match_ignoring_case_trailing_dot_and_idn(fake_upstream, dnswarden,
                                                          blocklist):
    bl = blocklist({"test-cat": {"Mixed": ["Upper.Case.TEST", "trailing.dot.test.",
                                           "*.star.test", "bücher.test"]}})
    fake_upstream.add("case.test", "A", "192.0.2.81")
    fake_upstream.add("dot.test", "A", "192.0.2.82")
    dw = dnswarden([fake_upstream], blocklists=[bl])
    for name in ("upper.case.test", "UPPER.CASE.TEST", "x.Upper.Case.Test",
                 "trailing.dot.test", "TRAILING.DOT.TEST", "y.trailing.dot.test",
                 "star.test", "a.star.test", "xn--bcher-kva.test", "www.XN--BCHER-KVA.test"):
        assert_blocked(dw.query(name, edns=1232), "test-cat")
    assert rdata_of(dw.query("case.test"), "A") == {"192.0.2.81"}
    assert rdata_of(dw.query("dot.test"), "A") == {"192.0.2.82"}
    assert {q.qname_lower for q in fake_upstream.queries} == {"case.test.", "dot.test."}


def test_allow_exceptions_most_specific_wins(fake_upstream, dnswarden, blocklist):
    bl = blocklist({"test-cat": {"Big": ["blocked.test", "bad.ok.blocked.test",
                                         "child.parent.test"]}},
                   allow=["ok.blocked.test", "parent.test", "london.craigslist.org",
                          "mask.icloud.com"])
    allowed = ["ok.blocked.test", "y.ok.blocked.test", "parent.test", "other.parent.test",
               "london.craigslist.org", "a.london.craigslist.org", "mask.icloud.com"]
    for i, name in enumerate(allowed):
        fake_upstream.add(name, "A", f"192.0.2.{90 + i}")
    dw = dnswarden([fake_upstream], blocklists=[SAMPLE, bl])
    for name in ("blocked.test", "x.blocked.test", "bad.ok.blocked.test",
                 "z.bad.ok.blocked.test", "child.parent.test", "w.child.parent.test"):
        assert_blocked(dw.query(name, edns=1232), "test-cat")
    # An allow entry in one file is an exception to entries of another.
    for name in ("craigslist.org", "www.craigslist.org", "paris.craigslist.org"):
        assert_blocked(dw.query(name, edns=1232), "commercial-sex")
    assert_blocked(dw.query("mask-h2.icloud.com", edns=1232), "dns-bypass")
    for i, name in enumerate(allowed):
        r = dw.query(name, edns=1232)
        assert rdata_of(r, "A") == {f"192.0.2.{90 + i}"}, f"{name} not allowed:\n{r}"
    assert {q.qname_lower for q in fake_upstream.queries} == {n + "." for n in allowed}


def test_dns_bypass_blocked_by_default(fake_upstream, dnswarden):
    # No blocklist file at all: the built-in category is still there.
    dw = dnswarden([fake_upstream])
    for name in DNS_BYPASS + ["x." + n for n in DNS_BYPASS]:
        for tcp in (False, True):
            assert_blocked(dw.query(name, "A", tcp=tcp, edns=1232), "dns-bypass")
            assert_blocked(dw.query(name, "AAAA", tcp=tcp), "dns-bypass", edns=False)
    assert fake_upstream.queries == []
    dw.stop()
    rows = attempt_rows(dw.database, timeout=0)
    assert rows and all(r["category"] == "dns-bypass" for r in rows), rows
    assert {r["rule"] for r in rows} == set(DNS_BYPASS)


def test_dns_bypass_off(fake_upstream, dnswarden):
    for i, name in enumerate(DNS_BYPASS):
        fake_upstream.add(name, "A", f"192.0.2.{110 + i}")
    dw = dnswarden([fake_upstream], {"blocklist": {"dns_bypass": False}}, blocklists=[SAMPLE])
    for i, name in enumerate(DNS_BYPASS):
        r = dw.query(name, edns=1232)
        assert rdata_of(r, "A") == {f"192.0.2.{110 + i}"}, \
            f"{name} blocked with dns_bypass: false:\n{r}"
        assert fake_upstream.queries_for(name)
    assert_blocked(dw.query("www.backpage.com", edns=1232), "commercial-sex")


# --- CNAME inspection -------------------------------------------------------------

def cname_plan(fake, chains):
    """A handler answering the names in chains with a CNAME chain ending in
    an A record: chains[name] = ([targets...], address)."""
    def plan(q):
        name = q.qname_lower
        if name not in chains or q.qtype != "A":
            return fake.answer_plan(q)
        targets, addr = chains[name]
        r = dns.message.make_response(q.msg)
        r.flags |= dns.flags.AA | dns.flags.RA
        owner = q.msg.question[0].name
        for t in targets:
            r.answer.append(dns.rrset.from_text(owner, 300, "IN", "CNAME", t))
            owner = dns.name.from_text(t)
        r.answer.append(dns.rrset.from_text(owner, 300, "IN", "A", addr))
        return [Reply(r)]
    return plan


def test_cname_into_blocked_name(fake_upstream, dnswarden, blocklist):
    fake_upstream.handler = cname_plan(fake_upstream, {
        "promo.fake.test.": (["www.backpage.com."], "203.0.113.5"),
        "chain.fake.test.": (["hop.elsewhere.test.", "CA.BackPage.COM."], "203.0.113.6"),
        "safe.fake.test.": (["www.notbackpage.com."], "203.0.113.7"),
        "excepted.fake.test.": (["x.ok.backpage.com."], "203.0.113.8"),
    })
    allow = blocklist({"test-cat": {"None": ["unused.test"]}}, allow=["ok.backpage.com"])
    dw = dnswarden([fake_upstream], blocklists=[SAMPLE, allow])
    r = dw.query("promo.fake.test", edns=1232)
    assert_blocked(r, "commercial-sex", direct=False)
    assert "203.0.113.5" not in r.to_text()
    rows = attempt_rows(dw.database, 1, timeout=3)
    assert len(rows) == 1, f"attempt rows 3 s after a CNAME-blocked query: {rows}"
    assert rows[0]["qname"] == "promo.fake.test" and rows[0]["rule"] == "backpage.com", rows
    assert rows[0]["category"] == "commercial-sex" and rows[0]["site"] == "Backpage", rows
    # Again, now from the cache: still blocked, and counted again.
    r = dw.query("promo.fake.test")
    assert_blocked(r, "commercial-sex", edns=False, direct=False)
    assert len(fake_upstream.queries_for("promo.fake.test")) == 1, \
        "second query not answered from the cache"
    assert len(attempt_rows(dw.database, 2, timeout=3)) == 2, \
        "the blocked answer from the cache is not logged as an attempt"
    # A longer chain, a mixed-case target, over TCP.
    assert_blocked(dw.query("chain.fake.test", tcp=True, edns=1232), "commercial-sex",
                   direct=False)
    # A CNAME to a name that only looks like a blocked one is answered.
    r = dw.query("safe.fake.test")
    assert rdata_of(r, "A") == {"203.0.113.7"} and r.rcode() == dns.rcode.NOERROR
    # ... and so is one to a name under an allow exception.
    r = dw.query("excepted.fake.test")
    assert rdata_of(r, "A") == {"203.0.113.8"} and r.rcode() == dns.rcode.NOERROR
    # The daemon never asked for the CNAME targets itself.
    assert not [q for q in fake_upstream.queries if "backpage" in q.qname_lower]
    stats = dw.stats()
    assert stats.get("blocked_cname") == 3, stats
    dw.stop()
    rows = attempt_rows(dw.database, timeout=0)
    assert [(x["qname"], x["rule"], x["transport"]) for x in rows] == [
        ("promo.fake.test", "backpage.com", "udp"), ("promo.fake.test", "backpage.com", "udp"),
        ("chain.fake.test", "backpage.com", "tcp")], rows


def test_cname_in_cache_checked_against_reloaded_list(fake_upstream, dnswarden, blocklist):
    """A cached answer whose CNAME leads to a name blocked only after a
    reload is blocked from then on, without asking the upstream again."""
    fake_upstream.handler = cname_plan(fake_upstream, {
        "promo.fake.test.": (["cdn.later.test."], "203.0.113.9")})
    bl = blocklist({"test-cat": {"Old": ["old.test"]}}, name="later.yaml")
    dw = dnswarden([fake_upstream], blocklists=[bl])
    assert rdata_of(dw.query("promo.fake.test"), "A") == {"203.0.113.9"}
    blocklist({"test-cat": {"Old": ["old.test"], "Later": ["later.test"]}}, name="later.yaml")
    dw.send_signal(signal.SIGHUP)
    end = time.monotonic() + 5
    while not is_blocked(dw.query("x.later.test", edns=1232)):
        assert time.monotonic() < end, "reload not applied"
        time.sleep(0.05)
    assert_blocked(dw.query("promo.fake.test", edns=1232), "test-cat", direct=False)
    assert len(fake_upstream.queries_for("promo.fake.test")) == 1


# --- reload --------------------------------------------------------------------------

def test_reload_adds_domain_without_gap(fake_upstream, dnswarden, blocklist):
    """A client queries continuously (up to 4 queries in flight) while
    SIGHUP adds a domain: every query is answered, and from some point on
    the new domain is blocked, and stays blocked."""
    fake_upstream.add("newsite.test", "A", "192.0.2.50")
    old = {"test-cat": {"Old": ["initial.test"]}}
    bl = blocklist(old, name="reload.yaml")
    dw = dnswarden([fake_upstream], NO_RATE_LIMIT, blocklists=[SAMPLE, bl])
    names = ["www.fake.test", "newsite.test"]
    sent, got, first_blocked = {}, {}, None
    hup_at, total, window = 600, 2000, 4
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((dw.addr, dw.port))
    try:
        qid = 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and qid < 20000:
            done = qid >= total and first_blocked is not None and qid >= first_blocked + 200
            while len(sent) - len(got) < window and not done:
                if qid == hup_at:
                    blocklist({"test-cat": {"Old": ["initial.test"], "New": ["newsite.test"]}},
                              name="reload.yaml")
                    dw.send_signal(signal.SIGHUP)
                qid += 1
                name = names[qid % 2]
                s.send(harness.make_query(name, "A", id=qid, edns=1232).to_wire())
                sent[qid] = (name, time.monotonic())
                done = qid >= total and first_blocked is not None and qid >= first_blocked + 200
            if done and len(got) == len(sent):
                break
            ready, _, _ = select.select([s], [], [], 2.0)
            if not ready:
                break  # nothing for 2 s: the missing ones are reported below
            m = dns.message.from_wire(s.recv(65535))
            assert m.id in sent and m.id not in got, f"unexpected reply ID {m.id}"
            got[m.id] = (m, time.monotonic() - sent[m.id][1])
            if sent[m.id][0] == "newsite.test" and is_blocked(m) and \
                    (first_blocked is None or m.id < first_blocked):
                first_blocked = m.id
    finally:
        s.close()
    missing = sorted(set(sent) - set(got))
    assert not missing, f"{len(missing)} of {len(sent)} queries unanswered, IDs {missing[:20]}"
    assert first_blocked is not None, "newsite.test never blocked after SIGHUP"
    assert len(sent) >= total
    slowest = max(t for _, t in got.values())
    # No query waits for the reload. A query takes milliseconds; 2 s is
    # headroom for ASan on a machine shared with other jobs.
    assert slowest < 2.0, f"a query waited {slowest:.3f} s during the reload"
    for i in sorted(got):
        m, _ = got[i]
        name = sent[i][0]
        if name == "www.fake.test":
            assert rdata_of(m, "A") == {"192.0.2.1"}, f"query {i} for {name}:\n{m}"
        elif i < hup_at or i < first_blocked:
            assert rdata_of(m, "A") == {"192.0.2.50"}, f"query {i} for {name}:\n{m}"
        else:
            assert is_blocked(m), f"query {i} for {name} after the first blocked one:\n{m}"
    assert first_blocked > hup_at
    # The old entries stay, the new one is blocked over both transports.
    assert_blocked(dw.query("initial.test", edns=1232), "test-cat")
    assert_blocked(dw.query("a.newsite.test", tcp=True, edns=1232), "test-cat")
    assert_blocked(dw.query("www.backpage.com", edns=1232), "commercial-sex")
    assert len(fake_upstream.queries_for("www.fake.test")) == 1, "cache lost at reload"


def test_reload_with_broken_blocklist_keeps_old(fake_upstream, dnswarden, workdir):
    fake_upstream.add("new.test", "A", "192.0.2.60")
    path = workdir / "broken.yaml"
    good = ("categories:\n"
            "  - name: test-cat\n"
            "    sites:\n"
            "      - name: Old\n"
            "        domains:\n"
            "          - old.test\n")
    path.write_text(good)
    path.chmod(0o644)
    dw = dnswarden([fake_upstream], blocklists=[SAMPLE, path])
    assert_blocked(dw.query("old.test", edns=1232), "test-cat")
    assert rdata_of(dw.query("new.test"), "A") == {"192.0.2.60"}
    broken = good + "          - new.test\n          - bad..test\n"
    path.write_text(broken)
    line = broken.splitlines().index("          - bad..test") + 1
    col = broken.splitlines()[line - 1].index("bad..test") + 1
    since = len(dw.stderr())
    dw.send_signal(signal.SIGHUP)
    where = f"{path}:{line}:{col}:"
    assert dw.wait_stderr(where, since, timeout=5), \
        f"no error at {where} after SIGHUP:\n{dw.stderr()[since:]}"
    harness.wait_for(lambda: dw.stats().get("reload_failures") == 1,
                     "the failed reload counted (done)")
    assert dw.running()
    assert_blocked(dw.query("old.test", edns=1232), "test-cat")
    assert_blocked(dw.query("x.old.test", tcp=True), "test-cat", edns=False)
    assert_blocked(dw.query("www.backpage.com"), "commercial-sex", edns=False)
    assert rdata_of(dw.query("new.test"), "A") == {"192.0.2.60"}, \
        "a name of the broken file was applied"
    # Fixed: the next SIGHUP applies it.
    path.write_text(good + "          - new.test\n")
    dw.send_signal(signal.SIGHUP)
    end = time.monotonic() + 5
    while not is_blocked(dw.query("new.test", edns=1232)):
        assert time.monotonic() < end, "the fixed blocklist was not applied"
        time.sleep(0.05)
    assert_blocked(dw.query("old.test", edns=1232), "test-cat")


# --- the command line: lookup and check ----------------------------------------------

def test_lookup_sample_sites(workdir, blocklist):
    bl = blocklist({"test-cat": {"Local": ["local.test"]}}, allow=["ok.backpage.com"])
    cfg = cli_config(workdir, [SAMPLE, bl])
    names = []
    for site, domain, no in SAMPLE_DOMAINS:
        names += [domain, "www." + domain]
    lines = lookup_lines(cfg, names)
    for site, domain, no in SAMPLE_DOMAINS:
        for name in (domain, "www." + domain):
            assert_lookup_blocked(lines[name], domain, "commercial-sex", site,
                                  f"{SAMPLE}:{no}")
    extra = ["WWW.BACKPAGE.COM.", "notbackpage.com", "backpage.com.example", "x.local.test",
             "ok.backpage.com", "a.ok.backpage.com", "mask.icloud.com", "example.org"]
    lines = lookup_lines(cfg, extra)
    backpage_line = {d: n for _, d, n in SAMPLE_DOMAINS}["backpage.com"]
    assert_lookup_blocked(lines["WWW.BACKPAGE.COM."], "backpage.com", "commercial-sex",
                          "Backpage", f"{SAMPLE}:{backpage_line}")
    for name in ("notbackpage.com", "backpage.com.example", "example.org"):
        assert lines[name].split()[1:] == ["allowed"], lines[name]
    assert_lookup_blocked(lines["x.local.test"], "local.test", "test-cat", "Local", f"{bl}:6")
    for name in ("ok.backpage.com", "a.ok.backpage.com"):
        assert lines[name].split()[1] == "allowed", lines[name]
        assert "ok.backpage.com" in lines[name] and f"{bl}:7" in lines[name], \
            f"allow entry and its file:line not shown: {lines[name]}"
    assert lines["mask.icloud.com"].split()[1] == "blocked"
    assert "dns-bypass" in lines["mask.icloud.com"]


def test_check_prints_summary(workdir, blocklist):
    bl = blocklist({"test-cat": {"One": ["one.test", "two.test"], "Two": ["three.test"]}})
    cfg = cli_config(workdir, [SAMPLE, bl])
    res = run_cli("check", "-c", str(cfg))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    lines = out.splitlines()

    def category_line(cat):
        found = [ln for ln in lines if re.match(r"\s*" + re.escape(cat) + r"\b", ln)]
        assert len(found) == 1, f"no single summary line for {cat}:\n{out}"
        return found[0]
    n = len(SAMPLE_DOMAINS)
    assert re.search(rf"\b{n} entr", category_line("commercial-sex")), \
        f"commercial-sex should have {n} entries:\n{out}"
    assert re.search(r"\b3 entr", category_line("test-cat")), out
    assert re.search(r"\b3 entr", category_line("dns-bypass")), out
    assert str(SAMPLE) in out and str(bl) in out, f"files not listed:\n{out}"
    # dns_bypass: false leaves the built-in category out.
    cfg2 = cli_config(workdir, [SAMPLE], {"blocklist": {"dns_bypass": False}}, name="cli2.yaml")
    res = run_cli("check", "-c", str(cfg2))
    assert res.returncode == 0 and "dns-bypass" not in res.stdout, res.stdout + res.stderr


@pytest.mark.parametrize("bad,what", [
    ("bad..test", "empty label"), ("a/b.test", "slash"), ("w*.test", "inner star"),
    ("a" * 64 + ".test", "label of 64 characters"), ("sp ace.test", "space"),
    (".".join(["abcdefghi"] * 26), "name of 259 characters"),
])
def test_check_bad_blocklist_line(workdir, bad, what):
    path = workdir / "bad.yaml"
    text = ("categories:\n"
            "  - name: test-cat\n"
            "    sites:\n"
            "      - name: Bad\n"
            "        domains:\n"
            "          - good.test\n"
            f"          - {bad}\n")
    path.write_text(text)
    cfg = cli_config(workdir, [path])
    res = run_cli("check", "-c", str(cfg))
    out = res.stdout + res.stderr
    assert res.returncode == 1, f"check exited {res.returncode} for a {what}:\n{out}"
    col = text.splitlines()[6].index(bad) + 1
    assert re.search(rf"^{re.escape(str(path))}:7:{col}: ", out, re.M), \
        f"no {path}:7:{col}: message for a {what}:\n{out}"
    # lookup (like serve) loads the same files and refuses them too
    res = run_cli("lookup", "-c", str(cfg), "good.test")
    assert res.returncode == 1, out


# --- imports ---------------------------------------------------------------------

def test_imported_hosts_and_domains_lists(fake_upstream, dnswarden, workdir):
    lists = workdir / "lists"
    lists.mkdir()
    (lists / "extra-hosts.txt").write_text(
        "# a hosts file as public lists ship it\n"
        "127.0.0.1 localhost\n"
        "0.0.0.0 0.0.0.0\n"
        "0.0.0.0 hosts-one.test\n"
        "127.0.0.1\thosts-two.test   # trailing comment\n"
        "0.0.0.0 hosts-three.test hosts-four.test\n"
        "\n"
        ":: hosts-v6.test\n")
    (lists / "extra-domains.txt").write_text(
        "# one name a line\n"
        "domains-one.test\n"
        "\n"
        "Domains-Two.TEST\r\n"
        "domains-three.test.\n")
    for f in lists.iterdir():
        f.chmod(0o644)
    lists.chmod(0o755)
    bl = harness.write_blocklist(workdir / "imports.yaml", [
        {"name": "imported-cat", "description": "imported lists",
         "import": [{"file": "lists/extra-hosts.txt", "format": "hosts"},
                    {"file": "lists/extra-domains.txt", "format": "domains"}]}])
    fake_upstream.add("localhost", "A", "127.0.0.1")
    dw = dnswarden([fake_upstream], blocklists=[bl])
    blocked = ["hosts-one.test", "hosts-two.test", "hosts-three.test", "hosts-four.test",
               "hosts-v6.test", "domains-one.test", "domains-two.test", "domains-three.test"]
    for name in blocked:
        assert_blocked(dw.query(name, edns=1232), "imported-cat")
        assert_blocked(dw.query("sub." + name, tcp=True, edns=1232), "imported-cat")
    assert fake_upstream.queries == []
    # The machine's own names in a hosts file are not entries.
    assert rdata_of(dw.query("localhost"), "A") == {"127.0.0.1"}
    dw.stop()
    rows = attempt_rows(dw.database, timeout=0)
    assert len(rows) == 2 * len(blocked)
    for row in rows:
        assert row["category"] == "imported-cat" and row["site"] is None, row
    cfg = cli_config(workdir, [bl])
    lines = lookup_lines(cfg, ["hosts-two.test", "www.domains-two.test", "localhost"])
    assert_lookup_blocked(lines["hosts-two.test"], "hosts-two.test", "imported-cat", None,
                          f"{lists / 'extra-hosts.txt'}:5")
    assert_lookup_blocked(lines["www.domains-two.test"], "domains-two.test", "imported-cat",
                          None, f"{lists / 'extra-domains.txt'}:4")
    assert lines["localhost"].split()[1:] == ["allowed"]

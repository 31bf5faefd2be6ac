"""End-to-end tests of issue 19, "evidence that holds": blocking fails
closed on every name a client would follow, and an answer too long to
check is never served (nor cached) as clean.
"""

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from fakeupstream import Reply
from harness import rdata_of
from test_blocking import SAMPLE, assert_blocked, attempt_rows, cname_plan


@pytest.fixture
def dnswarden(dnswarden):
    """The conftest factory with the sample list and a roomy upstream
    timeout (the fake upstream is Python threads on a loaded machine)."""
    def start(upstreams, overrides=None, **kw):
        kw.setdefault("timeout_ms", 1500)
        kw.setdefault("blocklists", [SAMPLE])
        return dnswarden(upstreams, overrides, **kw)
    return start


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

"""An upstream that misbehaves never crashes dnswarden or leaves a client
unanswered: the client gets SERVFAIL or, when another upstream works, the
correct answer, within a bounded time."""

import signal
import time

import dns.flags
import dns.rcode
import pytest

from harness import rdata_of

GARBAGE = ["junk", "idjunk", "short", "badcount", "loop"]


def _answer_later_works(dw, fake):
    fake.mode_normal()
    r = dw.query("multi.fake.test", timeout=3)
    assert rdata_of(r, "A") == {"192.0.2.11", "192.0.2.12", "192.0.2.13"}


@pytest.mark.parametrize("kind", GARBAGE)
def test_garbage_reply_servfail(fake_upstream, dnswarden, kind):
    fake_upstream.mode_garbage(kind)
    dw = dnswarden([fake_upstream], timeout_ms=300)
    t = time.monotonic()
    r = dw.query("www.fake.test", timeout=5)
    assert r.rcode() == dns.rcode.SERVFAIL, f"answer built from garbage: {r}"
    assert time.monotonic() - t < 3
    assert dw.running()
    _answer_later_works(dw, fake_upstream)


@pytest.mark.parametrize("kind", GARBAGE)
def test_garbage_reply_fails_over(fake_upstream, fake_upstream2, dnswarden, kind):
    fake_upstream.mode_garbage(kind)
    dw = dnswarden([fake_upstream, fake_upstream2], timeout_ms=300)
    t = time.monotonic()
    r = dw.query("www.fake.test", timeout=5)
    assert rdata_of(r, "A") == {"192.0.2.1"}
    assert time.monotonic() - t < 3
    assert fake_upstream.queries_for("www.fake.test"), "first upstream not tried first"


def test_slow_upstream_within_timeout_answers(fake_upstream, dnswarden):
    fake_upstream.mode_delay(0.15)
    dw = dnswarden([fake_upstream], timeout_ms=1000)
    assert rdata_of(dw.query("www.fake.test", timeout=5), "A") == {"192.0.2.1"}


def test_slow_upstream_beyond_timeout_servfail_and_late_reply_harmless(fake_upstream,
                                                                        dnswarden):
    fake_upstream.mode_delay(1.5)
    dw = dnswarden([fake_upstream], timeout_ms=300)
    r = dw.query("www.fake.test", timeout=5)
    assert r.rcode() == dns.rcode.SERVFAIL
    # Told apart from waiting for the reply by order, not by a clock:
    # the SERVFAIL came before the upstream wrote its (1.5 s late) reply.
    assert fake_upstream.replies_sent == 0, "waited for the slow upstream past the timeout"
    fake_upstream.wait_replies_sent(1)  # the late reply arrives now
    assert dw.running()
    _answer_later_works(dw, fake_upstream)


def test_reload_applies_new_upstream_timeout(fake_upstream, dnswarden):
    """upstream_timeout_ms is read again on SIGHUP: a try that gave up
    after 300 ms waits for a 1 s upstream once the timeout is 3000 ms."""
    fake_upstream.mode_delay(1.0)
    dw = dnswarden([fake_upstream], timeout_ms=300)
    assert dw.query("www.fake.test", timeout=5).rcode() == dns.rcode.SERVFAIL
    dw.config["upstream_timeout_ms"] = 3000
    dw.write_config(dw.config)
    since = len(dw.stderr())
    dw.send_signal(signal.SIGHUP)
    assert dw.wait_stderr("reloaded", since=since), dw.stderr()
    r = dw.query("www.fake.test", timeout=5)
    assert rdata_of(r, "A") == {"192.0.2.1"}, r


def test_tcp_closed_mid_answer(fake_upstream, dnswarden):
    fake_upstream.mode_tcp_close_mid_answer()
    dw = dnswarden([fake_upstream], timeout_ms=500)
    t = time.monotonic()
    r = dw.query("multi.fake.test", edns=1232, timeout=5)
    assert r.rcode() == dns.rcode.SERVFAIL
    assert not r.flags & dns.flags.TC
    assert time.monotonic() - t < 3
    assert [q.transport for q in fake_upstream.queries_for("multi.fake.test")][:2] == \
        ["udp", "tcp"]
    assert dw.running()


def test_tcp_never_answers_after_tc(fake_upstream, dnswarden):
    fake_upstream.mode_truncate(tcp_plan=lambda q: [])
    dw = dnswarden([fake_upstream], timeout_ms=300)
    t = time.monotonic()
    r = dw.query("multi.fake.test", timeout=5)
    assert r.rcode() == dns.rcode.SERVFAIL
    assert time.monotonic() - t < 3
    assert dw.running()

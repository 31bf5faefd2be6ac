"""End-to-end tests of policies: (which categories apply to which clients).

Clients are told apart by their source address on the loopback network:
127.0.0.1 falls under no policy (every category), 127.0.0.2 is the
security team (no category), 127.0.0.3 the guests (one category). The fake
upstream answers every name, so a name a policy leaves out resolves.
"""

import signal
import socket
import sqlite3
import subprocess
import time

import dns.message
import dns.query

import harness

NO_RATE_LIMIT = {"server": {"rate_limit": {"qps": 0, "burst": 1}}}
DEFAULT, SECURITY, GUEST = "127.0.0.1", "127.0.0.2", "127.0.0.3"
CATEGORIES = {
    "commercial-sex": {"Shop": ["shop.test"]},
    "adult": {"Adult": ["adult.test"]},
}


def policies(security_cats=(), guest_cats=("adult",)):
    return {
        "clients": [{"network": f"{GUEST}/32", "name": "guest-wifi"}],
        "policies": [
            {"name": "security-team", "clients": [f"{SECURITY}/32"],
             "categories": list(security_cats)},
            {"name": "guests", "clients": ["guest-wifi"],
             "categories": list(guest_cats)},
        ],
    }


def ask(dw, name, source, tcp=False):
    q = harness.make_query(name, "A", edns=1232)
    if tcp:
        return dns.query.tcp(q, dw.addr, port=dw.port, source=source, timeout=3)
    return dns.query.udp(q, dw.addr, port=dw.port, source=source, timeout=3)


blocked = harness.blocked


def start(dnswarden, fake_upstream, blocklist, **pol):
    for name in ("shop.test", "adult.test", "www.adult.test"):
        fake_upstream.add(name, "A", "192.0.2.7")
    bl = blocklist(CATEGORIES, name="policies.yaml")
    overrides = harness.merge(NO_RATE_LIMIT, policies(**pol))
    return dnswarden([fake_upstream], overrides, blocklists=[bl], timeout_ms=1500)


def rows(dw, want, timeout=5.0):
    """The attempt rows (client, qname, policy), once there are want."""
    end = time.monotonic() + timeout
    got = []
    while time.monotonic() < end:
        if dw.database.exists():
            db = sqlite3.connect(f"file:{dw.database}?mode=ro", uri=True)
            try:
                got = db.execute("SELECT client, qname, policy FROM attempts "
                                 "ORDER BY id").fetchall()
            except sqlite3.OperationalError:
                got = []
            finally:
                db.close()
            if len(got) >= want:
                return got
        time.sleep(0.05)
    return got


def test_two_clients_two_answers_and_rows(dnswarden, fake_upstream, blocklist):
    """The same name is blocked for one client and answered for another,
    whichever asks first (the cache is shared), and each attempt row names
    the policy that applied."""
    dw = start(dnswarden, fake_upstream, blocklist)
    # The security team asks first: the answer is cached, and must not
    # reach a client whose policy blocks the name.
    for source in (SECURITY, DEFAULT, GUEST, SECURITY):
        m = ask(dw, "shop.test", source)
        assert blocked(m) == (source == DEFAULT), f"shop.test for {source}:\n{m}"
    for source in (GUEST, SECURITY, DEFAULT):
        m = ask(dw, "www.adult.test", source, tcp=True)
        assert blocked(m) == (source != SECURITY), f"adult for {source}:\n{m}"
    assert harness.rdata_of(ask(dw, "shop.test", SECURITY), "A") == {"192.0.2.7"}
    got = rows(dw, 3)
    assert sorted(got) == sorted([
        (DEFAULT, "shop.test", None),
        (GUEST, "www.adult.test", "guests"),
        (DEFAULT, "www.adult.test", None),
    ]), got


def test_reload_changes_policy_without_unanswered_query(dnswarden, fake_upstream,
                                                        blocklist):
    """The security team's policy gains commercial-sex by SIGHUP while a
    client of it keeps asking: every query is answered, and from some
    point on the name is blocked for it and stays blocked."""
    dw = start(dnswarden, fake_upstream, blocklist)
    assert not blocked(ask(dw, "shop.test", SECURITY))
    dw.write_config(harness.merge(dw.config, policies(security_cats=["commercial-sex"])))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((SECURITY, 0))
    s.connect((dw.addr, dw.port))
    hup_at = 300
    try:
        sent, got, first_blocked = harness.ask_until_blocked(
            s, "shop.test", change_at=hup_at,
            change=lambda: dw.send_signal(signal.SIGHUP), timeout=20)
    finally:
        s.close()
    missing = sorted(set(sent) - set(got))
    assert not missing, f"{len(missing)} of {len(sent)} queries unanswered"
    assert first_blocked is not None and first_blocked >= hup_at, first_blocked
    late = [i for i in got if i > first_blocked and not blocked(got[i])]
    assert not late, f"answered again after the reload blocked it: {late[:10]}"
    assert dw.wait_stderr("reloaded")
    got_rows = rows(dw, 1)
    assert got_rows and all(r == (SECURITY, "shop.test", "security-team")
                            for r in got_rows), got_rows[:5]


def cli(*args):
    return subprocess.run([harness._resolve_bin(), *args], capture_output=True,
                          text=True, timeout=60)


def test_lookup_for_a_client(workdir, blocklist):
    bl = blocklist(CATEGORIES, name="policies.yaml")
    cfg = harness.merge({"upstreams": ["127.0.0.1:9"],
                         "log": {"database": str(workdir / "a.db")},
                         "blocklist": {"files": [str(bl)]}}, policies())
    path = workdir / "c.yaml"
    path.write_text(harness.to_yaml(cfg))
    r = cli("lookup", "-c", str(path), "--client", GUEST, "shop.test", "adult.test")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"client {GUEST}: policy guests"
    assert lines[1] == "shop.test allowed"
    assert lines[2].startswith("adult.test blocked rule=adult.test category=adult")
    r = cli("lookup", "-c", str(path), "--client", DEFAULT, "shop.test")
    assert r.stdout.splitlines()[0] == f"client {DEFAULT}: policy (default: every category)"
    assert r.stdout.splitlines()[1].startswith("shop.test blocked")
    r = cli("lookup", "-c", str(path), "--client", "not-an-address", "shop.test")
    assert r.returncode == 2


def test_policy_naming_unknown_category_is_an_error(workdir, blocklist):
    bl = blocklist(CATEGORIES, name="policies.yaml")
    cfg = harness.merge({"upstreams": ["127.0.0.1:9"],
                         "log": {"database": str(workdir / "a.db")},
                         "blocklist": {"files": [str(bl)]}},
                        policies(guest_cats=["adult", "adlut"]))
    path = workdir / "c.yaml"
    path.write_text(harness.to_yaml(cfg))
    r = cli("check", "-c", str(path))
    assert r.returncode == 1
    assert "configuration valid" not in r.stdout
    assert 'policy "guests": no category "adlut" in the blocklists' in r.stderr
    assert f"{path}:" in r.stderr

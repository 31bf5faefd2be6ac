"""Fixtures for dnswarden's end-to-end tests.

  nsd_upstream     a started NSD serving example.test. (harness.zone_text());
                   .server "127.0.0.1:PORT", .query(), .stop() mid-test
  nsd_shared       the same, one for the whole session: never stop it
  pg_shared        a started PostgreSQL 15 (pgserver.PgServer), one for the
                   whole session: never stop it; .createdb() one per test
  fake_upstream    a started fakeupstream.FakeUpstream (scriptable, records
                   every query it receives)
  fake_upstream2   a second, independent one
  dead_port        a harness.DeadPort: bound, never answers (.server)
  dnswarden        factory: dnswarden(upstreams, overrides=None, ipv6=True,
                   timeout_ms=300, blocklists=None) -> a started
                   harness.Dnswarden; stopped at teardown, and the test fails
                   if the daemon crashed, hung on SIGTERM or printed a
                   sanitizer report
  blocklist        factory: blocklist(categories, allow=None, name=...) -> path
  workdir          a world-readable scratch directory (the daemon may drop
                   privileges when run as root)

The binary is $DNSWARDEN_BIN, default <repo>/build/resolver/dnswarden.
"""

import itertools
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from fakeupstream import FakeUpstream  # noqa: E402


@pytest.fixture
def workdir():
    d = Path(tempfile.mkdtemp(prefix="dnswarden-e2e-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _nsd_close(nsd):
    if nsd.proc and nsd.proc.poll() is None:
        nsd.proc.terminate()
        try:
            nsd.proc.wait(10)
        except Exception:
            nsd.proc.kill()


@pytest.fixture
def nsd_upstream(workdir):
    """A fresh NSD for this test; the test may stop it."""
    nsd = harness.Nsd(workdir / "nsd")
    nsd.start()
    yield nsd
    _nsd_close(nsd)


@pytest.fixture(scope="session")
def nsd_shared():
    """One NSD for the whole run, for tests that do not stop it."""
    d = Path(tempfile.mkdtemp(prefix="dnswarden-e2e-nsd-"))
    nsd = harness.Nsd(d)
    nsd.start()
    yield nsd
    _nsd_close(nsd)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_shared():
    """One PostgreSQL for the whole run, for tests that do not stop it."""
    import pgserver
    s = pgserver.started()
    yield s
    s.close()


def _fake():
    f = FakeUpstream().start()
    return f


@pytest.fixture
def fake_upstream():
    f = _fake()
    yield f
    f.close()


@pytest.fixture
def fake_upstream2():
    f = _fake()
    yield f
    f.close()


@pytest.fixture
def dead_port():
    d = harness.DeadPort()
    yield d
    d.close()


@pytest.fixture
def dead_port2():
    d = harness.DeadPort()
    yield d
    d.close()


@pytest.fixture
def blocklist(workdir):
    counter = itertools.count()

    def make(categories, allow=None, name=None):
        name = name or f"blocklist{next(counter)}.yaml"
        return harness.write_blocklist(workdir / name, categories, allow)
    return make


def _check_teardown(started):
    problems = []
    for d in started:
        d.close()
        for p in d.problems():
            problems.append(f"dnswarden in {d.dir}: {p}")
    if problems:
        tails = "\n\n".join(d.stderr()[-6000:] for d in started)
        pytest.fail("\n".join(problems) + "\n--- stderr ---\n" + tails, pytrace=False)


@pytest.fixture
def dnswarden(workdir):
    started = []
    counter = itertools.count()

    def start(upstreams, overrides=None, *, ipv6=True, timeout_ms=300, blocklists=None,
              env=None, start_timeout=15.0, until_serving=True):
        d = harness.Dnswarden(workdir / f"dnswarden{next(counter)}", upstreams,
                              overrides=overrides, ipv6=ipv6, timeout_ms=timeout_ms,
                              blocklists=blocklists, env=env)
        started.append(d)
        d.start(start_timeout, until_serving=until_serving)
        return d

    yield start
    _check_teardown(started)


@pytest.fixture(scope="module")
def module_dnswarden():
    """Like dnswarden, but the daemon is shared by the tests of a module that
    pass the same arguments: a test gets the running one, or a new one if an
    earlier test killed it. Tests using it should check dw.running() and
    dw.sanitizer_marks(since) themselves; the module's last teardown checks
    the rest."""
    base = Path(tempfile.mkdtemp(prefix="dnswarden-e2e-mod-"))
    base.chmod(0o755)
    started = []
    current = {}
    counter = itertools.count()

    def get(upstreams, overrides=None, *, ipv6=True, timeout_ms=300, blocklists=None):
        key = repr(([u if isinstance(u, str) else u.server for u in upstreams],
                    overrides, ipv6, timeout_ms, blocklists))
        d = current.get(key)
        if d is not None and d.running():
            return d
        d = harness.Dnswarden(base / f"dnswarden{next(counter)}", upstreams,
                              overrides=overrides, ipv6=ipv6, timeout_ms=timeout_ms,
                              blocklists=blocklists)
        started.append(d)
        current[key] = d
        d.start()
        return d

    yield get
    try:
        _check_teardown(started)
    finally:
        shutil.rmtree(base, ignore_errors=True)

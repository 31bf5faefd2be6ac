"""Fixtures for dnswarden's end-to-end tests.

  nsd_upstream     a started NSD serving example.test. (harness.zone_text());
                   .server "127.0.0.1:PORT", .query(), .stop() mid-test
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


@pytest.fixture
def nsd_upstream(workdir):
    nsd = harness.Nsd(workdir / "nsd")
    nsd.start()
    yield nsd
    if nsd.proc and nsd.proc.poll() is None:
        nsd.proc.terminate()
        try:
            nsd.proc.wait(10)
        except Exception:
            nsd.proc.kill()


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


@pytest.fixture
def dnswarden(workdir):
    started = []
    counter = itertools.count()

    def start(upstreams, overrides=None, *, ipv6=True, timeout_ms=300, blocklists=None,
              env=None, start_timeout=15.0):
        d = harness.Dnswarden(workdir / f"dnswarden{next(counter)}", upstreams,
                              overrides=overrides, ipv6=ipv6, timeout_ms=timeout_ms,
                              blocklists=blocklists, env=env)
        started.append(d)
        d.start(start_timeout)
        return d

    yield start
    problems = []
    for d in started:
        d.close()
        for p in d.problems():
            problems.append(f"dnswarden in {d.dir}: {p}")
    if problems:
        tails = "\n\n".join(d.stderr()[-6000:] for d in started)
        pytest.fail("\n".join(problems) + "\n--- stderr ---\n" + tails, pytrace=False)

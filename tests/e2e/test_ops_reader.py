"""Issue 18: the pseudonym key kept from the readers. The daemon reads its
key from log.pseudonym_key_file; HR runs `report` and `log` with a reader
configuration (log: and clients: only: no key, no upstreams) or with
--database FILE and no configuration, and gets the same counts. Also the
log filters for imported rows (--category, --rule) and the line saying
which filter matched nothing."""

import os
import shutil
import subprocess

import dns.rcode
import pytest

import harness

KEY = "0123456789abcdef-a-long-secret"


def run(*args, ok=True):
    res = subprocess.run([harness._resolve_bin(), *args], capture_output=True, text=True,
                         timeout=60)
    if ok:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


@pytest.fixture
def pseudonym_daemon(dnswarden, blocklist, workdir):
    """A daemon that logs pseudonyms with its key in a file of its own, and
    a few blocked rows from two clients: 127.0.0.1 and ::1 (named by
    clients:)."""
    key = workdir / "pseudonym.key"
    key.write_text(KEY + "\n")
    key.chmod(0o400)   # the daemon reads it before the privilege drop
    bl = blocklist({"commercial-sex": {"Example Escorts": ["escorts.test"],
                                       "Other Site": ["other.test"]}})
    dw = dnswarden(["127.0.0.1:9"], {
        "log": {"client_identity": "pseudonym", "pseudonym_key_file": str(key)},
        "clients": [{"network": "::1/128", "name": "v6-desk"}],
    }, blocklists=[bl])
    for name, family in (("www.escorts.test", 4), ("escorts.test", 6),
                         ("www.other.test", 4), ("a.other.test", 4)):
        r = dw.query_msg(harness.make_query(name), family=family)
        assert r.rcode() == dns.rcode.NXDOMAIN
    # Rows reach the database within two seconds; all four, then read.
    assert harness.wait_for(lambda: _rows(dw) == 4, "four rows written")
    return dw


def _rows(dw):
    res = run("log", "--database", str(dw.database), "--limit", "0", "--format", "csv",
              ok=False)
    return max(len(res.stdout.splitlines()) - 1, 0) if res.returncode == 0 else -1


def reader_config(dw, path):
    """HR's file: the log's database and the client names, nothing else."""
    path.write_text(harness.to_yaml({
        "log": {"database": str(dw.database), "client_identity": "pseudonym"},
        "clients": [{"network": "::1/128", "name": "v6-desk"}],
    }))
    return path


def test_key_file_pseudonymises_rows(pseudonym_daemon):
    dw = pseudonym_daemon
    out = run("log", "-c", str(dw.config_path), "--format", "csv").stdout
    assert "127.0.0.1" not in out and "::1" not in out, out
    assert "v6-desk" in out
    # With the key (the daemon's configuration), --client takes an address.
    res = run("log", "-c", str(dw.config_path), "--client", "127.0.0.1", "--format", "csv")
    assert len(res.stdout.splitlines()) == 1 + 3, res.stdout


@pytest.mark.parametrize("cmd,args", [
    ("report", ["--by", "client"]),
    ("report", ["--by", "site", "--format", "csv"]),
    ("log", ["--format", "csv"]),
])
def test_reader_config_without_key_gives_the_same_output(pseudonym_daemon, workdir,
                                                         cmd, args):
    dw = pseudonym_daemon
    reader = reader_config(dw, workdir / "reader.yaml")
    full = run(cmd, "-c", str(dw.config_path), *args)
    hr = run(cmd, "-c", str(reader), *args)
    assert hr.stdout == full.stdout
    assert hr.stderr == "", hr.stderr
    # Without any configuration: the same, as each row keeps its client's name.
    bare = run(cmd, "--database", str(dw.database), *args)
    assert bare.stdout == full.stdout


def test_reader_as_another_user_needs_no_key(pseudonym_daemon, workdir):
    """HR's user can read the database but neither the key (0400 root)
    nor the daemon's configuration (0600 here), and still gets the report."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the reader as another user")
    dw = pseudonym_daemon
    reader = reader_config(dw, workdir / "reader.yaml")
    reader.chmod(0o644)
    dw.config_path.chmod(0o600)
    full = run("report", "-c", str(dw.config_path), "--by", "client")

    def as_nobody():
        import pwd
        pw = pwd.getpwnam("nobody")
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    # A copy where nobody can reach it: the build tree may sit below a
    # folder closed to other users (a CI checkout under a 0700 home).
    binary = workdir / "dnswarden-reader"
    shutil.copy2(harness._resolve_bin(), binary)
    binary.chmod(0o755)
    for args in (["-c", str(reader)], ["--database", str(dw.database)]):
        res = subprocess.run([str(binary), "report", *args, "--by", "site"],
                             capture_output=True, text=True, timeout=60,
                             preexec_fn=as_nobody)
        assert res.returncode == 0, res.stderr
    res = subprocess.run([str(binary), "report", "-c", str(reader), "--by",
                          "client"], capture_output=True, text=True, timeout=60,
                         preexec_fn=as_nobody)
    assert res.returncode == 0 and res.stdout == full.stdout, res.stderr
    # The daemon's own configuration is closed to that user.
    res = subprocess.run([str(binary), "report", "-c", str(dw.config_path)],
                         capture_output=True, text=True, timeout=60, preexec_fn=as_nobody)
    assert res.returncode == 1 and "Permission denied" in res.stderr


def test_reader_client_filter_without_key_says_so(pseudonym_daemon, workdir):
    dw = pseudonym_daemon
    reader = reader_config(dw, workdir / "reader.yaml")
    res = run("log", "-c", str(reader), "--client", "127.0.0.1", ok=False)
    assert "without the pseudonym key --client matches pseudonyms and names" in res.stderr
    named = run("log", "-c", str(reader), "--client", "v6-desk", "--format", "csv")
    assert len(named.stdout.splitlines()) == 2, named.stdout


# --- log --category, --rule, and the filter that matched nothing ----------------


def test_log_category_and_rule_for_imported_rows(dnswarden, workdir):
    hosts = workdir / "ads.hosts"
    hosts.write_text("0.0.0.0 tracker.test\n0.0.0.0 pixel.test\n")
    lists = workdir / "lists.yaml"
    lists.write_text(harness.to_yaml({"categories": [
        {"name": "ads", "import": [{"file": str(hosts), "format": "hosts"}]},
        {"name": "commercial-sex", "sites": [{"name": "Escorts",
                                              "domains": ["escorts.test"]}]}]}))
    lists.chmod(0o644)
    hosts.chmod(0o644)
    dw = dnswarden(["127.0.0.1:9"], blocklists=[lists])
    for name in ("tracker.test", "pixel.test", "pixel.test", "www.escorts.test"):
        assert dw.query(name).rcode() == dns.rcode.NXDOMAIN
    cfg = str(dw.config_path)
    assert harness.wait_for(
        lambda: len(run("log", "-c", cfg, "--format", "csv").stdout.splitlines()) == 5,
        "four rows written")
    ads = run("log", "-c", cfg, "--category", "ads", "--format", "csv").stdout.splitlines()
    assert len(ads) == 1 + 3 and not any("escorts" in ln for ln in ads), ads
    px = run("log", "-c", cfg, "--rule", "pixel.test", "--format", "csv").stdout.splitlines()
    assert len(px) == 1 + 2 and all("pixel.test" in ln for ln in px[1:]), px
    # A filter that matches nothing says which, on stderr; the output stays data.
    res = run("log", "-c", cfg, "--category", "ads", "--rule", "escorts.test",
              "--format", "csv")
    assert len(res.stdout.splitlines()) == 1, res.stdout
    assert "escorts.test" in res.stderr and res.stderr.startswith("dnswarden log: "), \
        res.stderr
    res = run("log", "-c", cfg, "--client", "10.9.9.9")
    assert "client 10.9.9.9" in res.stderr, res.stderr

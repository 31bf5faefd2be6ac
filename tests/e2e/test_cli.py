"""The command line: `check`, `--version`, `help`, usage errors and the
file:line:column messages for bad configurations."""

import re
import subprocess
import textwrap

import pytest

import harness

GOOD = """\
server:
  listen: ["127.0.0.1:{port}", "[::1]:{port}"]
  allow_clients: ["127.0.0.0/8", "::1/128"]
upstreams:
  - "127.0.0.1:5300"
upstream_timeout_ms: 300
cache:
  max_entries: 1000
log:
  database: "{dir}/db/attempts.db"
"""


def run(*args, timeout=20):
    return subprocess.run([harness._resolve_bin(), *args], capture_output=True, text=True,
                          timeout=timeout)


def write(workdir, text, name="dnswarden.yaml"):
    p = workdir / name
    p.write_text(textwrap.dedent(text).format(port=harness.free_port(), dir=workdir))
    return p


def message_lines(res):
    return [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip()]


def assert_diagnostics(res, path, line, col):
    """Exit 1, the error at path:line:col, and every line a diagnostic."""
    out = res.stdout + res.stderr
    assert res.returncode == 1, f"exit {res.returncode}:\n{out}"
    lines = message_lines(res)
    pat = re.compile(re.escape(str(path)) + r"(:\d+:\d+)?: \S.*")
    assert lines, "no message"
    assert all(pat.fullmatch(ln) for ln in lines), \
        f"lines not in the form FILE:LINE:COLUMN: message:\n{out}"
    assert any(ln.startswith(f"{path}:{line}:{col}: ") for ln in lines), \
        f"no message at {line}:{col}:\n{out}"


def test_check_good_config(workdir):
    p = write(workdir, GOOD)
    res = run("check", "-c", str(p))
    assert res.returncode == 0, res.stdout + res.stderr


def test_check_shipped_config():
    p = harness.REPO / "config" / "dnswarden.yaml"
    assert p.exists(), "config/dnswarden.yaml is missing"
    res = run("check", "-c", str(p))
    assert res.returncode == 0, res.stdout + res.stderr


def test_check_unknown_key(workdir):
    p = write(workdir, GOOD.replace("  allow_clients", "  bogus_key: 1\n  allow_clients"))
    assert_diagnostics(run("check", "-c", str(p)), p, 3, 3)


def test_check_unknown_top_level_key(workdir):
    p = write(workdir, GOOD + "upstream:\n  - \"127.0.0.1:53\"\n")
    assert_diagnostics(run("check", "-c", str(p)), p, 11, 1)


def test_check_bad_upstream_port(workdir):
    p = write(workdir, GOOD.replace('"127.0.0.1:5300"', '"127.0.0.1:99999"'))
    assert_diagnostics(run("check", "-c", str(p)), p, 5, 5)


def test_check_bad_listen_port(workdir):
    p = write(workdir, GOOD.replace('  listen: ["127.0.0.1:{port}", "[::1]:{port}"]',
                                    '  listen:\n    - "127.0.0.1:70000"'))
    assert_diagnostics(run("check", "-c", str(p)), p, 3, 7)


def test_check_bad_address(workdir):
    p = write(workdir, GOOD.replace('"127.0.0.1:5300"', '"300.1.2.3:53"'))
    assert_diagnostics(run("check", "-c", str(p)), p, 5, 5)


def test_check_wrong_type(workdir):
    p = write(workdir, GOOD.replace("upstream_timeout_ms: 300", "upstream_timeout_ms: soon"))
    assert_diagnostics(run("check", "-c", str(p)), p, 6, 22)


def test_check_yaml_syntax_error(workdir):
    p = write(workdir, GOOD.replace('  allow_clients: ["127.0.0.0/8", "::1/128"]',
                                    '  allow_clients: ["127.0.0.0/8", "::1/128"'))
    res = run("check", "-c", str(p))
    assert res.returncode == 1
    lines = message_lines(res)
    assert lines and all(re.fullmatch(re.escape(str(p)) + r":\d+:\d+: \S.*", ln)
                         for ln in lines), res.stdout + res.stderr


def test_check_missing_file(workdir):
    p = workdir / "absent.yaml"
    res = run("check", "-c", str(p))
    assert res.returncode == 1, res.stdout + res.stderr
    assert str(p) in res.stdout + res.stderr


def test_serve_refuses_bad_config(workdir):
    p = write(workdir, GOOD.replace("  allow_clients", "  bogus_key: 1\n  allow_clients"))
    res = run("serve", "-c", str(p), timeout=20)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"{p}:3:3: " in res.stderr


def test_version():
    res = run("--version")
    assert res.returncode == 0
    m = re.search(r"version:\s*'([^']+)'", (harness.REPO / "meson.build").read_text())
    assert m and m.group(1) in res.stdout, res.stdout


@pytest.mark.parametrize("args", [["help"], ["help", "serve"], ["help", "check"],
                                  ["help", "report"], ["help", "log"]])
def test_help(args):
    res = run(*args)
    assert res.returncode == 0
    # "help" alone lists every command; "help COMMAND" gives its usage.
    for word in (["serve", "check", "lookup", "report", "log"] if len(args) == 1
                 else [f"dnswarden {args[1]}"]):
        assert word in res.stdout, res.stdout


def test_help_unknown_command():
    res = run("help", "frobnicate")
    assert res.returncode == 2
    assert "frobnicate" in res.stderr


@pytest.mark.parametrize("args", [["frobnicate"], ["check", "--no-such-flag"],
                                  ["serve", "-c"], []])
def test_usage_errors_exit_2(args):
    res = run(*args)
    assert res.returncode == 2, f"{args}: exit {res.returncode}"
    assert res.stderr.strip(), "no usage message on stderr"


def test_lookup_prints_its_answer_and_one_line_of_warnings(workdir):
    """Two lists that share names and carry junk give check many warnings;
    lookup prints its answer and at most one line saying how many there
    are (issue 11), not every warning of every list before it."""
    (workdir / "one.txt").write_text("www.shared.example\nnot a name line\n"
                                     "also not one\nonly-one.example\n")
    (workdir / "two.txt").write_text("www.shared.example\nbad line here\n")
    (workdir / "lists.yaml").write_text(textwrap.dedent("""\
        categories:
          - name: first
            sites:
              - { name: One, domains: [one.example] }
            import:
              - { file: one.txt, format: domains }
          - name: second
            sites:
              - { name: Two, domains: [two.example] }
            import:
              - { file: two.txt, format: domains }
        """))
    p = write(workdir, GOOD + 'blocklist:\n  files: ["lists.yaml"]\n')
    check = run("check", "-c", str(p))
    warnings = [ln for ln in check.stderr.splitlines() if ": warning: " in ln]
    assert check.returncode == 0 and len(warnings) >= 4, check.stdout + check.stderr
    res = run("lookup", "-c", str(p), "www.shared.example", "ok.example")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[0].startswith("www.shared.example blocked rule=")
    assert res.stdout.splitlines()[1] == "ok.example allowed"
    assert len(res.stdout.splitlines()) == 2
    assert res.stderr.splitlines() == [
        f"{len(warnings)} warnings loading {p} and its blocklists: "
        f"dnswarden check -c {p} shows them"], res.stderr
    # Without warnings, nothing but the answer.
    q = write(workdir, GOOD, name="plain.yaml")
    res = run("lookup", "-c", str(q), "ok.example")
    assert res.stdout == "ok.example allowed\n" and res.stderr == ""


def test_check_tab_in_config_indentation(workdir):
    """A tab where YAML wants indentation is named as such, at its position,
    instead of libyaml's "cannot start any token"."""
    p = write(workdir, GOOD.replace("  allow_clients:", "\tallow_clients:"))
    res = run("check", "-c", str(p))
    assert_diagnostics(res, p, 3, 1)
    assert "tabs are not allowed for indentation" in res.stdout + res.stderr


def test_check_tab_in_blocklist_indentation(workdir):
    lst = workdir / "lists.yaml"
    lst.write_text("sites:\n  - name: Example\n  \tdomains: [example.com]\n")
    p = write(workdir, GOOD + 'blocklist:\n  files: ["lists.yaml"]\n')
    res = run("check", "-c", str(p))
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert f"{lst}:3:3: tabs are not allowed for indentation" in out, out


def test_check_config_is_a_directory(workdir):
    res = run("check", "-c", str(workdir))
    assert res.returncode == 1
    assert message_lines(res) == [f"{workdir}: is a directory, not a YAML file"], \
        res.stdout + res.stderr

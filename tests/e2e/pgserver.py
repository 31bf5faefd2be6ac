"""A real PostgreSQL 15 for the central-log tests (tests/e2e/test_central.py).

initdb into a temporary folder as an unprivileged user (nobody when the
tests run as root: PostgreSQL refuses to run as root), pg_ctl start on a
loopback port with its Unix socket in that folder, and a password role
"dw" (scram-sha-256 over TCP) that the daemons log in as.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import harness

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "dw-secret"


def available() -> str:
    """'' when PostgreSQL 15 is installed, else why not."""
    if not (PG_BIN / "initdb").exists():
        return f"{PG_BIN}/initdb is missing (apt-get install postgresql-15)"
    return ""


def started():
    """A new, started PgServer; the test fails when PostgreSQL 15 is not
    installed (CI installs it, scripts/deps.sh: never a silent skip)."""
    import pytest
    why = available()
    if why:
        pytest.fail(why)
    return PgServer().init()


class PgServer:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="dnswarden-e2e-pg-"))
        self.dir.chmod(0o755)
        self.data = self.dir / "data"
        self.port = harness.free_port()
        self.user = None
        if os.geteuid() == 0:
            self.user = "nobody"
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    def _run(self, *args, check=True, input=None, timeout=60):
        cmd = [str(a) for a in args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, check=check,
                              input=input, timeout=timeout, cwd=self.dir)

    def init(self):
        self._run(PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.dir}'\nfsync = off\n"
                    "synchronous_commit = off\nfull_page_writes = off\n"
                    "max_connections = 50\nshared_buffers = 64MB\n")
        self.start()
        self.psql("postgres", f"CREATE ROLE dw LOGIN PASSWORD '{PASSWORD}'")
        return self

    def start(self):
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.dir / "log.txt", "-w",
                  "-t", "30", "start")

    def stop(self, mode="fast"):
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def close(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, db, sql, check=True):
        """Run sql as the superuser over the Unix socket; rows as lists."""
        res = self._run("psql", "-h", self.dir, "-p", self.port, "-U", "postgres", "-d", db,
                        "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t", "-c", sql, check=False)
        if check and res.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {res.stderr}")
        return [line.split("\t") for line in res.stdout.splitlines() if line]

    def session(self, db):
        """A psql session as the superuser that runs what is written to its
        standard input, line by line (for a lock held across the test)."""
        cmd = ["psql", "-h", str(self.dir), "-p", str(self.port), "-U",
               "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-q"]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--"] + cmd
        return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=self.dir)

    def chown(self, path):
        """Give path to the user PostgreSQL runs as (a tablespace's folder)."""
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def createdb(self, name):
        self.psql("postgres", f"CREATE DATABASE {name} OWNER dw")
        return name

    def conninfo(self, db, password=PASSWORD):
        return (f"host=127.0.0.1 port={self.port} dbname={db} user=dw "
                f"password={password} connect_timeout=3")

    def wait_up(self, timeout=30.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._run(PG_BIN / "pg_isready", "-h", "127.0.0.1", "-p", self.port,
                         check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not come back")

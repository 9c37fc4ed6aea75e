"""A throw-away PostgreSQL cluster on 127.0.0.1 for the tests.

``initdb`` and ``postgres`` refuse to run as root, and CI runs as root: the
cluster then runs as the unprivileged ``postgres`` system user that Debian's
``postgresql`` package creates.
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

from .network import free_port

SUPERUSER = "postgres"


def postgres_bindir():
    """Return the bin directory of the newest PostgreSQL server installed."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parent.parent.name),
    )
    if not candidates:
        raise RuntimeError(
            "no PostgreSQL server found under /usr/lib/postgresql; "
            "install it with: apt-get install postgresql"
        )
    return Path(candidates[-1]).parent


class PostgresCluster:
    """One cluster in *basedir*, trusting every local connection."""

    def __init__(self, basedir):
        self.basedir = Path(basedir)
        self.datadir = self.basedir / "data"
        self.logfile = self.basedir / "postgres.log"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.bindir = postgres_bindir()
        self.run_as = SUPERUSER if os.geteuid() == 0 else None

    def _command(self, *args):
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return command

    def _run(self, *args):
        subprocess.run(self._command(*args), check=True, capture_output=True, timeout=120)

    def init(self):
        self._prepare_basedir()
        self._run(
            "initdb", "-D", str(self.datadir), "-U", SUPERUSER, "-A", "trust",
            "-E", "UTF8", "--locale=C.UTF-8",
        )
        self._append_settings()

    def _prepare_basedir(self):
        self.basedir.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            account = pwd.getpwnam(self.run_as)
            os.chown(self.basedir, account.pw_uid, account.pw_gid)

    def _append_settings(self, extra=""):
        # Later lines win: a standby's copy of the primary's settings is overridden.
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write(
                f"listen_addresses = '{self.host}'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.basedir}'\n"
                "fsync = off\n"
                "max_connections = 100\n"
                f"{extra}"
            )

    def init_standby(self, primary, name):
        """Make this cluster a streaming standby of *primary*, named *name*.

        pg_basebackup copies the primary and writes the connection settings
        (``-R``). The standby streams through the replication slot *name*,
        which keeps the primary's WAL while the standby is away. It reports
        itself under *name* too (``cluster_name``).
        """
        self._prepare_basedir()
        self._run(
            "pg_basebackup", "-h", primary.host, "-p", str(primary.port), "-U", SUPERUSER,
            "-D", str(self.datadir), "-R", "-C", "-S", name, "-X", "stream", "-c", "fast",
        )
        self._append_settings(f"cluster_name = '{name}'\n")

    def start(self):
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w", "start")

    def stop(self):
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def is_running(self):
        result = subprocess.run(
            self._command("pg_ctl", "-D", str(self.datadir), "status"), capture_output=True
        )
        return result.returncode == 0

    def postmaster_pid(self):
        return int((self.datadir / "postmaster.pid").read_text().split()[0])

    def freeze(self):
        """Stop the postmaster with SIGSTOP: connections are accepted by the
        kernel but never served, as with a hung server."""
        os.kill(self.postmaster_pid(), signal.SIGSTOP)

    def thaw(self):
        os.kill(self.postmaster_pid(), signal.SIGCONT)

    def connect(self, dbname="postgres"):
        import psycopg2

        cnx = psycopg2.connect(
            host=self.host, port=self.port, user=SUPERUSER, dbname=dbname, connect_timeout=5
        )
        cnx.autocommit = True
        return cnx

    def destroy(self):
        if self.is_running():
            self.stop()
        shutil.rmtree(self.basedir, ignore_errors=True)

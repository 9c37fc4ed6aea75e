"""Debian's Apache 2.4 run from a scratch copy of /etc/apache2.

The copy keeps Debian's layout and enabled modules. Its envvars file points
the run, lock and log directories into the work directory, its ports.conf
opens no port, and no site is enabled until a test adds one, so Apache
listens only on the ports of the tested site. Modules and sites are enabled with
Debian's own a2enmod and a2ensite, whose state files also stay in the work
directory.
"""

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from .processes import stop_process_group, wait_for_port

APACHE = "/usr/sbin/apache2"
APACHECTL = "/usr/sbin/apache2ctl"
A2ENMOD = "/usr/sbin/a2enmod"
A2ENSITE = "/usr/sbin/a2ensite"
DEBIAN_CONFIG = Path("/etc/apache2")
DEBIAN_PACKAGE = "apache2"
RUN_USER = "www-data"
START_TIMEOUT = 20
STOP_TIMEOUT = 10
COMMAND_TIMEOUT = 60


class ScratchApache:
    """Apache configured under *workdir*, which must be readable by RUN_USER."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.confdir = self.workdir / "apache2"
        self.log_dir = self.workdir / "log"
        self.output_path = self.workdir / "apache2.out"
        self.process = None
        # What Debian's envvars file sets, pointed into the work directory.
        self.envvars = {
            "APACHE_RUN_USER": RUN_USER,
            "APACHE_RUN_GROUP": RUN_USER,
            "APACHE_PID_FILE": str(self.workdir / "run" / "apache2.pid"),
            "APACHE_RUN_DIR": str(self.workdir / "run"),
            "APACHE_LOCK_DIR": str(self.workdir / "lock"),
            "APACHE_LOG_DIR": str(self.log_dir),
            "LANG": "C",
        }
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "APACHE_CONFDIR": str(self.confdir),
            "APACHE_STATE_DIRECTORY": str(self.workdir / "state"),
            **self.envvars,
        }

    def prepare(self):
        """Copy Debian's configuration and make it open no port and serve no site."""
        shutil.copytree(DEBIAN_CONFIG, self.confdir, symlinks=True)
        for name in ("run", "lock", "log", "state"):
            (self.workdir / name).mkdir()
        # Apache's children open the lock files after they become RUN_USER.
        user = pwd.getpwnam(RUN_USER)
        os.chown(self.workdir / "lock", user.pw_uid, user.pw_gid)
        exports = "".join(f"export {name}={value}\n" for name, value in self.envvars.items())
        (self.confdir / "envvars").write_text(f"# Written by the test harness.\n{exports}")
        (self.confdir / "ports.conf").write_text("# No port: the tested site opens its own.\n")
        for site in (self.confdir / "sites-enabled").iterdir():
            site.unlink()
        # Without a global ServerName, apache2 -t warns that it cannot
        # determine the machine's name.
        (self.confdir / "conf-enabled" / "haops-test-servername.conf").write_text(
            "ServerName localhost\n"
        )

    def run_tool(self, *args):
        """Run a2enmod, a2ensite or apache2ctl on the copy and return its exit status and output."""
        result = subprocess.run(
            list(args),
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        return result.returncode, result.stdout + result.stderr

    def enable_modules(self, modules):
        status, output = self.run_tool(A2ENMOD, "-q", *modules)
        if status != 0:
            raise RuntimeError(f"a2enmod {' '.join(modules)} failed:\n{output}")

    def add_site(self, file_name, text):
        """Write *text* to sites-available/*file_name* and enable it with a2ensite."""
        (self.confdir / "sites-available" / file_name).write_text(text)
        status, output = self.run_tool(A2ENSITE, "-q", file_name.removesuffix(".conf"))
        if status != 0:
            raise RuntimeError(f"a2ensite {file_name} failed:\n{output}")

    def check_config(self):
        """Return the exit status and output of ``apache2ctl -t``."""
        return self.run_tool(APACHECTL, "-t")

    def start(self, port):
        """Start Apache in the foreground and wait until it listens on 127.0.0.1:*port*."""
        with open(self.output_path, "ab") as log:
            self.process = subprocess.Popen(
                [APACHE, "-d", str(self.confdir), "-DFOREGROUND"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for_port(self.process, port, START_TIMEOUT, self.logs)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        if self.process is None:
            return
        stop_process_group(self.process, STOP_TIMEOUT)
        self.process = None

    def logs(self):
        """Return Apache's output and error logs, for failure messages."""
        parts = []
        for path in (self.output_path, *sorted(self.log_dir.glob("*error.log"))):
            if path.exists():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

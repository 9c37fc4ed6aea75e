"""CubicWeb instances created with cubicweb-ctl and run as real processes.

Each instance lives in its own directory tree (``CW_MODE=user`` with the
instance, data and runtime directories under *root*), so tests never touch
the machine's own instances.
"""

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from .network import free_port, wait_for_http
from .processes import stop_process_group

CTL = [sys.executable, "-m", "cubicweb"]
TEST_CUBES_DIR = Path(__file__).parent.parent / "cubes"
START_TIMEOUT = 90
STOP_TIMEOUT = 30


def set_option(path, name, value):
    """Set *name* in an INI-like CubicWeb file, uncommenting it if needed."""
    text = Path(path).read_text()
    pattern = re.compile(rf"^#?{re.escape(name)}=.*$", re.MULTILINE)
    line = f"{name}={value}"
    if pattern.search(text):
        text = pattern.sub(lambda _match: line, text, count=1)
    else:
        text += f"\n{line}\n"
    Path(path).write_text(text)


class Instance:
    """One instance named *name* under *root*; *database* is ``sqlite`` or
    a PostgresCluster."""

    def __init__(self, root, name, cubes, database="sqlite"):
        self.root = Path(root)
        self.name = name
        self.cubes = cubes
        self.database = database
        self.port = free_port()
        self.process = None
        self.logfile = self.root / f"{name}.out"
        self.env = dict(os.environ)
        # CubicWeb's pyramid request asserts on URLs when this variable is set.
        self.env.pop("PYTEST_CURRENT_TEST", None)
        self.env.update(
            CW_MODE="user",
            CW_INSTANCES_DIR=str(self.root / "etc"),
            CW_INSTANCES_DATA_DIR=str(self.root / "data"),
            CW_RUNTIME_DIR=str(self.root / "run"),
            PYTHONPATH=os.pathsep.join(
                filter(None, [str(TEST_CUBES_DIR), os.environ.get("PYTHONPATH")])
            ),
        )
        self.apphome = self.root / "etc" / name
        self.conf = self.apphome / "all-in-one.conf"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def sqlite_path(self):
        return self.root / "data" / self.name / f"{self.name}.sqlite"

    def ctl(self, *args, check=True, timeout=300, input=None):
        """Run cubicweb-ctl with *args*, feeding it *input*, or nothing, on its standard input."""
        return subprocess.run(
            [*CTL, *args],
            env=self.env,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def create(self, options=None, create_database=True):
        """Create the instance and set *options*, then create its database if *create_database*."""
        for sub in ("etc", "data", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.ctl("create", self.cubes, self.name, "--automatic", "--no-db-create")
        sources = self.apphome / "sources"
        if self.database == "sqlite":
            set_option(sources, "db-driver", "sqlite")
            set_option(sources, "db-name", str(self.sqlite_path))
            set_option(sources, "db-user", "")
        else:
            set_option(sources, "db-driver", "postgres")
            set_option(sources, "db-host", self.database.host)
            set_option(sources, "db-port", str(self.database.port))
            set_option(sources, "db-user", "postgres")
            set_option(sources, "db-name", self.name.replace("-", "_"))
        self.configure(
            {
                "interface": "127.0.0.1",
                "log-file": str(self.root / f"{self.name}.log"),
                "pid-file": str(self.root / "run" / f"{self.name}.pid"),
                **(options or {}),
            }
        )
        if create_database:
            self.ctl("db-create", "--automatic", self.name)

    def configure(self, options):
        for name, value in options.items():
            set_option(self.conf, name, value)

    def use_database_sessions(self):
        """Store sessions as CWSession entities, as a multi-process site does."""
        pyramid_ini = self.apphome / "pyramid.ini"
        text = pyramid_ini.read_text()
        default = "  cubicweb.pyramid.default_session"
        if default not in text:
            raise RuntimeError(f"unexpected pyramid.ini layout in {pyramid_ini}")
        pyramid_ini.write_text(text.replace(default, "  cubicweb.pyramid.session"))

    def use_cubicweb_web_pages(self):
        """Let cubicweb-web render ``/<eid>`` and ``/file/<eid>``, edit forms and images included.

        A new instance's pyramid.ini includes CubicWeb's plain HTML entity
        pages, which serve those URLs to browsers, ignore ``vid`` and show no
        image. Its comments advise disabling them on sites that use
        cubicweb-web.
        """
        pyramid_ini = self.apphome / "pyramid.ini"
        line = "  cubicweb.pyramid.rest_api.include_html\n"
        text = pyramid_ini.read_text()
        if line not in text:
            raise RuntimeError(f"unexpected pyramid.ini layout in {pyramid_ini}")
        pyramid_ini.write_text(text.replace(line, "  # cubicweb.pyramid.rest_api.include_html\n"))

    def shell(self, script):
        """Run a Python *script* in ``cubicweb-ctl shell`` and return its output."""
        path = self.root / "script.py"
        path.write_text(script)
        return self.ctl("shell", self.name, str(path)).stdout

    def start(self, threads=8, command="start"):
        """Serve the instance with ``cubicweb-ctl start``, or with *command*."""
        self.configure({"port": str(self.port), "base-url": f"{self.url}/"})
        self.launch(threads, command)

    def launch(self, threads=8, command="start"):
        """Serve the instance as configured, on ``self.port``, with *command*."""
        log = open(self.logfile, "ab")
        self.process = subprocess.Popen(
            [*CTL, command, self.name, "--nb-threads", str(threads)],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_for_http(f"{self.url}/view?vid=monitor_hostname", START_TIMEOUT, self.process)

    def stop(self):
        if self.process is None:
            return
        stop_process_group(self.process, STOP_TIMEOUT)
        self.process = None

    def output(self):
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def sql(self, query, params=()):
        """Run *query* on the instance's database outside the instance."""
        if self.database == "sqlite":
            with sqlite3.connect(self.sqlite_path) as cnx:
                return cnx.execute(query, params).fetchall()
        cnx = self.database.connect(self.name.replace("-", "_"))
        try:
            with cnx.cursor() as cursor:
                cursor.execute(query.replace("?", "%s"), params)
                return cursor.fetchall() if cursor.description else []
        finally:
            cnx.close()


"""The site that the monitoring benchmark measures.

One PostgreSQL cluster and one instance process on 127.0.0.1, served by
``cubicweb-ctl haops-start``, with an anonymous user and sessions stored in
the database as a multi-process site stores them. Its cubes are haops, the
test cube (for ``haopstest_hold``, a request that keeps a pool connection
busy) and the benchmark cube under ``bench/cubes`` (the floor route and the
naive views).
"""

import json
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_CUBES_DIR = ROOT / "bench" / "cubes"
sys.path.insert(0, str(ROOT / "test"))
sys.path.insert(0, str(BENCH_CUBES_DIR))

from cubicweb_haopsbench.floor import FLOOR_PATH  # noqa: E402 (the cube lives under bench/cubes/)
from harness.instance import Instance  # noqa: E402 (the harness lives under test/)
from harness.postgres import PostgresCluster  # noqa: E402

CUBES = "haops,haopstest,haopsbench"
HTTP_TIMEOUT = 30
PID_LINE = re.compile(r"^pid: (\d+)$", re.MULTILINE)
RSS_LINE = re.compile(r"^VmRSS:\s+(\d+) kB$", re.MULTILINE)


class MonitoringSite:
    """The cluster and the instance, in a temporary directory.

    Call :meth:`start` first. :meth:`stop` stops and removes everything, also
    after a failed start.
    """

    floor_path = FLOOR_PATH

    def __init__(self, threads):
        self.threads = threads
        self.workdir = None
        self.cluster = None
        self.instance = None

    def start(self):
        self.workdir = Path(tempfile.mkdtemp(prefix="haops-bench-monitoring-"))
        # The cluster runs as the unprivileged postgres user, which must reach
        # its directory below.
        os.chmod(self.workdir, 0o755)
        self.cluster = PostgresCluster(self.workdir / "cluster")
        self.cluster.init()
        self.cluster.start()

        self.instance = Instance(self.workdir / "instance", "benchmon", CUBES, self.cluster)
        self.instance.env["PYTHONPATH"] = os.pathsep.join(
            [str(BENCH_CUBES_DIR), self.instance.env["PYTHONPATH"]]
        )
        self.instance.create({"anonymous-user": "anon", "anonymous-password": "anon"})
        self.instance.use_database_sessions()
        self.instance.start(self.threads, command="haops-start")

    def restart(self, options):
        """Stop the process, set the instance *options* and serve it again."""
        self.instance.stop()
        self.instance.configure(options)
        self.instance.start(self.threads, command="haops-start")

    def stop(self):
        try:
            if self.instance is not None:
                self.instance.stop()
        finally:
            if self.cluster is not None and self.cluster.datadir.exists():
                self.cluster.destroy()
            if self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def port(self):
        return self.instance.port

    def path(self, vid):
        return f"/view?vid={vid}"

    def url(self, path):
        return f"{self.instance.url}{path}"

    def fetch(self, path):
        """Return the status and body of *path*, also for a 503, because a
        check that is KO or UNKNOWN still sends its full document."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=HTTP_TIMEOUT) as response:
                return response.status, response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            if error.code != 503:
                raise
            with error:
                return error.code, error.read().decode("utf-8")

    def fetch_text(self, path):
        return self.fetch(path)[1]

    def log_text(self):
        """Return what the instance process has written to its output so far."""
        return self.instance.output()

    def session_rows(self):
        """Return the number of CWSession rows in the database."""
        return self.instance.sql("SELECT COUNT(*) FROM cw_cwsession")[0][0]

    def pool_connections(self):
        """Return the pool's connections in use and open, from the ``monitor`` JSON."""
        document = json.loads(self.fetch_text(self.path("monitor")))
        metrics = {
            metric["label"]: metric["value"]
            for metric in document["checks"]["pool"]["perfdata"]
        }
        return metrics["connections_in_use"], metrics["connections_open"]

    def server_pid(self):
        """Return the pid that serves the requests, checked against the one started."""
        match = PID_LINE.search(self.fetch_text(self.path("monitor_hostname")))
        if match is None or int(match.group(1)) != self.instance.process.pid:
            raise RuntimeError(
                f"monitor_hostname names another process than {self.instance.process.pid}"
            )
        return self.instance.process.pid

    def rss_kib(self):
        """Return the resident set size of the serving process, in KiB."""
        status = Path(f"/proc/{self.server_pid()}/status").read_text()
        return int(RSS_LINE.search(status).group(1))

"""Debian's HAProxy in the foreground, with a configuration given as text.

HAProxy writes nothing but its stats socket, which the configuration must
put in the work directory. The tests read the servers' states there.
"""

import csv
import io
import socket
import subprocess
import time
from pathlib import Path

from .processes import stop_process_group, wait_for_port

HAPROXY = "/usr/sbin/haproxy"
START_TIMEOUT = 20
STOP_TIMEOUT = 10
CHECK_TIMEOUT = 30


class HAProxy:
    """HAProxy running *config_text* from *workdir*, its frontend on 127.0.0.1:*port*."""

    def __init__(self, workdir, config_text, port, stats_socket):
        self.workdir = Path(workdir)
        self.config_path = self.workdir / "haproxy.cfg"
        self.output_path = self.workdir / "haproxy.out"
        self.config_text = config_text
        self.port = port
        self.stats_socket = stats_socket
        self.process = None

    def check_config(self):
        """Return the exit status and output of ``haproxy -c`` on the configuration."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text)
        result = subprocess.run(
            [HAPROXY, "-c", "-f", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT,
        )
        return result.returncode, result.stdout + result.stderr

    def start(self):
        status, output = self.check_config()
        if status != 0:
            raise RuntimeError(f"haproxy -c rejected {self.config_path}:\n{output}")
        with open(self.output_path, "ab") as log:
            # -db: stay in the foreground, in this process group.
            self.process = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for_port(self.process, self.port, START_TIMEOUT, self.output)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        if self.process is None:
            return
        stop_process_group(self.process, STOP_TIMEOUT)
        self.process = None

    def output(self):
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    def server_states(self, backend):
        """Return {server name: status} of *backend*, as ``show stat`` reports it (UP, DOWN...)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.stats_socket))
            sock.sendall(b"show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        text = b"".join(chunks).decode().lstrip("# ")
        return {
            row["svname"]: row["status"]
            for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def wait_for_states(self, backend, expected, timeout):
        """Return the states of *backend* once they match *expected*, or after *timeout* seconds."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.server_states(backend)
            matching = all(states.get(name) == state for name, state in expected.items())
            if matching or time.monotonic() >= deadline:
                return states
            time.sleep(0.2)

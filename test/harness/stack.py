"""A whole web server on 127.0.0.1, built with the cube's own commands.

PostgreSQL; an instance split by ``cubicweb-ctl haops-split`` into processes
served by ``cubicweb-ctl haops-start``; Squid and HAProxy running what
``cubicweb-ctl haops-config`` writes. Only the paths of logs, pid files and
sockets change, so that everything stays under one directory. ``make stack``
and the end-to-end tests both build it here.
"""

import re
from pathlib import Path

from .haproxy import HAProxy
from .instance import Instance
from .network import free_port, free_port_range
from .postgres import PostgresCluster
from .squid_accelerator import AcceleratorSquid

BACKEND = "squid_ports"
PROCESS_THREADS = 8


def relocate(text, replacements):
    """Return *text* with each line starting with a key of *replacements*
    replaced by its value, or removed when the value is None.

    Every key must match a line, so that a change in the generated
    configuration fails loudly here instead of writing outside the stack.
    """
    for directive, line in replacements.items():
        pattern = re.compile(rf"^([ \t]*){re.escape(directive)}\b.*$", re.MULTILINE)
        if not pattern.search(text):
            raise RuntimeError(f"no {directive!r} line in the generated configuration:\n{text}")
        replacement = "" if line is None else rf"\g<1>{line}"
        text = pattern.sub(replacement, text)
    return text


class Stack:
    """PostgreSQL, *processes* copies of instance *name*, Squid and HAProxy under *root*.

    *cubes* are the template's cubes, *options* extra options of its
    all-in-one.conf. With *database_sessions*, sessions are stored in the
    database (``cubicweb.pyramid.session``); else the instance keeps
    CubicWeb's default, a signed cookie.
    """

    def __init__(self, root, name="stack", processes=2, cubes="haops", options=None,
                 database_sessions=True):
        self.root = Path(root)
        self.name = name
        self.options = options or {}
        self.database_sessions = database_sessions
        self.postgres = PostgresCluster(self.root / "postgres")
        self.template = Instance(self.root, name, cubes, self.postgres)
        first = free_port_range(processes)
        self.process_ports = [first + index for index in range(processes)]
        self.squid_ports = []
        while len(self.squid_ports) < processes:
            port = free_port()
            if port not in self.process_ports + self.squid_ports:
                self.squid_ports.append(port)
        self.haproxy_port = free_port()
        self.copies = [
            Instance(self.root, f"{name}-{index}", cubes, self.postgres)
            for index in range(1, processes + 1)
        ]
        for copy, port in zip(self.copies, self.process_ports):
            copy.port = port
        self.squid = None
        self.haproxy = None

    @property
    def url(self):
        """The site's public URL: HAProxy's frontend."""
        return f"http://127.0.0.1:{self.haproxy_port}"

    def squid_url(self, index):
        """The URL of Squid's port for process *index*, from 1."""
        return f"http://127.0.0.1:{self.squid_ports[index - 1]}"

    def haproxy_server(self, index):
        """The name of the HAProxy server that reaches process *index* through Squid."""
        return f"web1_port{self.squid_ports[index - 1]}"

    def build(self):
        """Create the database, the template and its copies, and the proxies' configurations."""
        self.postgres.init()
        self.postgres.start()
        self.template.create(
            {
                "base-url": f"{self.url}/",
                "anonymous-user": "anon",
                "anonymous-password": "anon",
                **self.options,
            }
        )
        if self.database_sessions:
            self.template.use_database_sessions()
        self.template.use_cubicweb_web_pages()
        self.split()

        ports = ",".join(str(port) for port in self.squid_ports)
        squid_text = self.template.ctl(
            "haops-config", "squid", self.name, "--squid-ports", ports,
            "--squid-address", "127.0.0.1",
        ).stdout
        squid_dir = self.root / "squid"
        squid_text = relocate(
            squid_text,
            {
                "access_log": f"access_log stdio:{squid_dir}/access.log squid",
                "cache_log": f"cache_log stdio:{squid_dir}/cache.log",
                "pid_filename": f"pid_filename {squid_dir}/squid.pid",
                "coredump_dir": None,
            },
        )
        self.squid = AcceleratorSquid(squid_dir, squid_text, self.squid_ports)

        haproxy_text = self.template.ctl(
            "haops-config", "haproxy", self.name, "--squid-ports", ports,
            "--web-servers", "127.0.0.1", "--frontend-address", "127.0.0.1",
            "--frontend-port", str(self.haproxy_port),
        ).stdout
        haproxy_dir = self.root / "haproxy"
        stats_socket = haproxy_dir / "admin.sock"
        haproxy_text = relocate(
            haproxy_text,
            {
                # Logs to HAProxy's standard error, which the harness keeps.
                "log /dev/log": "log stderr format short local0",
                "chroot": None,
                "stats socket": f"stats socket {stats_socket} mode 600 level admin",
                "user": None,
                "group": None,
            },
        )
        self.haproxy = HAProxy(haproxy_dir, haproxy_text, self.haproxy_port, stats_socket)

    def split(self):
        """Run haops-split on the template; return its output."""
        return self.template.ctl(
            "haops-split", self.name, "--processes", str(len(self.copies)),
            "--base-port", str(self.process_ports[0]),
        ).stdout

    def start_process(self, index):
        self.copies[index - 1].launch(PROCESS_THREADS, "haops-start")

    def stop_process(self, index):
        self.copies[index - 1].stop()

    def start(self):
        for index in range(1, len(self.copies) + 1):
            self.start_process(index)
        self.squid.start()
        self.haproxy.start()

    def stop(self):
        for component in (self.haproxy, self.squid, *reversed(self.copies)):
            if component is not None:
                component.stop()

    def destroy(self):
        """Stop everything and remove the database cluster."""
        self.stop()
        self.postgres.destroy()

    def wait_for_servers(self, states, timeout):
        """Return HAProxy's server states once they match {process index: state}, or at *timeout*."""
        expected = {self.haproxy_server(index): state for index, state in states.items()}
        return self.haproxy.wait_for_states(BACKEND, expected, timeout)

"""Debian's Squid as a reverse-proxy cache on 127.0.0.1, in front of one instance.

The configuration is written from a few parameters and checked with
``squid -k parse`` before Squid starts. Squid runs in the foreground in its
own process group, caches in memory only and writes its configuration, logs
and pid file under one work directory, which the caller removes.
"""

import os
import pwd
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .network import free_port
from .processes import stop_process_group, wait_for_port

SQUID = "/usr/sbin/squid"
DEBIAN_PACKAGE = "squid"
START_TIMEOUT = 30
STOP_TIMEOUT = 10
PARSE_TIMEOUT = 30
# The user that Squid runs as when started by root.
SQUID_USER = "proxy"
# Also the name of the origin server in Squid's configuration and logs.
PEER_NAME = "haops_instance"

# One access log line per request: method, result code (TCP_MISS, TCP_MEM_HIT
# and so on), status sent to the client, status received from the instance
# ("-" when Squid did not contact it) and hierarchy code. The request URL
# comes last because it is the only field that may contain spaces.
LOG_FORMAT_NAME = "haops"
LOG_FORMAT = "%rm %Ss %>Hs %<Hs %Sh %ru"
# What Squid logs as the URL of a connection closed before any request.
PROBE_URL = "error:transaction-end-before-headers"


@dataclass(frozen=True)
class AccessLogEntry:
    method: str
    result: str
    status: int | None
    origin_status: int | None
    hierarchy: str
    url: str

    @property
    def hit(self):
        """True when Squid served the response from its cache without contacting the instance."""
        return "HIT" in self.result

    @property
    def path(self):
        """The URL without its scheme and authority: ``/file/1/raw/a.png``."""
        return re.sub(r"^[a-z]+://[^/]*", "", self.url)


def squid_missing_message():
    return (
        f"{SQUID} is missing: install the Debian package {DEBIAN_PACKAGE!r} "
        f"(apt-get install {DEBIAN_PACKAGE}, or `make system-packages`)"
    )


def _status(text):
    return int(text) if text.isdigit() and text != "000" else None


def parse_access_log(text):
    """Return the :class:`AccessLogEntry` records of an access log in LOG_FORMAT."""
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        method, result, status, origin_status, hierarchy, url = line.split(" ", 5)
        entries.append(
            AccessLogEntry(method, result, _status(status), _status(origin_status), hierarchy, url)
        )
    return entries


class Squid:
    """Squid listening on 127.0.0.1:*port* (a free one by default) as an
    accelerator for the HTTP server on 127.0.0.1:*origin_port*.

    *clients* is the network whose clients Squid serves. *workdir* is
    created if needed. Squid writes its configuration, logs, pid file and
    core files there.
    """

    def __init__(
        self,
        workdir,
        origin_port,
        port=None,
        cache_mem_mb=16,
        max_object_kb=1024,
        clients="127.0.0.1/32",
    ):
        self.workdir = Path(workdir)
        self.clients = clients
        self.origin_port = origin_port
        self.port = port or free_port()
        self.cache_mem_mb = cache_mem_mb
        self.max_object_kb = max_object_kb
        self.config_path = self.workdir / "squid.conf"
        self.access_log = self.workdir / "access.log"
        self.cache_log = self.workdir / "cache.log"
        self.pid_file = self.workdir / "squid.pid"
        self.output_path = self.workdir / "squid.out"
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def site(self):
        """The site's public host and port, Squid's own: Squid puts them in
        the URLs that it caches and logs, whatever Host the client sent."""
        return f"127.0.0.1:{self.port}"

    def config_text(self):
        lines = [
            "# Written by the cubicweb-haops test harness.",
            f"http_port 127.0.0.1:{self.port} accel defaultsite={self.site} no-vhost",
            f"cache_peer 127.0.0.1 parent {self.origin_port} 0 no-query no-digest"
            f" originserver name={PEER_NAME}",
            # Squid serves only loopback clients that request the site on the
            # port above. It reaches the instance through the peer, never directly.
            f"acl test_clients src {self.clients}",
            f"acl site_port localport {self.port}",
            "acl site dstdomain 127.0.0.1",
            "http_access allow test_clients site_port site",
            "http_access deny all",
            f"cache_peer_access {PEER_NAME} allow site",
            f"cache_peer_access {PEER_NAME} deny all",
            "never_direct allow all",
            # A small cache, in memory only: no cache_dir.
            f"cache_mem {self.cache_mem_mb} MB",
            f"maximum_object_size_in_memory {self.max_object_kb} KB",
            f"logformat {LOG_FORMAT_NAME} {LOG_FORMAT}",
            f"access_log stdio:{self.access_log} {LOG_FORMAT_NAME}",
            "buffered_logs off",
            "strip_query_terms off",
            f"cache_log stdio:{self.cache_log}",
            "cache_store_log none",
            "logfile_rotate 0",
            f"pid_filename {self.pid_file}",
            f"coredump_dir {self.workdir}",
            "netdb_filename none",
            "pinger_enable off",
            "icp_port 0",
            "htcp_port 0",
            # A fixed name, so that Squid does not resolve the machine's own,
            # and a name server on the loopback, so that any DNS query that
            # Squid still sends stays on this machine.
            "visible_hostname haops-test-squid",
            "dns_nameservers 127.0.0.1",
            "udp_incoming_address 127.0.0.1",
            "udp_outgoing_address 127.0.0.1",
            "shutdown_lifetime 1 second",
        ]
        if os.geteuid() == 0:
            lines.append(f"cache_effective_user {SQUID_USER}")
        return "\n".join(lines) + "\n"

    def write_config(self):
        """Write the configuration and make the work directory Squid's own."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        if os.geteuid() == 0:
            # Started by root, Squid opens its logs after it becomes SQUID_USER.
            user = pwd.getpwnam(SQUID_USER)
            for path in (self.workdir, *self.workdir.iterdir()):
                os.chown(path, user.pw_uid, user.pw_gid)
        return self.config_path

    def check_config(self):
        """Parse the configuration with Squid and raise RuntimeError with Squid's
        output if it rejects the file or complains about it."""
        result = subprocess.run(
            [SQUID, "-k", "parse", "-f", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PARSE_TIMEOUT,
        )
        # Squid 5.7 exits 0 after some complaints, such as the UPGRADE line
        # that it writes for an ACL type that was renamed.
        output = result.stdout + result.stderr
        if result.returncode != 0 or re.search(r"\b(FATAL|ERROR|WARNING|UPGRADE):", output):
            raise RuntimeError(
                f"squid -k parse rejected {self.config_path} (exit status"
                f" {result.returncode}):\n{output}"
            )

    def start(self):
        if shutil.which(SQUID) is None:
            raise RuntimeError(squid_missing_message())
        self.write_config()
        self.check_config()
        output = open(self.output_path, "ab")
        try:
            self.process = subprocess.Popen(
                [SQUID, "-N", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            output.close()
        try:
            wait_for_port(self.process, self.port, START_TIMEOUT, self.logs)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        """Stop Squid: SIGTERM, then SIGKILL if it is still there after STOP_TIMEOUT."""
        if self.process is None:
            return
        stop_process_group(self.process, STOP_TIMEOUT)
        self.process = None

    def logs(self):
        """Return Squid's own output and cache log, for error messages."""
        parts = []
        for path in (self.output_path, self.cache_log):
            if path.exists():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

    def access_log_entries(self):
        """Return the records of the access log written so far.

        The connections that :meth:`start` opens to see whether Squid
        listens send no request; their records are left out.
        """
        if not self.access_log.exists():
            return []
        entries = parse_access_log(self.access_log.read_text(errors="replace"))
        return [entry for entry in entries if entry.url != PROBE_URL]

    def wait_for_entries(self, count, since=0, matching=None, timeout=5):
        """Return the records after the first *since* that satisfy *matching*,
        once there are *count* of them or *timeout* seconds have passed.

        Squid writes a record once the response is sent, which may be a
        moment after the client has read it.
        """
        deadline = time.monotonic() + timeout
        while True:
            entries = [
                entry
                for entry in self.access_log_entries()[since:]
                if matching is None or matching(entry)
            ]
            if len(entries) >= count or time.monotonic() >= deadline:
                return entries
            time.sleep(0.05)

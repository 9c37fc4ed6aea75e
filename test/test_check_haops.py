"""check_haops, the Nagios plugin, against a real instance process on PostgreSQL."""

import http.server
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import run_instance
from harness.http import fetch

CHECK_HAOPS = Path(sys.executable).parent / "check_haops"
DB_TIMEOUT = 2
STATUS_LINE = re.compile(r"^HAOPS (OK|WARNING|CRITICAL|UNKNOWN) - [^\n|]+( \| [^\n]+)?$")


@pytest.fixture(scope="module")
def site(instance_root, postgres):
    """A pool of two connections, so that the pool's share is a percentage."""
    instance = run_instance(
        instance_root,
        "plugsite",
        "haops,haopstest",
        database=postgres,
        options={
            # The anonymous user lets the test cube's slow view hold connections.
            "anonymous-user": "anon",
            "anonymous-password": "anon",
            "connections-pool-max-size": "2",
            "haops-db-timeout": f"{DB_TIMEOUT}s",
        },
    )
    yield instance
    instance.stop()


def check_haops(*arguments, timeout=30):
    """Run the plugin as Nagios would; return its exit code and output."""
    completed = subprocess.run(
        [str(CHECK_HAOPS), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return completed.returncode, completed.stdout + completed.stderr


def against(site, *arguments):
    return check_haops("-H", "127.0.0.1", "-p", str(site.port), *arguments)


def test_all_ok_with_perfdata(site):
    code, output = against(site, "-C", "all")
    assert code == 0, output
    first_line = output.splitlines()[0]
    assert STATUS_LINE.match(first_line), output
    assert re.search(r"\bpool_usage=0(\.0)?%;", first_line), first_line
    assert re.search(r"\bconnections_in_use=0;", first_line), first_line
    assert re.search(r"\btime=[0-9.]+s;", first_line), first_line


@pytest.mark.parametrize("check", ["pool", "db", "version"])
def test_each_check_ok(site, check):
    code, output = against(site, "-C", check)
    assert code == 0, output
    assert f"{check}: " in output


def test_pool_ranges_warning_and_critical(site):
    # The pool is idle: 0% in use, inside @0:50.
    warning, warning_output = against(site, "-C", "pool", "-w", "@0:50", "-c", "@60:70")
    critical, critical_output = against(site, "-C", "pool", "-w", "@60:70", "-c", "@0:50")
    ok, ok_output = against(site, "-C", "pool", "-w", "~:80", "-c", "90")
    assert warning == 1, warning_output
    assert warning_output.startswith("HAOPS WARNING - ")
    assert critical == 2, critical_output
    assert critical_output.startswith("HAOPS CRITICAL - ")
    assert ok == 0, ok_output
    # The instance's message stays on the line, as information.
    assert ok_output.startswith("HAOPS OK - pool: 0% of the connection pool in use"), ok_output
    assert "(judged by -w/-c, not by the instance's thresholds)" in ok_output


def test_invalid_range_on_stdout(site):
    completed = subprocess.run(
        [str(CHECK_HAOPS), "-H", "127.0.0.1", "-p", str(site.port), "-C", "pool", "-w", "abc"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    assert completed.returncode == 3
    assert completed.stdout.startswith("HAOPS UNKNOWN - ")


@pytest.mark.parametrize("check", ["db", "version"])
def test_ranges_outside_pool_unknown(check):
    code, output = check_haops("-H", "127.0.0.1", "-C", check, "-w", "70")
    assert code == 3, output
    assert output.startswith("HAOPS UNKNOWN - -w/-c judge the pool's share in use"), output
    assert f"not -C {check}" in output


def test_invalid_range_unknown(site):
    code, output = against(site, "-C", "pool", "-w", "abc")
    assert code == 3, output
    assert output.startswith("HAOPS UNKNOWN - ")
    assert "'abc'" in output
    assert "Traceback" not in output


def test_database_stopped_critical(site, postgres):
    postgres.stop()
    try:
        code, output = against(site, "-C", "db")
        all_code, all_output = against(site, "-C", "all")
    finally:
        postgres.start()
    assert code == 2, output
    assert output.startswith("HAOPS CRITICAL - db: database not answering")
    # The version check cannot read the database either: UNKNOWN, which
    # nagiosplugin ranks above CRITICAL, and the line still names both.
    assert all_code == 3, all_output
    assert "db: database not answering" in all_output
    assert "version: cannot read the recorded versions" in all_output


def test_reply_slower_than_timeout_unknown(site, postgres):
    postgres.freeze()
    try:
        code, output = against(site, "-C", "db", "-t", "1")
    finally:
        postgres.thaw()
    assert code == 3, output
    assert output.startswith("HAOPS UNKNOWN - ")
    assert "Traceback" not in output


def test_instance_stopped_unknown(site):
    site.stop()
    try:
        code, output = against(site, "-C", "all")
    finally:
        site.start()
    assert code == 3, output
    assert output.startswith("HAOPS UNKNOWN - connection refused by 127.0.0.1:")


def test_not_a_monitoring_reply_unknown(site):
    code, output = against(site, "-C", "all", "-u", "/no-such-site")
    assert code == 3, output
    assert output.startswith("HAOPS UNKNOWN - ")
    assert "Traceback" not in output


def test_denied_client_unknown(site):
    site.stop()
    site.configure({"haops-monitor-allow": "192.0.2.0/24"})
    site.start()
    try:
        code, output = against(site, "-C", "all")
        direct = fetch(f"{site.url}/view?vid=monitor")
    finally:
        site.stop()
        site.configure({"haops-monitor-allow": "127.0.0.0/8,::1"})
        site.start()
    assert direct.status == 403
    assert code == 3, output
    assert "haops-monitor-allow" in output


def test_held_pool_warns_through_instance_thresholds(site):
    # Two slow requests hold the whole pool: the instance's own thresholds
    # (80% and 95% by default) make the pool KO.
    holders = [
        threading.Thread(target=fetch, args=(f"{site.url}/view?vid=haopstest_hold&seconds=4",))
        for _ in range(2)
    ]
    for holder in holders:
        holder.start()
    try:
        for _ in range(50):
            code, output = against(site, "-C", "pool")
            if code != 0:
                break
    finally:
        for holder in holders:
            holder.join(timeout=30)
    assert code == 2, output
    assert re.search(r"\bpool_usage=100(\.0)?%;", output), output


UNLIMITED_POOL_SUMMARY = {
    "state": "OK",
    "checks": {
        "pool": {
            "state": "OK",
            "message": "0 connections in use, 1 open, pool size unlimited",
            "perfdata": [{"label": "connections_in_use", "value": 0, "unit": ""}],
        },
        "db": {"state": "OK", "message": "database answered", "perfdata": []},
        "version": {"state": "OK", "message": "versions match", "perfdata": []},
    },
}


@pytest.fixture
def summary_server():
    """A stub on 127.0.0.1 that serves one fixed summary document."""
    body = json.dumps(UNLIMITED_POOL_SUMMARY).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    thread.join(timeout=10)


def test_ranges_on_unlimited_pool_unknown(summary_server):
    code, output = check_haops("-H", "127.0.0.1", "-p", str(summary_server), "-C", "pool", "-w", "80")
    plain, plain_output = check_haops("-H", "127.0.0.1", "-p", str(summary_server), "-C", "pool")
    assert code == 3, output
    assert "pool is unlimited" in output
    assert plain == 0, plain_output

"""Nagios 4 running the services of docs/nagios against a live instance.

The shipped objects are copied with the first process port, 8081, replaced
by the instance's port, and the second one, 8082, by a port where nothing
listens. Nagios runs
``check_haops`` and ``check_http`` from a plugin directory that links the
console script of this environment and Debian's plugins. Each test forces
checks through the external command file and reads the state, the output
and the performance data from status.dat and the alerts from nagios.log.
"""

import json
import os
import re
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import run_instance
from harness.http import fetch
from harness.nagios import NAGIOS, PLUGINS, Nagios
from harness.network import free_port

ROOT = Path(__file__).resolve().parent.parent
NAGIOS_DOCS = ROOT / "docs" / "nagios"
HOST = "cubicweb-web1"
SHIPPED_PORT = "8081"
SHIPPED_IDLE_PORT = "8082"
POOL_SIZE = 10
HOLD_SECONDS = 12
# Nagios makes a state HARD after this many checks in a row that return it
# (max_check_attempts in the shipped service template).
MAX_CHECK_ATTEMPTS = 3


@pytest.fixture(scope="module")
def site(instance_root, postgres):
    """An instance with a pool of ten connections, so that 9 held make 90%."""
    # Room for every held connection and for the checks beside them.
    instance = run_instance(
        instance_root,
        "nagiossite",
        "haops,haopstest",
        database=postgres,
        options={
            # The anonymous user lets the test cube's slow view hold connections.
            "anonymous-user": "anon",
            "anonymous-password": "anon",
            "connections-pool-max-size": str(POOL_SIZE),
            "haops-db-timeout": "2s",
        },
        threads=POOL_SIZE + 6,
    )
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def nagios(site, tmp_path_factory):
    if not os.access(NAGIOS, os.X_OK):
        pytest.fail(f"{NAGIOS} is missing: install Debian's nagios4-core package")
    base = tmp_path_factory.mktemp("nagios-daemon")
    objects = base / "objects"
    objects.mkdir()
    idle_port = free_port()
    for source in NAGIOS_DOCS.glob("*.cfg"):
        text = source.read_text().replace(SHIPPED_PORT, str(site.port))
        text = text.replace(SHIPPED_IDLE_PORT, str(idle_port))
        (objects / source.name).write_text(text)

    plugins = base / "plugins"
    plugins.mkdir()
    (plugins / "check_haops").symlink_to(Path(sys.executable).parent / "check_haops")
    for name in ("check_http", "check_ping"):
        (plugins / name).symlink_to(Path(PLUGINS) / name)

    daemon = Nagios(base, objects, plugins)
    daemon.idle_port = idle_port
    daemon.start()
    yield daemon
    daemon.stop()


def service(port, check):
    return f"CubicWeb {port} {check}"


def check_until_hard(nagios, name):
    """Force checks of service *name* until Nagios records a HARD state."""
    for _ in range(MAX_CHECK_ATTEMPTS):
        status = nagios.check_service(HOST, name)
        if status.hard:
            return status
    return status


def hold_connections(site, count):
    """Start *count* requests that each hold a pool connection for HOLD_SECONDS."""
    url = f"{site.url}/view?vid=haopstest_hold&seconds={HOLD_SECONDS}"
    holders = [threading.Thread(target=fetch, args=(url,), kwargs={"timeout": 60}) for _ in range(count)]
    for holder in holders:
        holder.start()

    # Wait until the instance counts them all in use.
    deadline = time.monotonic() + HOLD_SECONDS / 2
    while time.monotonic() < deadline:
        in_use = connections_in_use(site)
        if in_use == count:
            return holders
        time.sleep(0.2)
    raise AssertionError(f"{in_use} connections in use, expected {count}")


def connections_in_use(site):
    pool = json.loads(fetch(f"{site.url}/view?vid=monitor").text)["checks"]["pool"]
    return next(value["value"] for value in pool["perfdata"] if value["label"] == "connections_in_use")


def release(holders):
    for holder in holders:
        holder.join(timeout=60)


def test_pool_ok_with_graphable_perfdata(nagios, site):
    status = nagios.check_service(HOST, service(site.port, "pool"))
    assert status.state == "OK", status
    assert status.output.startswith("HAOPS OK - pool: 0% of the connection pool in use")
    assert re.search(r"\bpool_usage=0(\.0)?%;80;95;0;100\b", status.perfdata), status.perfdata
    assert "connections_in_use=0;" in status.perfdata, status.perfdata


def test_pool_warning_then_critical(nagios, site):
    name = service(site.port, "pool")
    holders = hold_connections(site, POOL_SIZE - 1)
    try:
        warning = check_until_hard(nagios, name)
    finally:
        release(holders)
    holders = hold_connections(site, POOL_SIZE)
    try:
        critical = check_until_hard(nagios, name)
    finally:
        release(holders)
    recovered = check_until_hard(nagios, name)

    assert (warning.state, warning.hard) == ("WARNING", True), warning
    assert re.search(r"\bpool_usage=90(\.0)?%;80;95;0;100\b", warning.perfdata), warning.perfdata
    assert (critical.state, critical.hard) == ("CRITICAL", True), critical
    assert re.search(r"\bpool_usage=100(\.0)?%;80;95;0;100\b", critical.perfdata), critical.perfdata
    assert recovered.state == "OK", recovered
    alerts = nagios.alerts(HOST, name)
    for state in ("WARNING", "CRITICAL", "OK"):
        assert [state, "HARD"] in alerts, alerts


def test_db_critical_with_database_stopped(nagios, site, postgres):
    name = service(site.port, "db")
    postgres.stop()
    try:
        critical = check_until_hard(nagios, name)
    finally:
        postgres.start()
    plain = nagios.check_service(HOST, f"{service(site.port, 'db')} via check_http")

    assert (critical.state, critical.hard) == ("CRITICAL", True), critical
    assert critical.output.startswith("HAOPS CRITICAL - db: database not answering"), critical
    assert ["CRITICAL", "HARD"] in nagios.alerts(HOST, name)
    assert plain.state == "OK", plain


def test_process_down_unknown(nagios):
    name = service(nagios.idle_port, "version")
    status = check_until_hard(nagios, name)
    assert (status.state, status.hard) == ("UNKNOWN", True), status
    expected = f"HAOPS UNKNOWN - connection refused by 127.0.0.1:{nagios.idle_port}"
    assert status.output.startswith(expected), status
    assert ["UNKNOWN", "HARD"] in nagios.alerts(HOST, name)


def test_check_http_services_match_first_line(nagios, site):
    for check in ("pool", "db", "version"):
        status = nagios.check_service(HOST, f"{service(site.port, check)} via check_http")
        assert status.state == "OK", (check, status)
        assert status.output.startswith("HTTP OK"), (check, status)

"""The monitoring guard on a real instance process behind Squid 5.

The whole 127.0.0.0/8 network is the loopback, so each client below binds
its own address: 127.0.0.2 plays the Nagios host, allowed to read the
monitoring URLs, and 127.0.0.3 a visitor, who is not. Squid reaches the
instance from 127.0.0.1, the one trusted proxy, and appends the client's
address to X-Forwarded-For.
"""

import http.client
import shutil
from pathlib import Path

import pytest

from harness.instance import Instance
from harness.squid import SQUID, Squid, squid_missing_message

NAGIOS = "127.0.0.2"
VISITOR = "127.0.0.3"
PROXY = "127.0.0.1"
HOSTNAME_URL = "/view?vid=monitor_hostname"
TIMEOUT = 30


@pytest.fixture(scope="module")
def site(instance_root):
    """An instance served by ``cubicweb-ctl haops-start``, Squid in front of it."""
    if shutil.which(SQUID) is None:
        pytest.fail(squid_missing_message())
    instance = Instance(instance_root, "guardsite", "haops")
    squid = Squid(Path(instance_root) / "squid", instance.port, clients="127.0.0.0/8")
    instance.env["PYTHONUNBUFFERED"] = "1"
    try:
        instance.create(
            {"haops-monitor-allow": f"{NAGIOS}/32", "haops-trusted-proxies": f"{PROXY}/32"}
        )
        instance.start(command="haops-start")
        squid.start()
        yield instance, squid
    finally:
        squid.stop()
        instance.stop()


def request(source, port, method="GET", path=HOSTNAME_URL, headers=None):
    """Send one request from the loopback address *source*; return status and body."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=TIMEOUT, source_address=(source, 0)
    )
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8")
    finally:
        connection.close()


def assert_denied(reply):
    assert reply == (403, "Forbidden\n")


def test_nagios_host_reads_through_squid(site):
    instance, squid = site
    status, body = request(NAGIOS, squid.port)
    assert status == 200
    assert body.splitlines()[1] == "instance: guardsite"


def test_visitor_denied_through_squid(site):
    _instance, squid = site
    for vid in ("monitor_hostname", "monitor_version", "monitor"):
        assert_denied(request(VISITOR, squid.port, path=f"/view?vid={vid}"))
    assert_denied(request(VISITOR, squid.port, method="OPTIONS"))


def test_visitor_cannot_forge_nagios_address(site):
    _instance, squid = site
    forged = {"X-Forwarded-For": NAGIOS}
    assert_denied(request(VISITOR, squid.port, headers=forged))


def test_direct_clients(site):
    instance, _squid = site
    assert request(NAGIOS, instance.port)[0] == 200
    # The header of a peer that is not a trusted proxy is ignored.
    assert_denied(request(VISITOR, instance.port, headers={"X-Forwarded-For": NAGIOS}))
    # The proxy's own address is not allowed: it speaks for its clients only.
    assert_denied(request(PROXY, instance.port))


def test_denials_logged_once_per_client(site):
    instance, squid = site
    for _ in range(3):
        assert_denied(request("127.0.0.4", squid.port))
    message = "monitoring denied to client 127.0.0.4"
    assert instance.output().count(message) == 1, instance.output()[-2000:]


def test_plain_start_hides_clients_behind_squid(site):
    # cubicweb-ctl start drops X-Forwarded-For: every client looks like
    # Squid, and the Nagios host is refused with the visitors.
    instance, squid = site
    instance.stop()
    try:
        instance.start(command="start")
        assert_denied(request(NAGIOS, squid.port))
    finally:
        instance.stop()
        instance.start(command="haops-start")
    assert request(NAGIOS, squid.port)[0] == 200

"""The monitoring guard: who the client is, and whether it may read the checks."""

import logging

import pytest

from cubicweb_haops.monitoring.access import check_access_options

from cubicweb_haops.monitoring.guard import (
    InvalidNetwork,
    client_address,
    is_allowed,
    parse_networks,
)

LOOPBACK = parse_networks("test", ["127.0.0.0/8", "::1"])
PROXIES = parse_networks("test", ["127.0.0.0/8", "::1", "10.0.0.0/24"])
ALLOWED = parse_networks("test", ["127.0.0.0/8", "::1", "192.0.2.10", "2001:db8::/64"])

CASES = [
    # (peer, X-Forwarded-For headers, expected client, allowed)
    ("127.0.0.1", [], "127.0.0.1", True),
    ("192.0.2.10", [], "192.0.2.10", True),
    ("203.0.113.5", [], "203.0.113.5", False),
    # Through a trusted proxy: the client is the address the proxy appended.
    ("127.0.0.1", ["192.0.2.10"], "192.0.2.10", True),
    ("127.0.0.1", ["203.0.113.5"], "203.0.113.5", False),
    # A header sent by an untrusted client is ignored.
    ("203.0.113.5", ["127.0.0.1"], "203.0.113.5", False),
    # Entries left of the first untrusted one may be forged: never read.
    ("127.0.0.1", ["127.0.0.1, 203.0.113.5"], "203.0.113.5", False),
    ("127.0.0.1", ["192.0.2.10, 203.0.113.5"], "203.0.113.5", False),
    # Several trusted proxies in the chain.
    ("127.0.0.1", ["192.0.2.10, 10.0.0.7"], "192.0.2.10", True),
    ("127.0.0.1", ["192.0.2.10", "10.0.0.7"], "192.0.2.10", True),
    # IPv6, and IPv4 mapped into IPv6.
    ("::1", [], "::1", True),
    ("2001:db8::5", [], "2001:db8::5", True),
    ("2001:db8:1::5", [], "2001:db8:1::5", False),
    ("::1", ["2001:db8::7"], "2001:db8::7", True),
    ("::ffff:127.0.0.1", [], "127.0.0.1", True),
    # Malformed values make the client unknown, hence denied.
    ("127.0.0.1", ["not-an-address"], None, False),
    ("127.0.0.1", ["192.0.2.10, "], None, False),
    ("127.0.0.1", ["192.0.2.10:8080"], None, False),
    ("", [], None, False),
    (None, [], None, False),
]


@pytest.mark.parametrize("peer, forwarded_for, expected, allowed", CASES)
def test_client_and_decision(peer, forwarded_for, expected, allowed):
    address = client_address(peer, forwarded_for, PROXIES)
    assert (str(address) if address is not None else None) == expected
    assert is_allowed(address, ALLOWED) is allowed


def test_default_trusts_loopback_only():
    assert str(client_address("10.0.0.7", ["192.0.2.10"], LOOPBACK)) == "10.0.0.7"


def test_invalid_network_names_value():
    with pytest.raises(InvalidNetwork) as error:
        parse_networks("haops-monitor-allow", ["127.0.0.0/8", "10.0.0.300/8"])
    assert "'10.0.0.300/8'" in str(error.value)
    assert "haops-monitor-allow" in str(error.value)


def test_startup_check_names_invalid_value(caplog):
    config = {"haops-monitor-allow": ["127.0.0.0/8"], "haops-trusted-proxies": ["localhost"]}
    with caplog.at_level(logging.ERROR, logger="cubicweb.haops.guard"):
        check_access_options(config)
    assert "'localhost'" in caplog.text
    assert "haops-trusted-proxies" in caplog.text


def test_startup_check_silent_on_valid_options(caplog):
    config = {"haops-monitor-allow": ["127.0.0.0/8", "::1"], "haops-trusted-proxies": ["::1"]}
    with caplog.at_level(logging.DEBUG, logger="cubicweb.haops.guard"):
        check_access_options(config)
    assert caplog.records == []

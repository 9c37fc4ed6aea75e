"""Ports, IP addresses, host names and URL paths that go into proxy configurations.

Each parser takes the option name that the value came from, so that its
``ValueError`` names the option, the value and the fix. Values are checked
strictly because they are written verbatim into files that Squid, HAProxy
and Apache read, where a space or a quote would change the meaning of a line.
"""

import ipaddress
import re

# RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens.
HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# An origin-form request target without spaces, quotes, backslashes or "#",
# which start a comment in HAProxy's and Squid's files.
URL_PATH = re.compile(r"/[A-Za-z0-9._~!$&()*+,;=:@%/?-]*")


def parse_port(option, text):
    """Return the TCP port in *text* as an int, from 1 to 65535."""
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ValueError(f"{option}: invalid port {text!r}: give a number from 1 to 65535")
    return int(value)


def parse_ports(option, text):
    """Return the comma-separated ports in *text* as a tuple, rejecting duplicates."""
    return _distinct(option, text, "port", [parse_port(option, item) for item in text.split(",")])


def _distinct(option, text, noun, values):
    """Return *values* as a tuple, or raise ValueError naming the first one given twice."""
    for value in values:
        if values.count(value) > 1:
            raise ValueError(
                f"{option}: {noun} {value} is given twice in {text!r}: give each {noun} once"
            )
    return tuple(values)


def parse_address(option, text, unspecified=False):
    """Return the IPv4 or IPv6 address in *text* in its canonical form.

    The unspecified addresses (0.0.0.0 and ::) are rejected unless
    *unspecified* is true: a program cannot connect to them.
    """
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise ValueError(
            f"{option}: invalid IP address {text!r}: give an IPv4 or IPv6 address"
            " such as 192.0.2.10 or 2001:db8::10"
        ) from None
    if address.is_unspecified and not unspecified:
        raise ValueError(
            f"{option}: {text!r} is the unspecified address, which nothing can connect to:"
            " give the address of one interface"
        )
    return str(address)


def parse_addresses(option, text):
    """Return the comma-separated addresses in *text* as a tuple, rejecting duplicates."""
    addresses = [parse_address(option, item) for item in text.split(",")]
    return _distinct(option, text, "address", addresses)


def check_host_name(option, text):
    """Return *text* in lower case if it is a valid DNS host name."""
    labels = text.split(".")
    if len(text) > 253 or not all(HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"{option}: invalid host name {text!r}: give the name that visitors use,"
            " such as www.example.org"
        )
    return text.lower()


def check_url_path(option, text):
    """Return *text* if it is a path with an optional query string (``/view?vid=monitor``)."""
    if not URL_PATH.fullmatch(text):
        raise ValueError(
            f"{option}: invalid URL path {text!r}: give a path that starts with / and has"
            " no spaces, quotes, backslashes or #, such as /view?vid=monitor"
        )
    return text


def address_and_port(address, port):
    """Return ``address:port``, with an IPv6 address in brackets."""
    if ipaddress.ip_address(address).version == 6:
        return f"[{address}]:{port}"
    return f"{address}:{port}"

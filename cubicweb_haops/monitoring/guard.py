"""The client networks allowed to read the monitoring URLs.

The client is the peer of the connection, unless the peer is a trusted proxy
(Squid or Apache on the same host, say): then the client is the right-most
address of ``X-Forwarded-For`` that is not itself a trusted proxy. Each proxy
appends the address of its own peer, so the entries to the left of the first
untrusted one may be forged by the client and are never read.
"""

import ipaddress


class InvalidNetwork(ValueError):
    """An option lists a value that is not a network."""

    def __init__(self, option, value):
        super().__init__(
            f"invalid network {value!r} in option {option}: use addresses or CIDR"
            " networks such as 127.0.0.0/8 or ::1, separated by commas"
        )


def parse_networks(option, values):
    """Return the networks listed in *values* (strings) for option *option*."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise InvalidNetwork(option, value) from None
    return tuple(networks)


def parse_address(text):
    """Return the IP address in *text*, IPv4-mapped IPv6 unmapped, or None if it is not one."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def contains(networks, address):
    return any(address.version == network.version and address in network for network in networks)


def client_address(peer, forwarded_for, trusted):
    """Return the client's address, or None when the request gives no usable one.

    *peer* is the connection's remote address, *forwarded_for* the values of
    the ``X-Forwarded-For`` headers (oldest first), *trusted* the networks of
    the trusted proxies. A malformed entry met while walking the chain makes
    the client unknown, so it is never allowed.
    """
    address = parse_address(peer or "")
    if address is None:
        return None
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    while contains(trusted, address) and hops:
        address = parse_address(hops.pop())
        if address is None:
            return None
    return address


def is_allowed(address, allowed):
    return address is not None and contains(allowed, address)

"""Access rules of the monitoring URLs, read from the instance's options.

The networks come from ``haops-monitor-allow`` and ``haops-trusted-proxies``;
:mod:`cubicweb_haops.monitoring.guard` finds the client behind the proxies.
An option that does not parse denies every client: the monitoring URLs stay
closed rather than open to the world, and the error is logged.
"""

import logging
from functools import lru_cache

from cubicweb_haops.monitoring.guard import (
    InvalidNetwork,
    client_address,
    is_allowed,
    parse_networks,
)
from cubicweb_haops.monitoring.ratelimit import RateLimitedLogger

ALLOW_OPTION = "haops-monitor-allow"
TRUSTED_OPTION = "haops-trusted-proxies"

# WSGI environ key set once a request passed the guard, so that it runs once.
ALLOWED_KEY = "haops.monitoring.allowed"

# The reply to a denied client, whatever the request: nothing about the site.
FORBIDDEN = 403
FORBIDDEN_BODY = "Forbidden\n"

LOGGER = logging.getLogger("cubicweb.haops.guard")
DENIALS = RateLimitedLogger(LOGGER)


@lru_cache(maxsize=8)
def _networks(option, values):
    return parse_networks(option, values)


def configured_networks(config):
    """Return the allowed and the trusted networks; raise InvalidNetwork."""
    allowed = _networks(ALLOW_OPTION, tuple(config[ALLOW_OPTION]))
    trusted = _networks(TRUSTED_OPTION, tuple(config[TRUSTED_OPTION]))
    return allowed, trusted


def check_access_options(config):
    """Log an error at startup when a network option does not parse."""
    try:
        configured_networks(config)
    except InvalidNetwork as error:
        LOGGER.error("%s; until it is fixed, every client is denied the monitoring URLs", error)


def client_allowed(config, peer, forwarded_for):
    """Return whether a client may read the monitoring URLs.

    *peer* is the connection's remote address and *forwarded_for* the
    ``X-Forwarded-For`` header or None. A denial is logged once per client
    and minute at most.
    """
    try:
        allowed, trusted = configured_networks(config)
    except InvalidNetwork as error:
        DENIALS.log(logging.ERROR, "configuration", "%s", error)
        return False

    address = client_address(peer, [forwarded_for] if forwarded_for else [], trusted)
    if is_allowed(address, allowed):
        return True
    client = str(address) if address is not None else f"unknown (peer {peer})"
    DENIALS.log(logging.WARNING, client, "monitoring denied to client %s", client)
    return False

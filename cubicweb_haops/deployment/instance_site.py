"""The site that an instance's configuration and its per-process copies describe.

``haops-config`` takes its defaults from here: the site's host name from
``base-url``, the process ports from the copies, the address that the
processes listen on from ``interface``.
"""

import ipaddress
import urllib.parse
from dataclasses import dataclass

from cubicweb import ConfigurationError
from cubicweb.cwconfig import CubicWebConfiguration

from .instances import find_copies, read_marker
from .network import check_host_name

# The address at which a proxy on the same host reaches a process that listens
# on every address.
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class InstanceSite:
    """The site of instance *name*, configured in *apphome*.

    *host* is None when base-url is unset. *interface* is the instance's
    ``interface`` option, where the processes listen.
    """

    name: str
    apphome: str
    host: str | None
    process_ports: tuple
    interface: str

    def process_address(self):
        """Return the address that a proxy on the same host connects to, from ``interface``."""
        interface = self.interface.strip()
        if interface in ("", "localhost"):
            return LOOPBACK
        try:
            address = ipaddress.ip_address(interface)
        except ValueError:
            raise ValueError(
                f"the interface {interface!r} of {self.name} is not an IP address:"
                " give --process-address"
            ) from None
        if address.is_unspecified:
            return LOOPBACK
        return str(address)


def read_instance_site(name):
    """Return the :class:`InstanceSite` of instance *name*.

    Raise ValueError when the instance is missing or is a copy, when it has
    no copies, and when a copy has no port or shares one.
    """
    try:
        apphome = CubicWebConfiguration.instance_home(name)
    except ConfigurationError as error:
        raise ValueError(str(error)) from None
    marker = read_marker(apphome)
    if marker is not None:
        raise ValueError(
            f"instance {name} is a copy of {marker.get('template')}: give the template"
            " instance, whose copies are the processes"
        )
    process_ports = _process_ports(name)
    config = CubicWebConfiguration.config_for(name)
    return InstanceSite(
        name=name,
        apphome=apphome,
        host=_base_url_host(name, config),
        process_ports=process_ports,
        interface=config["interface"] or "",
    )


def _process_ports(name):
    copies = find_copies(name)
    if not copies:
        raise ValueError(
            f"instance {name} has no per-process copies:"
            f" run `cubicweb-ctl haops-split {name}` first"
        )
    owners = {}
    for copy in copies:
        if copy.port is None:
            raise ValueError(
                f"copy {copy.name} of {name} has no port: set port in"
                f" {copy.apphome}/all-in-one.conf, or run `cubicweb-ctl haops-split {name}` again"
            )
        if copy.port in owners:
            raise ValueError(
                f"copies {owners[copy.port]} and {copy.name} of {name} both use port {copy.port}:"
                f" run `cubicweb-ctl haops-split {name}` again"
            )
        owners[copy.port] = copy.name
    return tuple(copy.port for copy in copies)


def _base_url_host(name, config):
    base_url = config["base-url"]
    if not base_url:
        return None
    host = urllib.parse.urlsplit(base_url).hostname
    if not host:
        return None
    try:
        return check_host_name("base-url", host)
    except ValueError:
        raise ValueError(
            f"the host {host!r} of the base-url of {name} is not a host name: give --site"
        ) from None

"""``cubicweb-ctl haops-config``: write the Squid, HAProxy or Apache configuration of a site.

The process ports come from the copies that ``haops-split`` made of the
instance, and the site's host name from the instance's ``base-url``. Options
override them. The text goes to the standard output unless ``--output``
names a file.
"""

import sys

from cubicweb.cwctl import CWCTL
from cubicweb.toolsutils import Command

from cubicweb_haops.deployment import network
from cubicweb_haops.deployment.apache import ApacheSettings, apache_config
from cubicweb_haops.deployment.haproxy import DEFAULT_HEALTH_URL, HAProxySettings, haproxy_config
from cubicweb_haops.deployment.instance_site import read_instance_site
from cubicweb_haops.deployment.squid import SquidSettings, squid_config

KINDS = ("squid", "haproxy", "apache")
# Default ports: Squid port k and Apache port k for process k, from 1.
SQUID_PORT_BASE = 80
APACHE_PORT_BASE = 9080
DEFAULT_APACHE_ADDRESS = "127.0.0.1"
DEFAULT_WEB_SERVER = "127.0.0.1"
PROCESS_PORTS = "the ports of the CubicWeb processes"

# The kinds of configuration that each option changes.
OPTION_KINDS = {
    "site": KINDS,
    "output": KINDS,
    "squid-ports": ("squid", "haproxy"),
    "squid-address": ("squid",),
    "process-address": ("squid", "apache"),
    "via-apache": ("squid",),
    "apache-ports": ("squid", "apache"),
    "apache-address": ("squid", "apache"),
    "web-servers": ("haproxy",),
    "frontend-address": ("haproxy",),
    "frontend-port": ("haproxy",),
    "health-url": ("haproxy",),
}


def _option(metavar, help_text, kinds):
    return {
        "type": "string",
        "metavar": metavar,
        "default": None,
        "help": f"{help_text} ({', '.join(kinds)})",
    }


class ConfigCommand(Command):
    """Write the Squid, HAProxy or Apache configuration of a site.

    squid: a complete squid.conf with one accelerator port per CubicWeb
    process, failing over to the other processes. haproxy: a complete
    haproxy.cfg balancing by client address over every (web server, Squid
    port) pair. apache: a site file for /etc/apache2/sites-available with
    one proxy virtual host per process.

    <kind>
      squid, haproxy or apache.

    <instance>
      identifier of the instance whose copies (cubicweb-ctl haops-split) are
      the processes.
    """

    name = "haops-config"
    arguments = "<kind> <instance>"
    min_args = max_args = 2
    options = (
        (
            "site",
            _option(
                "<host name>",
                "host name of the site; default: the host of the instance's base-url",
                OPTION_KINDS["site"],
            ),
        ),
        (
            "squid-ports",
            _option(
                "<port,...>",
                "Squid ports, one per process in order; default: 81, 82 and so on",
                OPTION_KINDS["squid-ports"],
            ),
        ),
        (
            "squid-address",
            _option(
                "<IP address>",
                "address that Squid listens on; default: every address",
                OPTION_KINDS["squid-address"],
            ),
        ),
        (
            "process-address",
            _option(
                "<IP address>",
                "address of the CubicWeb processes; default: the instance's interface,"
                " or 127.0.0.1 when it listens on every address",
                OPTION_KINDS["process-address"],
            ),
        ),
        (
            "via-apache",
            {
                "action": "store_true",
                "default": False,
                "help": "send Squid port k to Apache port k instead of process k (squid)",
            },
        ),
        (
            "apache-ports",
            _option(
                "<port,...>",
                "Apache ports, one per process in order; default: 9081, 9082 and so on",
                OPTION_KINDS["apache-ports"],
            ),
        ),
        (
            "apache-address",
            _option(
                "<IP address>",
                f"address that Apache listens on; default: {DEFAULT_APACHE_ADDRESS}",
                OPTION_KINDS["apache-address"],
            ),
        ),
        (
            "web-servers",
            _option(
                "<IP address,...>",
                f"addresses of the web servers that run Squid; default: {DEFAULT_WEB_SERVER}",
                OPTION_KINDS["web-servers"],
            ),
        ),
        (
            "frontend-address",
            _option(
                "<IP address>",
                "address that HAProxy listens on; default: every IPv4 address",
                OPTION_KINDS["frontend-address"],
            ),
        ),
        (
            "frontend-port",
            _option(
                "<port>", "port that HAProxy listens on; default: 80", OPTION_KINDS["frontend-port"]
            ),
        ),
        (
            "health-url",
            _option(
                "<path>",
                f"URL of the health check on each Squid port; default: {DEFAULT_HEALTH_URL}",
                OPTION_KINDS["health-url"],
            ),
        ),
        (
            "output",
            {
                "short": "o",
                "type": "string",
                "metavar": "<file>",
                "default": None,
                "help": "file to write; default: the standard output",
            },
        ),
    )

    def fail(self, reason):
        # On the standard error, unlike Command.fail: the standard output may
        # be redirected to the configuration file being written.
        print(f"command failed: {reason}", file=sys.stderr)
        sys.exit(1)

    def run(self, args):
        kind, instance = args
        try:
            text = self.build(kind, instance)
        except ValueError as error:
            self.fail(str(error))
        self.write(text)

    def build(self, kind, instance):
        """Return the configuration text of *kind* for *instance*.

        Raise ValueError with a message for the operator on bad input.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}: give one of {', '.join(KINDS)}")
        self.check_options_apply(kind)
        site = read_instance_site(instance)
        if kind == "squid":
            return squid_config(self.squid_settings(site))
        if kind == "haproxy":
            return haproxy_config(self.haproxy_settings(site))
        return apache_config(self.apache_settings(site))

    def check_options_apply(self, kind):
        for option, kinds in OPTION_KINDS.items():
            if self[option] not in (None, False) and kind not in kinds:
                raise ValueError(
                    f"--{option} does not apply to {kind}: it sets the {' and '.join(kinds)}"
                    " configuration"
                )
        if kind == "squid" and not self["via-apache"]:
            for option in ("apache-ports", "apache-address"):
                if self[option] is not None:
                    raise ValueError(f"--{option} applies to squid only with --via-apache")

    def host_name(self, site):
        """Return the --site option, else the host of the instance's base-url."""
        if self["site"] is not None:
            return network.check_host_name("--site", self["site"])
        if site.host is None:
            raise ValueError(
                f"instance {site.name} has no base-url to take the site's host name from:"
                f" set base-url in {site.apphome}/all-in-one.conf or give --site"
            )
        return site.host

    def ports(self, option, base, process_ports):
        """Return the ports of *option*, or *base* + 1, *base* + 2... one per process."""
        if self[option] is None:
            return tuple(base + number for number in range(1, len(process_ports) + 1))
        ports = network.parse_ports(f"--{option}", self[option])
        if len(ports) != len(process_ports):
            raise ValueError(
                f"--{option} {self[option]} gives {pluralize(len(ports), 'port')} for"
                f" {pluralize(len(process_ports), 'process')} (on ports"
                f" {', '.join(map(str, process_ports))}): give one port per process"
            )
        return ports

    def address(self, option, default, unspecified=False):
        """Return the address of *option*, else *default*, or what *default* returns if callable."""
        if self[option] is None:
            return default() if callable(default) else default
        return network.parse_address(f"--{option}", self[option], unspecified=unspecified)

    def squid_settings(self, site):
        process_ports = site.process_ports
        squid_ports = self.ports("squid-ports", SQUID_PORT_BASE, process_ports)
        apache_ports = None
        used = {PROCESS_PORTS: process_ports, "--squid-ports": squid_ports}
        if self["via-apache"]:
            apache_ports = self.ports("apache-ports", APACHE_PORT_BASE, process_ports)
            used["--apache-ports"] = apache_ports
        check_distinct_ports(used)
        return SquidSettings(
            site=self.host_name(site),
            process_ports=process_ports,
            squid_ports=squid_ports,
            listen_address=self.address("squid-address", None, unspecified=True),
            process_address=self.address("process-address", site.process_address),
            apache_ports=apache_ports,
            apache_address=self.address("apache-address", DEFAULT_APACHE_ADDRESS),
        )

    def haproxy_settings(self, site):
        web_servers = (DEFAULT_WEB_SERVER,)
        if self["web-servers"] is not None:
            web_servers = network.parse_addresses("--web-servers", self["web-servers"])
        frontend_port = 80
        if self["frontend-port"] is not None:
            frontend_port = network.parse_port("--frontend-port", self["frontend-port"])
        health_url = DEFAULT_HEALTH_URL
        if self["health-url"] is not None:
            health_url = network.check_url_path("--health-url", self["health-url"])
        return HAProxySettings(
            site=self.host_name(site),
            web_servers=web_servers,
            squid_ports=self.ports("squid-ports", SQUID_PORT_BASE, site.process_ports),
            frontend_port=frontend_port,
            frontend_address=self.address("frontend-address", None, unspecified=True),
            health_url=health_url,
        )

    def apache_settings(self, site):
        process_ports = site.process_ports
        apache_ports = self.ports("apache-ports", APACHE_PORT_BASE, process_ports)
        check_distinct_ports({PROCESS_PORTS: process_ports, "--apache-ports": apache_ports})
        return ApacheSettings(
            site=self.host_name(site),
            process_ports=process_ports,
            apache_ports=apache_ports,
            listen_address=self.address("apache-address", DEFAULT_APACHE_ADDRESS),
            process_address=self.address("process-address", site.process_address),
        )

    def write(self, text):
        if self["output"] is None:
            sys.stdout.write(text)
            return
        try:
            with open(self["output"], "w") as output:
                output.write(text)
        except OSError as error:
            self.fail(f"cannot write --output {self['output']}: {error.strerror}")


def pluralize(number, noun):
    """Return "1 port", "2 ports", "2 processes"."""
    if number == 1:
        return f"1 {noun}"
    return f"{number} {noun}es" if noun.endswith("s") else f"{number} {noun}s"


def check_distinct_ports(ports_by_source):
    """Raise ValueError if two sources, such as the processes and Squid, share a port.

    *ports_by_source* maps a label that names the source in the message to its ports.
    """
    seen = {}
    for source, ports in ports_by_source.items():
        for port in ports:
            if port in seen:
                raise ValueError(
                    f"port {port} is in both {seen[port]} and {source}: give ports that differ"
                )
            seen[port] = source


def register():
    CWCTL.register(ConfigCommand)

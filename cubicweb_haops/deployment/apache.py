"""Apache 2.4 configuration between Squid and CubicWeb: one proxy virtual host per process."""

from dataclasses import dataclass

from .network import address_and_port

# The modules that the virtual hosts use, in the order a2enmod takes them.
MODULES = (
    "proxy",
    "proxy_http",
    "proxy_balancer",
    "lbmethod_byrequests",
    "rewrite",
    "remoteip",
    "deflate",
    "status",
)
COMPRESSED_TYPES = (
    "text/html",
    "text/plain",
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/json",
)
# Seconds before Apache tries a process again after it refused a connection.
RETRY_SECONDS = 10


@dataclass(frozen=True)
class ApacheSettings:
    """A site whose process k sits behind Apache port k.

    Squid on the same host connects to *listen_address*, from that address,
    which is why Apache trusts that address alone to set X-Forwarded-For.
    """

    site: str
    process_ports: tuple
    apache_ports: tuple
    listen_address: str = "127.0.0.1"
    process_address: str = "127.0.0.1"

    def __post_init__(self):
        if len(self.apache_ports) != len(self.process_ports):
            raise ValueError(
                f"{len(self.apache_ports)} Apache ports for {len(self.process_ports)}"
                " processes: give one Apache port per process"
            )

    @property
    def site_file_name(self):
        """The name of the file under /etc/apache2/sites-available."""
        return f"haops-{self.site}.conf"


def apache_config(settings):
    """Return the text of a site file for Debian's /etc/apache2/sites-available."""
    parts = [_header(settings), _listen(settings)]
    for index in range(len(settings.process_ports)):
        parts.append(_virtual_host(settings, index))
    return "\n".join(parts)


def _header(settings):
    site_name = settings.site_file_name.removesuffix(".conf")
    lines = [
        f"# Apache 2.4 between Squid and the CubicWeb processes of {settings.site}:",
        "# one virtual host per process.",
        "# Written by `cubicweb-ctl haops-config apache`. Install it as",
        f"# /etc/apache2/sites-available/{settings.site_file_name}, then run",
        f"#   a2enmod {' '.join(MODULES)}",
        f"#   a2ensite {site_name}",
        "#   apache2ctl configtest && systemctl restart apache2",
        "# The Listen lines below open the ports: /etc/apache2/ports.conf needs no change.",
        "#",
    ]
    for apache_port, process_port in zip(settings.apache_ports, settings.process_ports):
        apache = address_and_port(settings.listen_address, apache_port)
        process = address_and_port(settings.process_address, process_port)
        lines.append(f"#   Apache {apache} -> CubicWeb {process}")
    return "\n".join(lines) + "\n"


def _listen(settings):
    lines = [
        f"Listen {address_and_port(settings.listen_address, port)}"
        for port in settings.apache_ports
    ]
    return "\n".join(lines) + "\n"


def _status_clients(settings):
    clients = ["127.0.0.1", "::1"]
    if settings.listen_address not in clients:
        clients.append(settings.listen_address)
    return " ".join(clients)


def _virtual_host(settings, index):
    number = index + 1
    listen = address_and_port(settings.listen_address, settings.apache_ports[index])
    primary = f"http://{address_and_port(settings.process_address, settings.process_ports[index])}"
    balancer = f"balancer://{settings.site}-process{number}"
    members = [f'        BalancerMember "{primary}" retry={RETRY_SECONDS}']
    for other_index, port in enumerate(settings.process_ports):
        if other_index != index:
            url = f"http://{address_and_port(settings.process_address, port)}"
            members.append(f'        BalancerMember "{url}" retry={RETRY_SECONDS} status=+H')
    log_prefix = f"${{APACHE_LOG_DIR}}/haops-{settings.site}"
    lines = [
        f"# Process {number}.",
        f"<VirtualHost {listen}>",
        f"    ServerName {settings.site}",
        f"    ErrorLog {log_prefix}-error.log",
        f"    CustomLog {log_prefix}-access.log combined",
        "",
        "    # Squid connects from this address and appends the visitor's address to",
        "    # X-Forwarded-For: Apache takes that address as the client's. Otherwise",
        "    # every visitor through Squid would count as local.",
        "    RemoteIPHeader X-Forwarded-For",
        f"    RemoteIPInternalProxy {settings.listen_address}",
        "",
        "    # Server status for clients on this host only, not for visitors through Squid.",
        '    <Location "/server-status">',
        "        SetHandler server-status",
        f"        Require ip {_status_clients(settings)}",
        "    </Location>",
        "",
        "    # Text is compressed for clients that send Accept-Encoding: gzip. mod_deflate",
        "    # adds Vary: Accept-Encoding, so Squid stores each encoding apart.",
        f"    AddOutputFilterByType DEFLATE {' '.join(COMPRESSED_TYPES)}",
        "",
        f"    # Process {number} serves this host. The other processes stand by (+H) and",
        "    # take its requests while it refuses connections. Apache tries it again",
        f"    # {RETRY_SECONDS} seconds after a failure.",
        f'    <Proxy "{balancer}">',
        *members,
        "    </Proxy>",
        "    ProxyRequests Off",
        "    # CubicWeb gets the visitor's Host header, and X-Forwarded-For with the",
        "    # client's address appended.",
        "    ProxyPreserveHost On",
        "    ProxyAddHeaders On",
        "    # A monitoring answer describes the process that sent it: monitoring URLs",
        f"    # go to process {number} alone, never to a standby.",
        "    RewriteEngine On",
        '    RewriteCond "%{QUERY_STRING}" "(^|&)vid=monitor" [NC]',
        f'    RewriteRule "^/(.*)$" "{primary}/$1" [P,L]',
        '    ProxyPass "/server-status" "!"',
        f'    ProxyPass "/" "{balancer}/"',
        f'    ProxyPassReverse "/" "{balancer}/"',
        "</VirtualHost>",
    ]
    return "\n".join(lines) + "\n"

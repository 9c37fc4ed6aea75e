"""Squid 5 accelerator configuration: one listening port per CubicWeb process."""

from dataclasses import dataclass

from .network import address_and_port

# Seconds that Squid waits for a connection to a peer.
CONNECT_TIMEOUT = 3
# Failed connections in a row after which Squid takes a peer out until a
# probe connects again.
CONNECT_FAIL_LIMIT = 3
# The parameter that marks the monitoring URLs, matched in the URL as sent:
# a URL-encoded "vid=monitor" may fail over like any other URL.
MONITORING_REGEX = r"[?&]vid=monitor"
# CubicWeb's authentication cookies under their default names (pyramid.ini
# settings cubicweb.auth.authtkt.session.cookie_name and .persistent.cookie_name).
LOGGED_IN_REGEX = r"(^|[;[:space:]])p?auth_tkt="
# The image URLs of the cube: the same bytes for every visitor who may read
# them, with Cache-Control public only when the anonymous user may.
IMAGE_URL_REGEX = r"^/file/[0-9]+/(raw|thumb)/"


@dataclass(frozen=True)
class SquidSettings:
    """A site served by Squid on one web server.

    Port k of *squid_ports* forwards to process k of *process_ports*, or to
    Apache port k of *apache_ports* when those are given. A *listen_address*
    of None listens on every address.
    """

    site: str
    process_ports: tuple
    squid_ports: tuple
    listen_address: str | None = None
    process_address: str = "127.0.0.1"
    apache_ports: tuple | None = None
    apache_address: str = "127.0.0.1"
    log_dir: str = "/var/log/squid"
    pid_file: str = "/run/squid.pid"

    def __post_init__(self):
        if len(self.squid_ports) != len(self.process_ports):
            raise ValueError(
                f"{len(self.squid_ports)} Squid ports for {len(self.process_ports)}"
                " processes: give one Squid port per process"
            )
        if self.apache_ports is not None and len(self.apache_ports) != len(self.process_ports):
            raise ValueError(
                f"{len(self.apache_ports)} Apache ports for {len(self.process_ports)}"
                " processes: give one Apache port per process"
            )

    @property
    def via_apache(self):
        return self.apache_ports is not None

    def peer_endpoints(self):
        """Return the (address, port) that each Squid port forwards to, in order."""
        if self.via_apache:
            return [(self.apache_address, port) for port in self.apache_ports]
        return [(self.process_address, port) for port in self.process_ports]


def squid_config(settings):
    """Return the text of a complete squid.conf for *settings*."""
    sections = [
        _header(settings),
        _ports(settings),
        _peers(settings),
        _access(settings),
        _caching(),
        _logs(settings),
    ]
    return "\n".join(sections)


def _header(settings):
    lines = [
        f"# Squid 5 accelerator for {settings.site}: one listening port per CubicWeb process.",
        "# Written by `cubicweb-ctl haops-config squid`. Install it as /etc/squid/squid.conf,",
        "# check it with `squid -k parse`, then run `systemctl reload squid`.",
        "#",
    ]
    for index, squid_port in enumerate(settings.squid_ports):
        process = address_and_port(settings.process_address, settings.process_ports[index])
        if settings.via_apache:
            apache = address_and_port(settings.apache_address, settings.apache_ports[index])
            lines.append(f"#   Squid port {squid_port} -> Apache {apache} -> CubicWeb {process}")
        else:
            lines.append(f"#   Squid port {squid_port} -> CubicWeb {process}")
    return "\n".join(lines) + "\n"


def _ports(settings):
    example = f"{settings.site}:{settings.squid_ports[0]}"
    lines = [
        "# vhost: Squid takes the host from the Host header, and http_access checks it",
        "# (with no-vhost, Squid would put defaultsite in every Host header before",
        f"# that check). vport=80: a Host with a port, such as {example}, gives",
        f"# the same URL as {settings.site}, so that a page is stored once, not once per port.",
    ]
    for index, port in enumerate(settings.squid_ports, 1):
        listen = port if settings.listen_address is None else address_and_port(
            settings.listen_address, port
        )
        lines.append(
            f"http_port {listen} accel defaultsite={settings.site} vhost vport=80 name=port{index}"
        )
    return "\n".join(lines) + "\n"


def _peers(settings):
    endpoints = settings.peer_endpoints()
    options = (
        f"0 no-query no-digest originserver connect-timeout={CONNECT_TIMEOUT}"
        f" connect-fail-limit={CONNECT_FAIL_LIMIT}"
    )
    lines = []
    if settings.via_apache:
        lines += [
            "# Port k goes to Apache's virtual host k, which forwards to CubicWeb process k",
            "# and fails over to the other processes itself. Squid lists no backup peers:",
            "# they would reach the same Apache.",
        ]
    elif len(endpoints) > 1:
        lines += [
            "# Port k goes to CubicWeb process k. While process k refuses connections, the",
            "# port's requests go to the backup peers, which are the other processes,",
            "# monitoring URLs excepted.",
        ]
    lines += [
        f"# A peer is taken out after {CONNECT_FAIL_LIMIT} failed connections in a row, until",
        "# a probe connects again. A connection attempt gives up after"
        f" {CONNECT_TIMEOUT} seconds.",
    ]
    for index, (address, port) in enumerate(endpoints, 1):
        lines.append(f"cache_peer {address} parent {port} {options} name=process{index}")
    if _has_backups(settings):
        for index, (address, port) in enumerate(endpoints, 1):
            lines.append(
                f"cache_peer {address} parent {port} {options} name=process{index}_backup"
            )
    lines += [
        "# Every request goes to a peer, never to the host named in the URL.",
        "never_direct allow all",
        "# One retry at most, on the next peer, when a connection fails. With three",
        "# or more processes, a request whose process and first backup are both down",
        "# fails until Squid has taken them out.",
        "forward_max_tries 2",
    ]
    return "\n".join(lines) + "\n"


def _has_backups(settings):
    return not settings.via_apache and len(settings.process_ports) > 1


def _access(settings):
    count = len(settings.squid_ports)
    port_names = " ".join(f"port{index}" for index in range(1, count + 1))
    lines = [f"acl port{index} myportname port{index}" for index in range(1, count + 1)]
    lines += [
        f"acl site_ports myportname {port_names}",
        f"acl site_host dstdomain {settings.site}",
        "# A monitoring answer describes the process that sent it: it never comes from",
        "# a backup peer, so that a health check on port k sees process k itself.",
        f"acl monitoring urlpath_regex -i {MONITORING_REGEX}",
        "# A request with an authentication cookie comes from a logged-in user.",
        f"acl logged_in req_header Cookie -i {LOGGED_IN_REGEX}",
        f"acl images urlpath_regex {IMAGE_URL_REGEX}",
        "",
    ]
    for index in range(1, count + 1):
        lines += [
            f"cache_peer_access process{index} allow port{index}",
            f"cache_peer_access process{index} deny all",
        ]
    if _has_backups(settings):
        for index in range(1, count + 1):
            lines += [
                f"cache_peer_access process{index}_backup deny monitoring",
                f"cache_peer_access process{index}_backup allow !port{index}",
                f"cache_peer_access process{index}_backup deny all",
            ]
    lines += [
        "",
        "# Only the site, on its ports: no other host name, no cache manager pages,",
        "# no forward proxying.",
        "http_access deny manager",
        "http_access allow site_ports site_host",
        "http_access deny all",
        "",
        "# Squid appends the client address to X-Forwarded-For. The instance reads the",
        "# client there when Squid's address is in its haops-trusted-proxies.",
        "forwarded_for on",
    ]
    return "\n".join(lines) + "\n"


def _caching():
    lines = [
        "# A memory cache only, as in Debian's default configuration: add a cache_dir",
        "# to keep objects on disk.",
        "cache_mem 256 MB",
        "maximum_object_size_in_memory 2 MB",
        "# Store only what Cache-Control or Expires allow: no heuristic freshness",
        "# (minimum 0 minutes, 0 % of the age, maximum 0 minutes) and no override options.",
        "refresh_pattern . 0 0% 0",
        "# Monitoring answers are about one process at one moment.",
        "cache deny monitoring",
        "# A logged-in user gets pages made for them, never the copy stored for",
        "# anonymous visitors, and their pages are never stored (the cube marks them",
        "# private too). Images are the same for everyone who may read them.",
        "cache deny logged_in !images",
    ]
    return "\n".join(lines) + "\n"


def _logs(settings):
    lines = [
        f"access_log stdio:{settings.log_dir}/access.log squid",
        f"cache_log stdio:{settings.log_dir}/cache.log",
        "# Debian's logrotate rotates the logs, then runs `squid -k rotate`.",
        "logfile_rotate 0",
        f"pid_filename {settings.pid_file}",
        "coredump_dir /var/spool/squid",
    ]
    return "\n".join(lines) + "\n"

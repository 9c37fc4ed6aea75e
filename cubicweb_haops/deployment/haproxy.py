"""HAProxy 2.6 load balancer configuration over (web server, Squid port) pairs."""

from dataclasses import dataclass

from .network import address_and_port

# The load balancer checks whether the process serves requests at all. The
# database and the code versions are shared by every process: taking all of
# them out for a KO there would turn a degraded site into a dead one, so
# Nagios alerts on those instead.
DEFAULT_HEALTH_URL = "/view?vid=monitor_hostname"


@dataclass(frozen=True)
class HAProxySettings:
    """A site balanced by HAProxy over every Squid port of every web server.

    A *frontend_address* of None listens on every IPv4 address.
    *check_interval* is in seconds.
    """

    site: str
    web_servers: tuple
    squid_ports: tuple
    frontend_port: int = 80
    frontend_address: str | None = None
    health_url: str = DEFAULT_HEALTH_URL
    stats_socket: str = "/run/haproxy/admin.sock"
    check_interval: int = 5

    def __post_init__(self):
        if not self.web_servers:
            raise ValueError("no web server: give at least one web server address")
        if not self.squid_ports:
            raise ValueError("no Squid port: give at least one Squid port")

    def servers(self):
        """Return (name, address, port) for each server, web server by web server."""
        return [
            (f"web{number}_port{port}", address, port)
            for number, address in enumerate(self.web_servers, 1)
            for port in self.squid_ports
        ]


def haproxy_config(settings):
    """Return the text of a complete haproxy.cfg for *settings*."""
    return "\n".join(
        [_header(settings), _global(settings), _defaults(), _frontend(settings), _backend(settings)]
    )


def _header(settings):
    lines = [
        f"# HAProxy 2.6 load balancer for {settings.site}: each visitor's address picks one",
        "# (web server, Squid port) pair, hence one CubicWeb process.",
        "# Written by `cubicweb-ctl haops-config haproxy`. Install it as",
        "# /etc/haproxy/haproxy.cfg, check it with `haproxy -c -f /etc/haproxy/haproxy.cfg`,",
        "# then run `systemctl reload haproxy`.",
    ]
    return "\n".join(lines) + "\n"


def _global(settings):
    lines = [
        "global",
        "    log /dev/log local0",
        "    chroot /var/lib/haproxy",
        f"    stats socket {settings.stats_socket} mode 660 level admin",
        "    user haproxy",
        "    group haproxy",
    ]
    return "\n".join(lines) + "\n"


def _defaults():
    lines = [
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option dontlognull",
        "    timeout connect 5s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        "    timeout queue 30s",
        "    # With a hung database the JSON summary answers after the instance's",
        "    # haops-db-timeout (3 s by default), which bounds its database probes.",
        "    timeout check 7s",
        "    # A request whose connection to a Squid port fails is retried once, on",
        "    # another server.",
        "    retries 1",
        "    option redispatch",
    ]
    return "\n".join(lines) + "\n"


def _frontend(settings):
    if settings.frontend_address is None:
        bind = f":{settings.frontend_port}"
    else:
        bind = address_and_port(settings.frontend_address, settings.frontend_port)
    lines = [
        "frontend site",
        f"    bind {bind}",
        "    # Squid and the instance read the visitor's address from this header.",
        "    option forwardfor",
        "    # The monitoring URLs are for Nagios and for the health checks below, which",
        "    # go to the Squid ports directly: visitors get 403. The URL is decoded",
        '    # first, so that an encoded "vid" or "monitor" does not slip through.',
        "    http-request deny deny_status 403 if { url,url_dec -m sub -i vid=monitor }",
        "    default_backend squid_ports",
    ]
    return "\n".join(lines) + "\n"


def _backend(settings):
    lines = [
        "backend squid_ports",
        "    # A visitor's address always picks the same server while the set of",
        "    # servers that are up stays the same. Consistent hashing moves only the",
        "    # visitors of a server that goes down, not everyone's.",
        "    balance source",
        "    hash-type consistent",
        "    # Each Squid port sends the health check to its own CubicWeb process, never",
        "    # to another one, so a server goes down when its process stops answering.",
        "    # The check asks for no database work: with /view?vid=monitor, a database",
        "    # or version problem, shared by every process, would take every server out.",
        "    # The instance answers the monitoring URLs only to the clients in its",
        "    # haops-monitor-allow: add this load balancer's address there, or every",
        "    # server stays down.",
        "    option httpchk",
        f"    http-check send meth GET uri {settings.health_url} ver HTTP/1.1"
        f" hdr Host {settings.site}",
        "    http-check expect status 200",
        f"    # A check every {settings.check_interval} s; 3 failures in a row take a server"
        " out, 2 successes",
        "    # bring it back.",
        f"    default-server inter {settings.check_interval}s fall 3 rise 2",
    ]
    for name, address, port in settings.servers():
        lines.append(f"    server {name} {address_and_port(address, port)} check")
    return "\n".join(lines) + "\n"

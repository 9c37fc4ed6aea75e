"""``cubicweb-ctl haops-start``: serve an instance behind a proxy on the same host.

``cubicweb-ctl start`` runs waitress so that it removes ``X-Forwarded-For``
from every request: behind Squid, Apache or HAProxy each client then looks
like the proxy, and a monitoring guard that allows loopback allows the
world. This command serves the same application with the header kept, so
that the guard can find the client behind the proxies it trusts
(``haops-trusted-proxies``). Neither CubicWeb nor cubicweb-web reads the
header.
"""

import os

import waitress
from cubicweb import ConfigurationError
from cubicweb.cwconfig import CubicWebConfiguration
from cubicweb.cwctl import CWCTL, init_cmdline_log_threshold
from cubicweb.pyramid import wsgi_application_from_cwconfig
from cubicweb.toolsutils import Command

from cubicweb_haops.deployment.instances import DEFAULT_PORT

LOG_LEVELS = ("debug", "info", "warning", "error")


def serve_arguments(config, threads):
    """Return waitress's arguments for the instance configuration *config*."""
    return {
        "host": config["interface"],
        "port": config["port"] or DEFAULT_PORT,
        "url_scheme": "https" if config["base-url"].startswith("https") else "http",
        "threads": threads,
        # Kept for the monitoring guard, which trusts only its own proxies.
        "clear_untrusted_proxy_headers": False,
        "ident": "cubicweb",
    }


class StartCommand(Command):
    """Serve an instance in the foreground, keeping X-Forwarded-For.

    Use it instead of "start" for a process behind Squid, Apache or HAProxy:
    "start" removes the header, and the monitoring URLs then take every
    client for the proxy. The log goes to the standard error, at the
    instance's log-threshold unless --loglevel sets another level.

    <instance>
      identifier of the instance to serve.
    """

    name = "haops-start"
    arguments = "<instance>"
    min_args = max_args = 1
    options = (
        (
            "loglevel",
            {
                "short": "l",
                "type": "choice",
                "metavar": "<log level>",
                "default": None,
                "choices": LOG_LEVELS,
                "help": "log level (one of %s); default: the instance's log-threshold"
                % ", ".join(LOG_LEVELS),
            },
        ),
        (
            "nb-threads",
            {
                "type": "int",
                "default": 4,
                "metavar": "<number>",
                "help": "number of threads serving requests",
            },
        ),
    )

    def run(self, args):
        if self["nb-threads"] < 1:
            self.fail(f"--nb-threads {self['nb-threads']} is below 1: give 1 or more")
        try:
            CubicWebConfiguration.instance_home(args[0])
        except ConfigurationError as error:
            self.fail(str(error))
        config = CubicWebConfiguration.config_for(args[0])
        pyramid_ini = os.path.join(config.apphome, "pyramid.ini")
        if not os.path.exists(pyramid_ini):
            self.fail(
                f"{pyramid_ini} is missing: run `cubicweb-ctl start {args[0]}` once,"
                " which writes it, then use haops-start"
            )
        init_cmdline_log_threshold(config, self["loglevel"] or config["log-threshold"])

        app = wsgi_application_from_cwconfig(config)
        repo = app.application.registry["cubicweb.repository"]
        try:
            waitress.serve(app, **serve_arguments(config, self["nb-threads"]))
        finally:
            repo.shutdown()


def register():
    CWCTL.register(StartCommand)

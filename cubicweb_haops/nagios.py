"""check_haops: a Nagios and Icinga plugin for the monitoring URLs of the cube.

It reads the JSON summary at ``/view?vid=monitor`` and turns each check into
Monitoring Plugins output: one status line, performance data, exit code 0 to
3. Measuring (the HTTP request), judging (the server's own states, and the
``-w``/``-c`` ranges on the pool's share) and formatting are the
``nagiosplugin`` library's resources, contexts and summary.

This module imports no CubicWeb code, so the plugin runs on a Nagios server
that has only the package installed.
"""

import argparse
import http.client
import json
import ssl
import sys

import nagiosplugin

CHECKS = ("pool", "db", "version", "replication")
SERVER_STATES = {
    "OK": nagiosplugin.Ok,
    "WARNING": nagiosplugin.Warn,
    "KO": nagiosplugin.Critical,
    "UNKNOWN": nagiosplugin.Unknown,
}
# Labels of the performance values worth graphing, per check; None graphs
# them all, for replication, whose labels name the standbys.
GRAPHED = {
    "pool": ("pool_usage", "connections_in_use", "connections_open"),
    "db": ("time",),
    "version": (),
    "replication": None,
}
# The context of the performance values that only go to the graphs.
GRAPH_CONTEXT = "graph"


class SummaryResource(nagiosplugin.Resource):
    """The checks of one instance, fetched from its JSON summary."""

    def __init__(self, host, port, base_path, use_ssl, checks, timeout, pool_ranges=False):
        self.host = host
        self.port = port
        self.base_path = base_path.rstrip("/")
        self.use_ssl = use_ssl
        self.checks = checks
        self.timeout = timeout
        # With ranges on the command line, they judge the pool's share in
        # use instead of the instance's own state for the pool.
        self.pool_ranges = pool_ranges
        # The instance's thresholds of the values that only go to the graphs.
        self.thresholds = {}

    @property
    def name(self):
        return "HAOPS"

    def fetch(self):
        """Return the summary document, or raise with a one-line reason."""
        connection_class = http.client.HTTPSConnection if self.use_ssl else http.client.HTTPConnection
        kwargs = {"context": ssl.create_default_context()} if self.use_ssl else {}
        connection = connection_class(self.host, self.port, timeout=self.timeout, **kwargs)
        path = f"{self.base_path}/view?vid=monitor"
        try:
            connection.request("GET", path, headers={"Accept": "application/json"})
            response = connection.getresponse()
            body = response.read()
        except ConnectionRefusedError:
            raise nagiosplugin.CheckError(
                f"connection refused by {self.host}:{self.port}: is the instance running?"
            ) from None
        except TimeoutError:
            raise nagiosplugin.CheckError(
                f"no reply from {self.host}:{self.port} within {self.timeout:g} s"
            ) from None
        except OSError as error:
            raise nagiosplugin.CheckError(
                f"cannot reach {self.host}:{self.port}: {error.strerror or error}"
            ) from None
        finally:
            connection.close()

        if response.status == 403:
            raise nagiosplugin.CheckError(
                f"access denied (403) by {self.host}:{self.port}: add this Nagios host to"
                " the instance's haops-monitor-allow option"
            )
        if response.status not in (200, 503):
            raise nagiosplugin.CheckError(
                f"unexpected HTTP status {response.status} from {path}: is it a cubicweb-haops"
                " instance?"
            )
        try:
            document = json.loads(body)
            checks = document["checks"]
        except (ValueError, KeyError, TypeError):
            raise nagiosplugin.CheckError(
                f"unparsable reply from {path}: not a cubicweb-haops monitoring summary"
            ) from None
        return checks

    def probe(self):
        checks = self.fetch()
        for name in self.checks:
            check = checks.get(name)
            if not isinstance(check, dict) or check.get("state") not in SERVER_STATES:
                raise nagiosplugin.CheckError(f"the summary has no valid {name!r} check")
            values = {item.get("label"): item for item in check.get("perfdata", ())}
            judged_here = name == "pool" and self.pool_ranges
            if judged_here and "pool_usage" not in values:
                raise nagiosplugin.CheckError(
                    "-w/-c have no share to judge: the instance's connection pool is"
                    " unlimited (set connections-pool-max-size) or disabled"
                )
            # The ranges judge the pool's share: the instance's message stays,
            # as information.
            yield nagiosplugin.Metric(
                name,
                (check["state"], str(check.get("message", ""))),
                context="server_info" if judged_here else "server",
            )
            labels = GRAPHED[name]
            for label in values if labels is None else labels:
                item = values.get(label)
                if item is None:
                    continue
                if labels is None:
                    self.thresholds[label] = (item.get("warning"), item.get("critical"))
                yield nagiosplugin.Metric(
                    label,
                    item["value"],
                    item.get("unit") or None,
                    min=item.get("minimum"),
                    max=item.get("maximum"),
                    context=GRAPH_CONTEXT if labels is None else label,
                )


class GraphContext(nagiosplugin.Context):
    """Pass a value to the graphs with the instance's thresholds; judge nothing,
    since the instance's state for the check already did."""

    def evaluate(self, metric, resource):
        return self.result_cls(nagiosplugin.Ok, None, metric)

    def performance(self, metric, resource):
        warning, critical = resource.thresholds.get(metric.name, (None, None))
        return nagiosplugin.Performance(
            metric.name,
            metric.value,
            metric.uom or "",
            "" if warning is None else f"{warning:g}",
            "" if critical is None else f"{critical:g}",
            "" if metric.min is None else metric.min,
            "" if metric.max is None else metric.max,
        )


class ServerStateContext(nagiosplugin.Context):
    """Judge a check by the state that the instance gave it."""

    def evaluate(self, metric, resource):
        state, message = metric.value
        return self.result_cls(SERVER_STATES[state], f"{metric.name}: {message}", metric)


class ServerInfoContext(nagiosplugin.Context):
    """Show the instance's message for a check that the command line judges."""

    def evaluate(self, metric, resource):
        _state, message = metric.value
        hint = f"{metric.name}: {message} (judged by -w/-c, not by the instance's thresholds)"
        return self.result_cls(nagiosplugin.Ok, hint, metric)


class WorstStateSummary(nagiosplugin.Summary):
    """One status line: every message when all is OK, else every problem, the worst first."""

    def ok(self, results):
        return "; ".join(str(result) for result in results if result.hint)

    def problem(self, results):
        # Every problem, the most significant first, so that an UNKNOWN
        # does not hide a CRITICAL of another check.
        problems = sorted(
            (result for result in results if result.state != nagiosplugin.Ok and result.hint),
            key=lambda result: result.state.code,
            reverse=True,
        )
        return "; ".join(str(result) for result in problems)


class PluginArgumentParser(argparse.ArgumentParser):
    """Report bad arguments as UNKNOWN, the way Nagios expects from a plugin."""

    def error(self, message):
        # Nagios shows the plugin's standard output, not its error output.
        print(f"HAOPS UNKNOWN - {message}")
        sys.exit(nagiosplugin.Unknown.code)


def threshold_range(text):
    """Return *text* once checked as a Monitoring Plugins range."""
    try:
        nagiosplugin.Range(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid range {text!r}: use the Monitoring Plugins syntax, such as 80, ~:90 or @10:20"
        ) from None
    return text


def parse_arguments(argv=None):
    parser = PluginArgumentParser(
        prog="check_haops",
        description="Check a CubicWeb instance through the monitoring URLs of cubicweb-haops.",
    )
    parser.add_argument("-H", "--hostname", required=True, help="host name or address of the instance")
    parser.add_argument("-p", "--port", type=int, help="TCP port (default 80, or 443 with --ssl)")
    parser.add_argument(
        "-u", "--url", metavar="BASE_PATH", default="/", help="base path of the site (default /)"
    )
    parser.add_argument("--ssl", action="store_true", help="connect with HTTPS")
    parser.add_argument(
        "-C", "--check", choices=(*CHECKS, "all"), default="all", help="which check to run (default all)"
    )
    parser.add_argument(
        "-w", "--warning", metavar="RANGE", type=threshold_range,
        help="warning range for the pool's share in use, in %% (default: the instance's)",
    )
    parser.add_argument(
        "-c", "--critical", metavar="RANGE", type=threshold_range,
        help="critical range for the pool's share in use, in %% (default: the instance's)",
    )
    parser.add_argument("-t", "--timeout", type=float, default=10, help="seconds before UNKNOWN (default 10)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more output")
    arguments = parser.parse_args(argv)

    ranges = arguments.warning is not None or arguments.critical is not None
    if ranges and arguments.check not in ("pool", "all"):
        parser.error(
            "-w/-c judge the pool's share in use: use them with -C pool or -C all,"
            f" not -C {arguments.check}"
        )
    return arguments


@nagiosplugin.guarded
def main(argv=None):
    arguments = parse_arguments(argv)
    checks = CHECKS if arguments.check == "all" else (arguments.check,)
    port = arguments.port or (443 if arguments.ssl else 80)
    pool_ranges = arguments.warning is not None or arguments.critical is not None
    resource = SummaryResource(
        arguments.hostname, port, arguments.url, arguments.ssl, checks,
        arguments.timeout, pool_ranges,
    )
    contexts = [
        ServerStateContext("server"),
        ServerInfoContext("server_info"),
        nagiosplugin.ScalarContext("pool_usage", arguments.warning, arguments.critical),
        *(
            nagiosplugin.ScalarContext(label)
            for label in ("connections_in_use", "connections_open", "time")
        ),
        GraphContext(GRAPH_CONTEXT),
    ]
    check = nagiosplugin.Check(resource, *contexts, WorstStateSummary())
    # nagiosplugin aborts with UNKNOWN past its own timeout: leave the HTTP
    # timeout the time to give its clearer message first.
    check.main(verbose=arguments.verbose, timeout=arguments.timeout + 1)

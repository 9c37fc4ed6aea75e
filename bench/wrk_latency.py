"""One bounded run of Debian's ``wrk --latency`` and the figures of its report."""

import re
import shlex
import subprocess
from dataclasses import dataclass

WRK = "wrk"

REQUESTS_PER_SECOND = re.compile(r"Requests/sec:\s+([0-9.]+)")
REQUEST_COUNT = re.compile(r"(\d+) requests in")
NON_SUCCESS = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
SOCKET_ERRORS = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)
# wrk 4.1 prints each percentile with the unit it picked for that value.
PERCENTILE = r"^\s+{}%\s+([0-9.]+)(us|ms|s|m)\s*$"
MILLISECONDS_PER_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


@dataclass(frozen=True)
class WrkResult:
    """Figures of one wrk run; latencies in milliseconds."""

    requests_per_second: float
    requests: int
    p50: float
    p99: float
    # Responses with another status than 2xx or 3xx.
    non_success: int
    # Connect, read, write and timeout errors added up.
    socket_errors: int


def wrk_command(url, seconds, connections, threads=1, timeout=2):
    """Return the wrk command line that measures *url* for *seconds* seconds."""
    return [
        WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
        "--timeout", f"{timeout}s", "--latency", url,
    ]


def command_text(command):
    return shlex.join(command)


def percentile(output, percent):
    match = re.search(PERCENTILE.format(percent), output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {percent}% latency in the wrk output:\n{output}")
    return float(match.group(1)) * MILLISECONDS_PER_UNIT[match.group(2)]


def parse_report(output):
    """Return the WrkResult of the report that ``wrk --latency`` printed."""
    rate = REQUESTS_PER_SECOND.search(output)
    count = REQUEST_COUNT.search(output)
    if rate is None or count is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    non_success = NON_SUCCESS.search(output)
    socket_errors = SOCKET_ERRORS.search(output)
    return WrkResult(
        requests_per_second=float(rate.group(1)),
        requests=int(count.group(1)),
        p50=percentile(output, 50),
        p99=percentile(output, 99),
        non_success=int(non_success.group(1)) if non_success else 0,
        socket_errors=sum(map(int, socket_errors.groups())) if socket_errors else 0,
    )


def run_wrk(url, seconds, connections, threads=1, timeout=2):
    """Run wrk on *url* as :func:`wrk_command` sets it and return its WrkResult."""
    command = wrk_command(url, seconds, connections, threads, timeout)
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    return parse_report(output)

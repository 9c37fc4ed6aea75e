"""Benchmarks of the monitoring views, on PostgreSQL and a real instance process.

Three cases, on the site of :mod:`monitoring_site`:

- Views against the floor: requests per second and p50/p99 latency with
  Debian's ``wrk --latency``. It measures the four monitoring views, a
  constant pyramid route in the same process (the floor), and the same views
  served through CubicWeb's usual web path (the naive views). Targets:
  monitor_hostname and monitor_pool at least 0.8 of the floor's throughput,
  monitor_db and monitor_version at least 0.5.
- Under saturation: with a pool of two connections, both held by
  ``haopstest_hold`` requests, the p99 latency of monitor_pool (target: under
  50 ms) and what single requests to the naive monitor_pool get meanwhile.
- Polling leaves no trace: 10,000 polls of the four views on one keep-alive
  connection, with the CWSession rows, the pool's open connections and the
  process's resident memory before and after. Targets: no new row, the pool
  unchanged, and memory growth under 2% of the resident size after a warm-up
  of 1,000 polls. 1,000 naive polls show what the usual path does instead.
"""

import http.client
import math
import shutil
import statistics
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from monitoring_site import MonitoringSite
from wrk_latency import WRK, command_text, run_wrk, wrk_command

VIEWS = ("monitor_hostname", "monitor_pool", "monitor_db", "monitor_version")
NAIVE_PREFIX = "naive_"
# Minimum throughput of each view, as a share of the floor's.
THROUGHPUT_TARGETS = {
    "monitor_hostname": 0.8,
    "monitor_pool": 0.8,
    "monitor_db": 0.5,
    "monitor_version": 0.5,
}

# One-second runs keep the section within about 3 minutes at 5 repeats. The
# saturation runs take place inside a hold window that lasts anyway.
THROUGHPUT_SECONDS = 1
SATURATION_SECONDS = 2
WRK_CONNECTIONS = 4
WRK_TIMEOUT = 2
# wrk stops at its deadline with requests still running in the server, and
# monitor_db and monitor_version reject a request while 4 earlier database
# probes are pending, so without a pause the next run would start with 503s.
SETTLE_SECONDS = 0.2

# Under saturation: a pool of POOL_SIZE connections, each taken by one hold
# request of HOLD_SECONDS (the test cube caps a hold at 20 s). A naive
# request waits 5 s each time it requests a connection from the full pool,
# and took three such waits (15 s) with cubicweb-web 1.6.2 and database
# sessions, so the hold requests must outlast the naive requests too.
POOL_SIZE = 2
# _CnxSetPool.get in CubicWeb 5.0.1 waits this long for a free connection.
POOL_WAIT_SECONDS = 5
HOLD_SECONDS = 18
NAIVE_REQUESTS = 3
NAIVE_SPACING = 1.0
NAIVE_TIMEOUT = 20
P99_TARGET_MS = 50.0
# The frame of a traceback that cubicweb-web 1.6.2 logs when its error handler
# fails to get a pool connection for the error page.
ERROR_HANDLER_FRAME = "in error_handler"
# wrk runs of monitor_pool that fit in one hold window with the naive requests.
RUNS_PER_WINDOW = 5
# The hold requests, the naive requests and wrk's connections each take a
# thread, and two spare threads serve the pool checks between runs.
INSTANCE_THREADS = POOL_SIZE + NAIVE_REQUESTS + WRK_CONNECTIONS + 2

POLLS = 10_000
WARMUP_POLLS = 1_000
NAIVE_POLLS = 1_000
RSS_GROWTH_TARGET = 0.02
CONNECT_SAMPLES = 5


def summary(values):
    return min(values), statistics.median(values), max(values)


def triple(values, digits=1):
    low, median, high = summary(values)
    return f"{low:.{digits}f} / {median:.{digits}f} / {high:.{digits}f}"


def verdict(met):
    return "met" if met else "MISSED"


# Case 1: views against the floor.


def throughput_case(site, repeats):
    """Return the wrk results of every target, *repeats* runs each, alternated."""
    targets = ["floor", *VIEWS, *(NAIVE_PREFIX + vid for vid in VIEWS)]
    paths = {target: site.path(target) for target in targets}
    paths["floor"] = site.floor_path
    results = {target: [] for target in targets}
    for _ in range(repeats):
        for target in targets:
            url = site.url(paths[target])
            results[target].append(
                run_wrk(url, THROUGHPUT_SECONDS, WRK_CONNECTIONS, timeout=WRK_TIMEOUT)
            )
            time.sleep(SETTLE_SECONDS)
    return results


def probe_connect_ms(site):
    """Return the time monitor_db's probe spent connecting, in milliseconds, from its perfdata."""
    text = site.fetch_text(site.path("monitor_db"))
    for metric in text.split("|", 1)[1].split():
        label, _, value = metric.partition("=")
        if label == "'connect_time'":
            return 1000 * float(value.split(";")[0].rstrip("s"))
    raise RuntimeError(f"no connect_time in the monitor_db output:\n{text}")


def median_connect_ms(site, count=CONNECT_SAMPLES):
    return statistics.median(probe_connect_ms(site) for _ in range(count))


def throughput_report(site, results, connect_ms):
    floor_rates = [result.requests_per_second for result in results["floor"]]

    def ratios(target):
        rates = [result.requests_per_second for result in results[target]]
        return [rate / floor for rate, floor in zip(rates, floor_rates)]

    def row(target):
        runs = results[target]
        ratio = "1" if target == "floor" else triple(ratios(target), 2)
        failures = sum(result.non_success + result.socket_errors for result in runs)
        return (
            f"| {target} | {triple([run.requests_per_second for run in runs], 0)}"
            f" | {triple([run.p50 for run in runs])} | {triple([run.p99 for run in runs])}"
            f" | {ratio} | {failures} |"
        )

    command = command_text(
        wrk_command(
            site.url(site.path("VID")), THROUGHPUT_SECONDS, WRK_CONNECTIONS, timeout=WRK_TIMEOUT
        )
    )
    lines = [
        "## Monitoring views against the floor",
        "",
        "One instance process served by `cubicweb-ctl haops-start` with"
        f" {INSTANCE_THREADS} threads, on a PostgreSQL cluster on the same host, with an"
        " anonymous user and sessions stored in the database.",
        "",
        f"`{command}` for each row (the floor: `{site.floor_path}`, a pyramid route in the"
        f" same process that returns a constant text), {len(floor_rates)} runs each,"
        " alternated. Ratios are each run's throughput over the floor's in the same"
        " round. Naive views render the same text through CubicWeb's usual web path.",
        "",
        "Each cell gives the min / median / max of the runs, except the last, a total.",
        "",
        "| target | requests/s | p50 (ms) | p99 (ms) | throughput / floor"
        " | non-2xx or socket errors |",
        "|---|---|---|---|---|---:|",
        *(row(target) for target in results),
        "",
    ]
    for vid, target in THROUGHPUT_TARGETS.items():
        median = statistics.median(ratios(vid))
        lines.append(
            f"- {vid} at least {target:g} of the floor's throughput:"
            f" {verdict(median >= target)} ({median:.2f}, median)."
        )
    lines += [
        "",
        "What limits the views: on top of what the floor costs, every request runs"
        " the access check (the instance's options and the client's address),"
        " builds a CubicWeb request, and selects and renders a view. monitor_db and monitor_version also open a new"
        " PostgreSQL connection on purpose, so that they test the database and not"
        " the pool, and run their query in a worker thread bounded in time. That"
        f" connection took {connect_ms:.1f} ms (median of {CONNECT_SAMPLES} monitor_db"
        " requests after the runs, from its `connect_time`). The naive views also"
        " take a session and a pool connection, and create a CWSession row for"
        " every request without a cookie.",
        "",
    ]
    return "\n".join(lines)


# Case 2: under saturation.


def timed_get(url, timeout):
    """Return the status (or the error's name) and the seconds of one GET of *url*."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        with error:
            error.read()
        status = error.code
    except OSError as error:
        status = type(error).__name__
    return status, time.monotonic() - started


def in_background(function, *args):
    """Start *function* in a thread and return the thread with the list that receives its result."""
    result = []
    thread = threading.Thread(target=lambda: result.append(function(*args)), daemon=True)
    thread.start()
    return thread, result


def wait_for_pool_in_use(site, count, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if site.pool_connections()[0] == count:
            return
        time.sleep(0.05)
    raise TimeoutError(f"the pool never had {count} connections in use within {timeout} s")


@dataclass
class SaturationResults:
    """Measurements of the saturation case: wrk runs of monitor_pool and the
    (status, seconds) of each naive request."""

    wrk_runs: list = field(default_factory=list)
    naive: list = field(default_factory=list)
    # Status and first line of one monitor_pool response after the runs.
    pool_line: str = ""
    # Whether a traceback in the instance's output passes through
    # cubicweb-web's error handler, which requests a connection again.
    error_handler_waited: bool = False


def hold_window(site, runs, with_naive, results):
    """Take every pool connection with hold requests, then measure
    monitor_pool *runs* times and, if *with_naive*, send the naive requests.
    Add the measurements to *results*."""
    hold_url = site.url(site.path("haopstest_hold") + f"&seconds={HOLD_SECONDS}")
    hold_requests = [
        in_background(timed_get, hold_url, HOLD_SECONDS + 30) for _ in range(POOL_SIZE)
    ]
    naive = []
    try:
        wait_for_pool_in_use(site, POOL_SIZE)
        if with_naive:
            naive_url = site.url(site.path(NAIVE_PREFIX + "monitor_pool"))
            for number in range(NAIVE_REQUESTS):
                if number:
                    time.sleep(NAIVE_SPACING)
                naive.append(in_background(timed_get, naive_url, NAIVE_TIMEOUT))
        url = site.url(site.path("monitor_pool"))
        for _ in range(runs):
            results.wrk_runs.append(
                run_wrk(url, SATURATION_SECONDS, WRK_CONNECTIONS, timeout=WRK_TIMEOUT)
            )
        for thread, _ in naive:
            thread.join(NAIVE_TIMEOUT + 5)
        if naive:
            results.error_handler_waited = ERROR_HANDLER_FRAME in site.log_text()
        status, text = site.fetch(site.path("monitor_pool"))
        results.pool_line = f"{status} {text.splitlines()[0]}"
        # The pool is still full after every measurement, so the hold
        # requests covered all of them.
        in_use = site.pool_connections()[0]
        if in_use != POOL_SIZE:
            raise RuntimeError(
                f"the hold requests released the pool too early: {in_use} of {POOL_SIZE}"
                " connections in use after the measurement; raise HOLD_SECONDS"
            )
    finally:
        for thread, _ in hold_requests:
            thread.join(HOLD_SECONDS + 35)
    hold_statuses = [result[0][0] if result else "no response" for _, result in hold_requests]
    if any(status != 200 for status in hold_statuses):
        raise RuntimeError(f"a hold request failed: {hold_statuses}")
    results.naive += [result[0] for _, result in naive if result]


def saturation_case(site, repeats):
    """Restart with a bounded pool and return the SaturationResults."""
    site.restart({"connections-pool-max-size": str(POOL_SIZE)})
    results = SaturationResults()
    for first in range(0, repeats, RUNS_PER_WINDOW):
        runs = min(RUNS_PER_WINDOW, repeats - first)
        hold_window(site, runs, with_naive=first == 0, results=results)
    return results


def naive_description(naive, error_handler_waited):
    """Describe what the naive requests got, and why, in one paragraph."""
    outcomes = ", ".join(f"{status} after {seconds:.1f} s" for status, seconds in naive)
    waits = round(statistics.median(seconds for _, seconds in naive) / POOL_WAIT_SECONDS)
    text = (
        f"Meanwhile {len(naive)} single requests to naive_monitor_pool, {NAIVE_SPACING:g} s"
        f" apart, each with a {NAIVE_TIMEOUT} s client timeout: {outcomes}. CubicWeb 5.0.1"
        f" waits {POOL_WAIT_SECONDS} s each time a request needs a connection from the"
        f" full pool, then raises an error. A naive request took about {waits} such waits"
    )
    if waits > 1 and error_handler_waited:
        text += (
            " (the instance log shows cubicweb-web's error handler asking the pool again"
            " after the first wait failed)"
        )
    return text + ", and reports nothing about the pool."


def saturation_report(site, results):
    runs = results.wrk_runs
    worst_p99 = max(run.p99 for run in runs)
    command = command_text(
        wrk_command(
            site.url(site.path("monitor_pool")),
            SATURATION_SECONDS,
            WRK_CONNECTIONS,
            timeout=WRK_TIMEOUT,
        )
    )
    answered = sum(run.requests for run in runs)
    not_success = sum(run.non_success for run in runs)
    errors = sum(run.socket_errors for run in runs)
    lines = [
        "## Monitoring under saturation",
        "",
        f"`connections-pool-max-size = {POOL_SIZE}`, both connections held by"
        f" `haopstest_hold` requests of {HOLD_SECONDS} s for the whole measurement (checked"
        f" with the pool count after it), {INSTANCE_THREADS} server threads."
        f" `{command}`, {len(runs)} runs.",
        "",
        "| monitor_pool | min / median / max |",
        "|---|---|",
        f"| requests/s | {triple([run.requests_per_second for run in runs], 0)} |",
        f"| p50 (ms) | {triple([run.p50 for run in runs])} |",
        f"| p99 (ms) | {triple([run.p99 for run in runs])} |",
        "",
        f"{not_success} of {answered} responses had a status other than 2xx or 3xx,"
        f" {errors} socket errors. A monitor_pool response after the runs (status,"
        f" first line): `{results.pool_line}`.",
        "",
        f"- p99 of monitor_pool under {P99_TARGET_MS:g} ms in every run:"
        f" {verdict(worst_p99 < P99_TARGET_MS)} (worst {worst_p99:.1f} ms).",
        "",
        naive_description(results.naive, results.error_handler_waited),
        "",
    ]
    return "\n".join(lines)


# Case 3: polling leaves no trace.


def poll(site, paths, count):
    """Send *count* GETs of *paths* in turn on one keep-alive connection.

    Return the number of responses that were not 200 or set a cookie.
    """
    connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=30)
    unexpected = 0
    try:
        for number in range(count):
            connection.request("GET", paths[number % len(paths)])
            response = connection.getresponse()
            response.read()
            if response.status != 200 or response.getheader("Set-Cookie"):
                unexpected += 1
    finally:
        connection.close()
    return unexpected


def trace_case(site, repeats):
    """Poll the views, with the session rows, pool and memory after each run."""
    paths = [site.path(vid) for vid in VIEWS]
    naive_paths = [site.path(NAIVE_PREFIX + vid) for vid in VIEWS]
    per_run = math.ceil(POLLS / repeats)

    figures = {"rows_before": site.session_rows(), "pool_before": site.pool_connections()}
    unexpected = poll(site, paths, WARMUP_POLLS)
    figures["rss_warm"] = site.rss_kib()
    runs = []
    for _ in range(repeats):
        before = site.rss_kib()
        unexpected += poll(site, paths, per_run)
        runs.append(
            {
                "rss_growth": site.rss_kib() - before,
                "rows": site.session_rows(),
                "pool": site.pool_connections(),
            }
        )
    figures.update(runs=runs, unexpected=unexpected, polls=per_run * repeats)
    figures["rss_after"] = site.rss_kib()

    rows_before_naive = site.session_rows()
    # Naive responses set cookies, which this client never sends back.
    poll(site, naive_paths, NAIVE_POLLS)
    figures["naive_rows"] = site.session_rows() - rows_before_naive
    return figures


def trace_report(figures):
    runs = figures["runs"]
    new_rows = [run["rows"] - figures["rows_before"] for run in runs]
    pools = [run["pool"] for run in runs]
    growth = figures["rss_after"] - figures["rss_warm"]
    share = growth / figures["rss_warm"]
    in_use, open_count = figures["pool_before"]
    lines = [
        "## Polling leaves no trace",
        "",
        f"{figures['polls']:,} GETs of {', '.join(VIEWS)} in turn on one keep-alive"
        f" connection (Python's http.client, no cookie kept), in {len(runs)} runs of"
        f" {figures['polls'] // len(runs):,}, after a warm-up of {WARMUP_POLLS:,}. Session"
        " rows are counted in the database, the pool from the `monitor` JSON and the"
        " memory from VmRSS in `/proc/PID/status` of the instance process.",
        "",
        "| figure | before | after each run |",
        "|---|---|---|",
        f"| CWSession rows | {figures['rows_before']} |"
        f" {', '.join(str(run['rows']) for run in runs)} |",
        f"| pool: connections in use, open | {in_use}, {open_count} |"
        f" {'; '.join(f'{pool[0]}, {pool[1]}' for pool in pools)} |",
        f"| VmRSS (KiB) | {figures['rss_warm']} after the warm-up | {figures['rss_after']}"
        f" after the last run; growth per run min / median / max"
        f" {triple([run['rss_growth'] for run in runs], 0)}, the database and pool"
        " checks between runs adding their own share to the total |",
        "",
        f"Responses other than 200, or with `Set-Cookie`: {figures['unexpected']}.",
        "",
        f"- No new session row: {verdict(max(new_rows) == 0)} ({max(new_rows)} new).",
        f"- Pool unchanged: {verdict(all(pool == figures['pool_before'] for pool in pools))}.",
        f"- Memory unchanged within noise (growth after the warm-up under"
        f" {RSS_GROWTH_TARGET:.0%} of VmRSS): {verdict(share < RSS_GROWTH_TARGET)}"
        f" ({growth:+d} KiB, {share:+.2%}).",
        "",
        f"For contrast, {NAIVE_POLLS:,} polls of the naive views in the same way created"
        f" {figures['naive_rows']:,} CWSession rows.",
        "",
    ]
    return "\n".join(lines)


def section(repeats):
    """Run the three cases on one site and return their Markdown report."""
    if shutil.which(WRK) is None:
        raise RuntimeError("wrk not found: install Debian's wrk package (make system-packages)")
    site = MonitoringSite(INSTANCE_THREADS)
    try:
        site.start()
        throughput = throughput_case(site, repeats)
        connect_ms = median_connect_ms(site)
        # Before the restart, because the saturation case bounds the pool and
        # this one measures the process with its default, unlimited pool.
        trace = trace_case(site, repeats)
        saturation = saturation_case(site, repeats)
    finally:
        site.stop()
    report = [
        throughput_report(site, throughput, connect_ms),
        saturation_report(site, saturation),
        trace_report(trace),
    ]
    return "\n".join(report)


if __name__ == "__main__":
    print(section(3))

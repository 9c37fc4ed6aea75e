"""Judge a round trip to the database: whether it responds, and how fast."""

from cubicweb_haops.monitoring.database import (
    ProbeError,
    ProbeTimeout,
    log_probe_failure,
    run_probe,
)
from cubicweb_haops.monitoring.status import CheckResult, Metric, State

ROUND_TRIP_SQL = "SELECT 1"


def check_round_trip(dbhelper, timeout):
    """Connect to the database, run a trivial query and time both."""
    try:
        result = run_probe(dbhelper, ROUND_TRIP_SQL, timeout)
    except ProbeTimeout as error:
        log_probe_failure("monitor_db", error)
        return CheckResult(State.KO, f"database not answering: {error}")
    except ProbeError as error:
        log_probe_failure("monitor_db", error)
        return CheckResult(State.KO, f"database not answering: {error}, see the instance log")

    metrics = (
        Metric("time", round(result.total_time, 6), "s", critical=timeout, minimum=0),
        Metric("connect_time", round(result.connect_time, 6), "s", minimum=0),
        Metric("query_time", round(result.query_time, 6), "s", minimum=0),
    )
    return CheckResult(
        State.OK,
        f"database answered in {result.total_time:.3f} s",
        metrics,
        (f"backend: {dbhelper.backend_name}",),
    )

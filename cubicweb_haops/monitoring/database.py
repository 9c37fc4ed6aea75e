"""A query on a fresh database connection, bounded in time, for the checks.

The probe does not use the connection pool: it tests the database itself and
keeps working when every pooled connection is busy. It runs in a worker
thread so that a database that accepts connections but never responds costs
the caller *timeout* seconds, not a hung request.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass

from cubicweb_haops.monitoring.ratelimit import RateLimitedLogger

LOGGER = logging.getLogger("cubicweb.haops.database")
FAILURES = RateLimitedLogger(LOGGER)

# A hung database leaves probe threads waiting in the driver. New probes are
# rejected while this many are still waiting, so that frequent polls cannot
# pile up threads and connections.
MAX_PENDING_PROBES = 4

_pending = threading.BoundedSemaphore(MAX_PENDING_PROBES)


class ProbeError(Exception):
    """The database could not be reached or queried; the message is safe to show."""


class ProbeTimeout(ProbeError):
    """The database did not respond within the time allowed."""


@dataclass(frozen=True)
class ProbeResult:
    """Rows returned by the probe query, with durations in seconds."""

    rows: list
    connect_time: float
    query_time: float

    @property
    def total_time(self):
        return self.connect_time + self.query_time


def _connect(dbhelper, timeout):
    """Open a new connection with the system source's settings."""
    extra_args = dbhelper.dbextraargs
    if dbhelper.backend_name == "postgres":
        # libpq counts connect_timeout in whole seconds, 2 at least. Give it
        # more than the caller's wait, so that a hung server is always
        # reported as a timeout, then frees this thread soon after.
        bound = f"connect_timeout={max(2, math.ceil(timeout)) + 2}"
        extra_args = f"{bound} {extra_args}" if extra_args else bound
    return dbhelper.dbapi_module.connect(
        dbhelper.dbhost,
        dbhelper.dbname,
        dbhelper.dbuser,
        dbhelper.dbpasswd,
        port=dbhelper.dbport,
        schema=dbhelper.dbschema,
        extra_args=extra_args,
    )


def _run(dbhelper, sql, timeout):
    started = time.monotonic()
    try:
        cnx = _connect(dbhelper, timeout)
    except Exception as exc:
        raise ProbeError(
            f"connection to the database failed ({type(exc).__name__})"
        ) from exc
    try:
        connected = time.monotonic()
        cursor = cnx.cursor()
        if dbhelper.backend_name == "postgres":
            # Stop the query on the server too, not only the wait for it.
            cursor.execute(f"SET statement_timeout = {max(1, int(timeout * 1000))}")
        cursor.execute(sql)
        rows = cursor.fetchall()
        finished = time.monotonic()
    finally:
        try:
            cnx.close()
        except Exception:  # the probe's outcome is already decided
            LOGGER.debug("closing the probe connection failed", exc_info=True)
    return ProbeResult(rows, connected - started, finished - connected)


def run_probe(dbhelper, sql, timeout):
    """Run *sql* on a new connection and return its rows within *timeout* seconds.

    Raise ProbeTimeout when the database does not respond in time and ProbeError
    when it fails; the driver's message, which may name hosts and users, goes
    to the log with the traceback, not into the exception.
    """
    if not _pending.acquire(blocking=False):
        raise ProbeTimeout(
            f"{MAX_PENDING_PROBES} earlier database probes are still waiting for a response"
        )
    outcome = {}
    done = threading.Event()

    def work():
        try:
            outcome["result"] = _run(dbhelper, sql, timeout)
        except BaseException as exc:  # handed over to the waiting thread
            outcome["error"] = exc
        finally:
            _pending.release()
            done.set()

    threading.Thread(target=work, name="haops-db-probe", daemon=True).start()
    if not done.wait(timeout):
        raise ProbeTimeout(f"the database probe timed out after {timeout:g} s")
    error = outcome.get("error")
    if isinstance(error, ProbeError):
        raise error
    if error is not None:
        raise ProbeError(f"the database query failed ({type(error).__name__})") from error
    return outcome["result"]


def log_probe_failure(check_name, error):
    """Log why a probe failed, with the driver's traceback, once a minute at most."""
    FAILURES.log(
        logging.ERROR, (check_name, str(error)), "%s: %s", check_name, error, exc_info=error
    )

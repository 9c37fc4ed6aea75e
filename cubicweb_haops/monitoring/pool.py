"""Measure and judge how much of the database connection pool is in use.

The pool is the repository's ``cnxsets`` attribute. CubicWeb 5 has two kinds:
``_CnxSetPool``, which counts open and idle connections under a lock, and
``_BaseCnxSet`` when ``connections-pooler-enabled = no``, which opens a
connection per request and counts nothing (its ``qsize()`` returns None).
Counting takes no connection.
"""

from dataclasses import dataclass

from cubicweb_haops.monitoring.status import CheckResult, Metric, State
from cubicweb_haops.monitoring.thresholds import format_percent


@dataclass(frozen=True)
class PoolUsage:
    """Connections of one process's pool; ``max_size`` 0 means unlimited."""

    pooling: bool
    in_use: int = 0
    open: int = 0
    max_size: int = 0

    @property
    def percent_in_use(self):
        """Share of ``max_size`` in use, or None when the pool is unlimited."""
        if not self.max_size:
            return None
        return 100.0 * self.in_use / self.max_size


def measure_pool(cnxsets):
    """Count the connections of *cnxsets* without taking one."""
    idle = cnxsets.qsize()
    if idle is None:
        return PoolUsage(pooling=False)
    total = cnxsets.size()
    # size() and qsize() are read one after the other while other threads
    # take and release connections, so keep the difference within bounds.
    in_use = min(max(total - idle, 0), total)
    return PoolUsage(
        pooling=True, in_use=in_use, open=total, max_size=cnxsets.max_size or 0
    )


def judge_pool(usage, thresholds):
    """Turn *usage* into a check result against percent *thresholds*."""
    if not usage.pooling:
        return CheckResult(
            State.OK,
            "connection pooler disabled (connections-pooler-enabled = no): "
            "each request opens its own database connection",
        )

    counts = (
        Metric("connections_in_use", usage.in_use, minimum=0, maximum=usage.max_size or None),
        Metric("connections_open", usage.open, minimum=0, maximum=usage.max_size or None),
    )
    percent = usage.percent_in_use
    if percent is None:
        return CheckResult(
            State.OK,
            f"{usage.in_use} connections in use, {usage.open} open, "
            "pool size unlimited (connections-pool-max-size = 0)",
            counts,
        )

    if percent > thresholds.critical:
        state = State.KO
    elif percent > thresholds.warning:
        state = State.WARNING
    else:
        state = State.OK
    share = Metric(
        "pool_usage",
        round(percent, 2),
        "%",
        warning=thresholds.warning,
        critical=thresholds.critical,
        minimum=0,
        maximum=100,
    )
    return CheckResult(
        state,
        f"{format_percent(round(percent, 1))}% of the connection pool in use "
        f"({usage.in_use} of {usage.max_size}, {usage.open} open; "
        f"warning above {format_percent(thresholds.warning)}%, "
        f"critical above {format_percent(thresholds.critical)}%)",
        (share,) + counts,
    )

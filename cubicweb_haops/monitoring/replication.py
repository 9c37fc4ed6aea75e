"""PostgreSQL streaming replication, seen from the database the instance uses.

On a primary the check lists the standbys that stream from it
(``pg_stat_replication``) and the physical replication slots that no standby
uses at the moment: a standby that stopped shows there, under its slot's
name. On a standby it reports how far replay is behind what was received,
and whether WAL still arrives. Measuring (one query on a fresh connection,
bounded in time) is apart from judging, so that the judgement is tested on
plain values.
"""

import re
from dataclasses import dataclass

from cubicweb_haops.monitoring.database import (
    ProbeError,
    ProbeTimeout,
    log_probe_failure,
    run_probe,
)
from cubicweb_haops.monitoring.status import CheckResult, Metric, State

# On a standby, one row describes it (receiver status, replay state). On a
# primary, one row per standby streaming from it and one per unused slot. Every
# expression that only a primary may evaluate sits behind its WHERE clause.
# A WAL receiver whose status is hidden (no pg_monitor) reads 'hidden', and
# a missing WAL receiver reads NULL.
REPLICATION_SQL = """
SELECT 'standby', NULL, (SELECT COALESCE(status, 'hidden') FROM pg_stat_wal_receiver LIMIT 1),
       NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
       EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8,
       pg_is_wal_replay_paused()
WHERE pg_is_in_recovery()
UNION ALL
SELECT 'streaming', application_name, state,
       EXTRACT(EPOCH FROM write_lag)::float8,
       EXTRACT(EPOCH FROM flush_lag)::float8,
       EXTRACT(EPOCH FROM replay_lag)::float8,
       pg_wal_lsn_diff(pg_current_wal_lsn(), write_lsn)::float8,
       pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)::float8,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8,
       NULL, NULL, NULL
FROM pg_stat_replication WHERE NOT pg_is_in_recovery()
UNION ALL
SELECT 'slot', slot_name, NULL, NULL, NULL, NULL, NULL, NULL,
       pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8, NULL, NULL, NULL
FROM pg_replication_slots
WHERE NOT pg_is_in_recovery() AND slot_type = 'physical' AND NOT active
"""


@dataclass(frozen=True)
class Standby:
    """A standby seen from the primary: lags in seconds, and in bytes of WAL
    written on the primary and not yet written, flushed or replayed there."""

    name: str
    state: str | None
    write_lag: float | None
    flush_lag: float | None
    replay_lag: float | None
    replay_bytes: float | None
    write_bytes: float | None = None
    flush_bytes: float | None = None


@dataclass(frozen=True)
class PrimaryStatus:
    """The standbys streaming from a primary, and its unused physical slots."""

    standbys: tuple[Standby, ...]
    idle_slots: tuple[str, ...]


@dataclass(frozen=True)
class StandbyStatus:
    """A standby's own view: ``receiver`` is its WAL receiver's status or None,
    ``behind_bytes`` the WAL received and not yet replayed, ``replay_delay``
    the seconds since the last replayed transaction was committed (None when
    none was replayed since startup)."""

    receiver: str | None
    replay_delay: float | None
    behind_bytes: float | None
    paused: bool


@dataclass(frozen=True)
class LagThresholds:
    """Replay lag in seconds above which a standby warns or is critical."""

    warning: float
    critical: float


def parse_rows(rows):
    """Return the PrimaryStatus or StandbyStatus described by REPLICATION_SQL's rows."""
    standbys, idle_slots = [], []
    for row in rows:
        kind, name, state, write, flush, replay, write_bytes, flush_bytes, lag_bytes = row[:9]
        delay, behind, paused = row[9:]
        if kind == "standby":
            return StandbyStatus(state, delay, behind, bool(paused))
        if kind == "streaming":
            standbys.append(
                Standby(
                    name or "unnamed", state, write, flush, replay, lag_bytes,
                    write_bytes, flush_bytes,
                )
            )
        elif kind == "slot":
            idle_slots.append(name)
    return PrimaryStatus(tuple(standbys), tuple(idle_slots))


def perfdata_label(name):
    """Return standby *name* as a perfdata label prefix: no quote, equal sign or space."""
    return re.sub(r"['= ]+", "_", name) or "unnamed"


def _seconds(value):
    return "unknown" if value is None else f"{value:.1f} s"


def judge_primary(status, expected, thresholds):
    """Judge a primary's standbys against the *expected* count and the lag *thresholds*."""
    streaming = [standby for standby in status.standbys if standby.state == "streaming"]
    if expected == 0 and not status.standbys and not status.idle_slots:
        return CheckResult(State.OK, "replication not configured: no standby expected or connected")

    if any(standby.state is None for standby in status.standbys):
        # pg_stat_replication hides its columns from users without pg_monitor.
        return CheckResult(
            State.UNKNOWN,
            "cannot read pg_stat_replication: grant pg_monitor to the instance's database user",
        )

    problems = {}  # message -> state
    if len(status.standbys) < expected:
        missing = ", ".join(status.idle_slots) or "no slot names them"
        problems[
            f"{len(status.standbys)} of {expected} expected standby(s) connected"
            f" (not connected: {missing})"
        ] = State.KO
    elif status.idle_slots:
        problems[f"replication slots unused: {', '.join(status.idle_slots)}"] = State.WARNING
    for standby in status.standbys:
        if standby.state != "streaming":
            problems[f"standby {standby.name} is {standby.state}, not streaming"] = State.WARNING
        lag = standby.replay_lag or 0.0
        if lag > thresholds.critical:
            problems[f"standby {standby.name} replays {lag:.1f} s behind"] = State.KO
        elif lag > thresholds.warning:
            problems[f"standby {standby.name} replays {lag:.1f} s behind"] = State.WARNING

    metrics = []
    for standby in status.standbys:
        label = perfdata_label(standby.name)
        for suffix, value in (("write_lag", standby.write_lag), ("flush_lag", standby.flush_lag)):
            metrics.append(Metric(f"{label}_{suffix}", round(value or 0.0, 6), "s", minimum=0))
        metrics.append(
            Metric(
                f"{label}_replay_lag", round(standby.replay_lag or 0.0, 6), "s",
                warning=thresholds.warning, critical=thresholds.critical, minimum=0,
            )
        )
        for suffix, value in (
            ("write_bytes", standby.write_bytes),
            ("flush_bytes", standby.flush_bytes),
            ("replay_bytes", standby.replay_bytes),
        ):
            metrics.append(Metric(f"{label}_{suffix}", int(value or 0), "B", minimum=0))
    metrics.append(Metric("standbys", len(streaming), minimum=0))

    details = tuple(
        f"{standby.name}: {standby.state}, replay lag {_seconds(standby.replay_lag)},"
        f" {int(standby.replay_bytes or 0)} bytes behind"
        for standby in status.standbys
    ) + tuple(f"{slot}: slot not used by any standby" for slot in status.idle_slots)
    if problems:
        state = max(problems.values(), key=lambda value: value.nagios_code)
        return CheckResult(state, "; ".join(problems), tuple(metrics), details)
    names = ", ".join(standby.name for standby in streaming)
    noun = "standby" if len(streaming) == 1 else "standbys"
    return CheckResult(
        State.OK, f"{len(streaming)} {noun} streaming ({names})", tuple(metrics), details
    )


def judge_standby(status, thresholds):
    """Judge a standby: WAL still received, replay delay against *thresholds*."""
    # Just after a restart the receiver counts from the start of a WAL
    # segment, before the replayed position: nothing waits for replay then.
    behind = max(0, int(status.behind_bytes or 0))
    metrics = [Metric("behind_bytes", behind, "B", minimum=0)]
    paused = "; replay paused" if status.paused else ""
    if status.receiver == "hidden":
        return CheckResult(
            State.UNKNOWN,
            "cannot read pg_stat_wal_receiver: grant pg_monitor to the instance's database user",
        )
    if status.receiver != "streaming":
        receiver = status.receiver or "not running"
        return CheckResult(
            State.KO, f"this database is a standby that receives no WAL (receiver {receiver}){paused}",
            tuple(metrics),
        )
    if not behind:
        # Nothing received waits for replay: an old last transaction only
        # means that the primary had nothing to send.
        since = "no transaction replayed since startup" if status.replay_delay is None else (
            f"last transaction replayed {status.replay_delay:.0f} s ago"
        )
        return CheckResult(State.OK, f"standby streaming, replay caught up ({since}){paused}", tuple(metrics))

    delay = status.replay_delay
    metrics.append(
        Metric("replay_delay", round(delay or 0.0, 6), "s", warning=thresholds.warning,
               critical=thresholds.critical, minimum=0)
    )
    waiting = f"{behind} bytes received and not replayed"
    if delay is None:
        return CheckResult(
            State.WARNING, f"standby streaming, {waiting}, none since startup{paused}", tuple(metrics)
        )
    message = f"standby streaming, replay {delay:.1f} s behind, {waiting}{paused}"
    if delay > thresholds.critical:
        return CheckResult(State.KO, message, tuple(metrics))
    if delay > thresholds.warning:
        return CheckResult(State.WARNING, message, tuple(metrics))
    return CheckResult(State.OK, message, tuple(metrics))


def check_replication(dbhelper, timeout, expected, thresholds):
    """Measure replication on a fresh connection within *timeout* seconds and judge it."""
    if dbhelper.backend_name != "postgres":
        return CheckResult(State.OK, f"replication not configured: {dbhelper.backend_name} database")
    try:
        result = run_probe(dbhelper, REPLICATION_SQL, timeout)
    except ProbeTimeout as error:
        log_probe_failure("monitor_replication", error)
        return CheckResult(State.UNKNOWN, f"cannot read the replication status: {error}")
    except ProbeError as error:
        log_probe_failure("monitor_replication", error)
        return CheckResult(
            State.UNKNOWN, f"cannot read the replication status: {error}, see the instance log"
        )
    status = parse_rows(result.rows)
    if isinstance(status, StandbyStatus):
        return judge_standby(status, thresholds)
    return judge_primary(status, expected, thresholds)

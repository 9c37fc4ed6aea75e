"""The replication check's judgement, on plain values."""

from types import SimpleNamespace

import pytest

from cubicweb_haops.monitoring.replication import (
    LagThresholds,
    PrimaryStatus,
    Standby,
    StandbyStatus,
    check_replication,
    judge_primary,
    judge_standby,
    parse_rows,
    perfdata_label,
)
from cubicweb_haops.monitoring.status import State

LIMITS = LagThresholds(60, 300)


def standby(name="standby1", state="streaming", replay_lag=0.5, replay_bytes=0):
    return Standby(name, state, 0.01, 0.02, replay_lag, replay_bytes)


PRIMARY_CASES = [
    # (standbys, idle slots, expected, state, words in the message)
    ((), (), 0, State.OK, "replication not configured"),
    ((standby(),), (), 1, State.OK, "1 standby streaming (standby1)"),
    ((standby(),), (), 0, State.OK, "1 standby streaming"),
    ((standby(), standby("standby2")), (), 2, State.OK, "2 standbys streaming (standby1, standby2)"),
    ((), ("standby1",), 1, State.KO, "0 of 1 expected standby(s) connected (not connected: standby1)"),
    ((), (), 2, State.KO, "not connected: no slot names them"),
    ((), ("old",), 0, State.WARNING, "replication slots unused: old"),
    ((standby(state="catchup"),), (), 1, State.WARNING, "standby1 is catchup, not streaming"),
    ((standby(replay_lag=61),), (), 1, State.WARNING, "standby1 replays 61.0 s behind"),
    ((standby(replay_lag=301),), (), 1, State.KO, "standby1 replays 301.0 s behind"),
    ((standby(state=None),), (), 1, State.UNKNOWN, "grant pg_monitor"),
]


@pytest.mark.parametrize("standbys, slots, expected, state, words", PRIMARY_CASES)
def test_primary_judgement(standbys, slots, expected, state, words):
    result = judge_primary(PrimaryStatus(standbys, slots), expected, LIMITS)
    assert result.state is state
    assert words in result.message


def test_primary_perfdata_per_standby():
    result = judge_primary(PrimaryStatus((standby(replay_lag=2.5, replay_bytes=4096),), ()), 1, LIMITS)
    line = result.status_line()
    assert "'standby1_replay_lag'=2.5s;60;300;0" in line
    assert "'standby1_replay_bytes'=4096B;;;0" in line
    assert "'standby1_write_bytes'=0B;;;0" in line
    assert "'standby1_flush_lag'=0.02s;;;0" in line
    assert "'standbys'=1;;;0" in line


STANDBY_CASES = [
    # (receiver, replay delay, bytes behind, paused, state, words)
    ("streaming", None, 0, False, State.OK, "caught up (no transaction replayed since startup)"),
    ("streaming", 7200.0, 0, False, State.OK, "caught up (last transaction replayed 7200 s ago)"),
    ("streaming", 30.0, 1024, False, State.OK, "replay 30.0 s behind"),
    ("streaming", 90.0, 1024, True, State.WARNING, "replay 90.0 s behind, 1024 bytes received and not replayed; replay paused"),
    ("streaming", 400.0, 1024, False, State.KO, "replay 400.0 s behind"),
    ("streaming", None, 1024, False, State.WARNING, "none since startup"),
    (None, None, 0, False, State.KO, "receives no WAL (receiver not running)"),
    ("stopping", 1.0, 0, False, State.KO, "receiver stopping"),
    # Just after a restart the received position lags the replayed one.
    ("streaming", 20.0, -960856, False, State.OK, "replay caught up"),
    ("hidden", None, 0, False, State.UNKNOWN, "grant pg_monitor"),
]


@pytest.mark.parametrize("receiver, delay, behind, paused, state, words", STANDBY_CASES)
def test_standby_judgement(receiver, delay, behind, paused, state, words):
    result = judge_standby(StandbyStatus(receiver, delay, behind, paused), LIMITS)
    assert result.state is state
    assert words in result.message


def test_rows_of_a_primary():
    rows = [
        ("streaming", "standby1", "streaming", 0.1, 0.2, 0.3, 10.0, 50.0, 100.0, None, None, None),
        ("slot", "standby2", None, None, None, None, None, None, 5000.0, None, None, None),
    ]
    status = parse_rows(rows)
    expected = Standby("standby1", "streaming", 0.1, 0.2, 0.3, 100.0, 10.0, 50.0)
    assert status == PrimaryStatus((expected,), ("standby2",))


def test_rows_of_a_standby():
    rows = [("standby", None, "streaming") + (None,) * 6 + (12.5, 0.0, True)]
    assert parse_rows(rows) == StandbyStatus("streaming", 12.5, 0.0, True)


def test_label_without_quotes_or_spaces():
    assert perfdata_label("web 1's='standby'") == "web_1_s_standby_"


def test_sqlite_not_configured():
    result = check_replication(SimpleNamespace(backend_name="sqlite"), 1, 1, LIMITS)
    assert result.state is State.OK
    assert result.message == "replication not configured: sqlite database"

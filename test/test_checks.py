"""Measuring and judging: pool, thresholds, versions, host name, database probe."""

import logging
import socket
import sqlite3
import threading

import pytest
from logilab.database import get_db_helper

from cubicweb_haops.monitoring import database, host
from cubicweb_haops.monitoring.pool import PoolUsage, judge_pool, measure_pool
from cubicweb_haops.monitoring.ratelimit import RateLimitedLogger
from cubicweb_haops.monitoring.status import State
from cubicweb_haops.monitoring.thresholds import (
    InvalidThreshold,
    PercentThresholds,
    ThresholdFormValidator,
    thresholds_from_options,
)
from cubicweb_haops.monitoring.versions import (
    compare_versions,
    judge_versions,
    recorded_versions,
)

DEFAULTS = PercentThresholds(80, 95)


class FixedPool:
    """Counts as CubicWeb's _CnxSetPool reports them."""

    def __init__(self, total, idle, max_size):
        self.total, self.idle, self.max_size = total, idle, max_size

    def size(self):
        return self.total

    def qsize(self):
        return self.idle


class NoPool:
    """What CubicWeb's _BaseCnxSet reports: no queue at all."""

    def qsize(self):
        return None


def test_measure_bounded_pool():
    assert measure_pool(FixedPool(3, 1, 4)) == PoolUsage(True, in_use=2, open=3, max_size=4)


def test_measure_clamps_racy_counts():
    assert measure_pool(FixedPool(2, 3, 4)).in_use == 0


def test_measure_pooler_disabled():
    assert measure_pool(NoPool()) == PoolUsage(pooling=False)


@pytest.mark.parametrize(
    "in_use, state",
    [(0, State.OK), (8, State.OK), (9, State.WARNING), (10, State.KO)],
)
def test_judge_pool_thresholds_are_upper_bounds(in_use, state):
    usage = PoolUsage(True, in_use=in_use, open=10, max_size=10)
    assert judge_pool(usage, PercentThresholds(80, 90)).state is state


def test_judge_unlimited_pool_reports_counts():
    result = judge_pool(PoolUsage(True, in_use=7, open=9, max_size=0), DEFAULTS)
    assert result.state is State.OK
    assert result.status_line() == (
        "ServiceOK : 7 connections in use, 9 open, pool size unlimited "
        "(connections-pool-max-size = 0) | 'connections_in_use'=7;;;0 'connections_open'=9;;;0"
    )


def test_validator_overrides_defaults():
    assert ThresholdFormValidator(DEFAULTS).validate({"warning": "50"}) == PercentThresholds(50, 95)
    assert ThresholdFormValidator(DEFAULTS).validate({}) == DEFAULTS
    assert ThresholdFormValidator(DEFAULTS).validate(
        {"warning": "0", "critical": "100"}
    ) == PercentThresholds(0, 100)


@pytest.mark.parametrize(
    "form, message",
    [
        ({"warning": "1e3"}, "invalid warning=1e3: expected a number from 0 to 100"),
        ({"critical": "inf"}, "invalid critical=inf: expected a number from 0 to 100"),
        ({"critical": "50"}, "invalid thresholds: warning=80 is above critical=50"),
        ({"warning": ["1", "2"]}, "invalid warning: given 2 times"),
    ],
)
def test_validator_rejects(form, message):
    with pytest.raises(InvalidThreshold, match=message.replace("(", r"\(")):
        ThresholdFormValidator(DEFAULTS).validate(form)


def test_thresholds_from_invalid_options():
    config = {"haops-pool-warning": 150.0, "haops-pool-critical": 95.0}
    with pytest.raises(InvalidThreshold, match="invalid haops-pool-warning=150"):
        thresholds_from_options(config, "haops-pool-warning", "haops-pool-critical")


def test_versions_match_and_mismatch():
    installed = {"cubicweb": "5.0.1", "haops": "0.2.0", "web": "1.6.2", "file": "4.2.0"}
    recorded = recorded_versions(
        [
            ("system.version.cubicweb", "5.0.1"),
            ("system.version.haops", "0.1.0"),
            ("system.version.web", "1.6.3"),
            ("system.version.unused", "1.0.0"),
        ]
    )
    result = judge_versions(compare_versions(installed, recorded))
    assert result.state is State.KO
    assert result.message == (
        "3 version mismatch(es), run cubicweb-ctl upgrade: "
        "haops: 0.2.0 installed, 0.1.0 recorded in the database; "
        "web: 1.6.2 installed, 1.6.3 recorded in the database; "
        "file: 4.2.0 installed, no version recorded in the database"
    )
    assert result.details[0] == "cubicweb: 5.0.1"


@pytest.mark.parametrize(
    "name, expected",
    [("web1.example.org", "web1.example.org"), ("sérveur", "sérveur"), ("bad\udcff", "bad\\udcff")],
)
def test_host_name_printable(monkeypatch, name, expected):
    monkeypatch.setattr(socket, "gethostname", lambda: name)
    assert host.host_name() == expected
    assert host.describe_process("site")[0].encode("utf-8")


def test_host_name_failure(monkeypatch):
    def fail():
        raise OSError("no host name")

    monkeypatch.setattr(socket, "gethostname", fail)
    assert host.describe_process("site")[:2] == ["unknown-host", "instance: site"]


def sqlite_helper(path):
    helper = get_db_helper("sqlite")
    helper.record_connection_info(str(path))
    return helper


def test_probe_runs_query_on_sqlite(tmp_path):
    result = database.run_probe(sqlite_helper(tmp_path / "db.sqlite"), "SELECT 1", 3)
    assert result.rows == [(1,)]
    assert result.total_time >= 0


def test_probe_error_hides_driver_message(tmp_path):
    with pytest.raises(database.ProbeError) as info:
        database.run_probe(sqlite_helper(tmp_path / "db.sqlite"), "SELECT * FROM secret_table", 3)
    assert str(info.value) == "the database query failed (OperationalError)"
    assert "secret_table" in str(info.value.__cause__)


def test_probe_times_out_and_limits_pending(monkeypatch, tmp_path):
    release = threading.Event()

    def hang(dbhelper, sql, timeout):
        release.wait(10)
        raise sqlite3.OperationalError("released")

    monkeypatch.setattr(database, "_run", hang)
    helper = sqlite_helper(tmp_path / "db.sqlite")
    try:
        for _ in range(database.MAX_PENDING_PROBES):
            with pytest.raises(database.ProbeTimeout, match="timed out after 0.05 s"):
                database.run_probe(helper, "SELECT 1", 0.05)
        with pytest.raises(database.ProbeTimeout, match="still waiting"):
            database.run_probe(helper, "SELECT 1", 0.05)
    finally:
        release.set()


def test_rate_limited_logger_counts_suppressed(caplog):
    now = [0.0]
    logger = RateLimitedLogger(logging.getLogger("test.haops"), interval=60, clock=lambda: now[0])
    with caplog.at_level(logging.ERROR, logger="test.haops"):
        logger.log(logging.ERROR, "key", "failed %s", "once")
        logger.log(logging.ERROR, "key", "failed %s", "twice")
        now[0] = 61.0
        logger.log(logging.ERROR, "key", "failed %s", "again")
    assert [record.getMessage() for record in caplog.records] == [
        "failed once",
        "failed again (1 similar messages suppressed)",
    ]

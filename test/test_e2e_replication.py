"""monitor_replication against a real primary and a real streaming standby.

The harness starts a primary cluster and a standby made with
``pg_basebackup -R`` that streams through a replication slot named
``standby1``, both as the unprivileged PostgreSQL user when run as root. One
instance process uses the primary, another the standby, read-only.
"""

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.http import fetch
from harness.instance import Instance, set_option
from harness.postgres import PostgresCluster

CHECK_HAOPS = Path(sys.executable).parent / "check_haops"
STANDBY = "standby1"
LAG_WARNING = 2
LAG_CRITICAL = 6
STATE_TIMEOUT = 40
OPTIONS = {
    "haops-replication-standbys": "1",
    "haops-replication-lag-warning": f"{LAG_WARNING}s",
    "haops-replication-lag-critical": f"{LAG_CRITICAL}s",
    "haops-db-timeout": "2s",
}


@pytest.fixture(scope="module")
def clusters(instance_root):
    primary = PostgresCluster(os.path.join(instance_root, "primary"))
    standby = PostgresCluster(os.path.join(instance_root, "standby"))
    try:
        primary.init()
        primary.start()
        yield primary, standby
    finally:
        for cluster in (standby, primary):
            if cluster.datadir.exists():
                cluster.destroy()


@pytest.fixture(scope="module")
def sites(instance_root, clusters):
    """The instance on the primary and, once the standby streams, one on the standby."""
    primary, standby = clusters
    on_primary = Instance(instance_root, "replsite", "haops", primary)
    on_standby = Instance(instance_root, "replstandby", "haops", standby)
    try:
        on_primary.create(OPTIONS)
        standby.init_standby(primary, STANDBY)
        standby.start()
        on_primary.start(command="haops-start")
        # The standby has the primary's database: only the configuration is new.
        on_standby.create(OPTIONS, create_database=False)
        set_database(on_standby, standby, "replsite")
        on_standby.start(command="haops-start")
        yield on_primary, on_standby
    finally:
        on_standby.stop()
        on_primary.stop()


def set_database(instance, cluster, name):
    sources = instance.apphome / "sources"
    set_option(sources, "db-port", str(cluster.port))
    set_option(sources, "db-name", name)


def replication(site):
    reply = fetch(f"{site.url}/view?vid=monitor_replication")
    return reply.status, reply.text


def check_haops(site):
    completed = subprocess.run(
        [str(CHECK_HAOPS), "-H", "127.0.0.1", "-p", str(site.port), "-C", "replication"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    return completed.returncode, completed.stdout


def wait_for(site, prefix, timeout=STATE_TIMEOUT):
    """Poll monitor_replication until its first line starts with *prefix*; return the reply."""
    deadline = time.monotonic() + timeout
    status, text = replication(site)
    while not text.startswith(prefix) and time.monotonic() < deadline:
        time.sleep(0.5)
        status, text = replication(site)
    assert text.startswith(prefix), text
    return status, text


class Writer:
    """A thread committing a row on the primary every half second, so that WAL keeps coming."""

    def __init__(self, primary):
        self.cnx = primary.connect("replsite")
        self.cnx.cursor().execute("CREATE TABLE IF NOT EXISTS haops_ticks (at timestamptz)")
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stopping.wait(0.5):
            self.cnx.cursor().execute("INSERT INTO haops_ticks VALUES (now())")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(timeout=10)
        self.cnx.close()


def test_streaming_standby_ok(sites):
    on_primary, _ = sites
    status, text = wait_for(on_primary, "ServiceOK : 1 standby streaming (standby1)")
    code, output = check_haops(on_primary)

    assert status == 200
    assert re.search(r"'standby1_replay_lag'=[0-9.]+s;2;6;0", text), text
    for perfdata in ("write_lag", "flush_lag", "write_bytes", "flush_bytes", "replay_bytes"):
        assert f"'standby1_{perfdata}'=" in text, text
    assert code == 0, output
    # The instance's thresholds go with the value to the graphs.
    assert re.search(r"standby1_replay_lag=[0-9.]+s;2;6;0", output), output


def test_caught_up_standby_tells_idle_from_delay(sites, clusters):
    _, on_standby = sites
    primary, _ = clusters
    with Writer(primary):
        time.sleep(1)
    # Replay caught up: the age of the last transaction is idleness, not delay.
    status, text = wait_for(
        on_standby, "ServiceOK : standby streaming, replay caught up (last transaction replayed"
    )
    code, output = check_haops(on_standby)
    assert status == 200
    assert "'behind_bytes'=0B" in text
    assert code == 0, output


def test_paused_replay_warns_then_fails(sites, clusters):
    on_primary, on_standby = sites
    primary, standby = clusters
    standby.connect("replsite").cursor().execute("SELECT pg_wal_replay_pause()")
    try:
        with Writer(primary):
            warning_status, warning = wait_for(on_primary, "ServiceWARNING : standby standby1 replays")
            warning_plugin = check_haops(on_primary)
            standby_view = wait_for(on_standby, "ServiceWARNING : standby streaming, replay")
            critical_status, critical = wait_for(on_primary, "ServiceKO : standby standby1 replays")
            critical_plugin = check_haops(on_primary)
            standby_critical = wait_for(on_standby, "ServiceKO : standby streaming, replay")
    finally:
        standby.connect("replsite").cursor().execute("SELECT pg_wal_replay_resume()")
    recovered = wait_for(on_primary, "ServiceOK : 1 standby streaming")

    assert warning_status == 200, warning
    assert warning_plugin[0] == 1, warning_plugin
    assert critical_status == 503, critical
    assert critical_plugin[0] == 2, critical_plugin
    assert "standby1" in critical_plugin[1]
    # The standby's own view: its replay delay, and the pause.
    assert standby_view[0] == 200
    assert "replay paused" in standby_view[1]
    assert re.search(r"'replay_delay'=[0-9.]+s;2;6;0", standby_view[1]), standby_view[1]
    assert standby_critical[0] == 503
    assert recovered[0] == 200


def test_stopped_standby_named(sites, clusters):
    on_primary, _ = sites
    _, standby = clusters
    standby.stop()
    try:
        status, text = wait_for(on_primary, "ServiceKO : 0 of 1 expected standby(s) connected")
        code, output = check_haops(on_primary)
    finally:
        standby.start()
    wait_for(on_primary, "ServiceOK : 1 standby streaming")

    assert status == 503
    assert "not connected: standby1" in text
    assert code == 2, output
    assert "standby1" in output

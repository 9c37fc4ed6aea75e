"""The monitoring URLs of a real instance process on a real PostgreSQL server:
pool held by slow requests, database hung and stopped, upgrade simulated."""

import threading
import time

import pytest

from conftest import run_instance
from harness.http import check_http, fetch, perfdata

DB_TIMEOUT = 2
HOLD_SECONDS = 4


@pytest.fixture(scope="module")
def site(instance_root, postgres):
    """Anonymous access, a pool of two connections, sessions in the database."""
    instance = run_instance(
        instance_root,
        "pgsite",
        "haops,haopstest",
        database=postgres,
        options={
            "anonymous-user": "anon",
            "anonymous-password": "anon",
            "connections-pool-max-size": "2",
            "haops-db-timeout": f"{DB_TIMEOUT}s",
        },
        database_sessions=True,
    )
    yield instance
    instance.stop()


def url(instance, vid, query=""):
    return f"{instance.url}/view?vid={vid}{query}"


def nagios_check(instance, vid, *options):
    """Run check_http as Nagios would, over HTTP/1.0 without a Host header."""
    return check_http(
        "-I", "127.0.0.1", "-p", str(instance.port), "-u", f"/view?vid={vid}",
        "-s", "ServiceOK", *options,
    )


def wait_for_pool_in_use(instance, count, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        values = perfdata(fetch(url(instance, "monitor_pool")).text)
        if values.get("connections_in_use") == count:
            return
        time.sleep(0.1)
    raise TimeoutError(f"the pool never had {count} connections in use")


def test_views_on_postgres(site):
    db = fetch(url(site, "monitor_db"))
    assert db.status == 200
    assert "\nbackend: postgres\n" in db.text
    version = fetch(url(site, "monitor_version"))
    assert version.status == 200, version.text
    pool = fetch(url(site, "monitor_pool"))
    assert pool.status == 200
    assert "; warning above 80%, critical above 95%)" in pool.text


def test_check_http_on_postgres(site):
    for vid in ("monitor_pool", "monitor_db", "monitor_version"):
        code, output = nagios_check(site, vid, "-e", "200")
        assert code == 0, output


def test_pool_fully_held_by_slow_requests(site):
    replies = []
    holders = [
        threading.Thread(
            target=lambda: replies.append(
                fetch(url(site, "haopstest_hold", f"&seconds={HOLD_SECONDS}"))
            )
        )
        for _ in range(2)
    ]
    for holder in holders:
        holder.start()
    try:
        wait_for_pool_in_use(site, 2)
        pool = fetch(url(site, "monitor_pool"))
        hostname = fetch(url(site, "monitor_hostname"))
        db = fetch(url(site, "monitor_db"))
        code, output = nagios_check(site, "monitor_pool")
    finally:
        for holder in holders:
            holder.join(timeout=HOLD_SECONDS + 10)

    assert [reply.status for reply in replies] == [200, 200]
    assert pool.status == 503
    assert pool.text.startswith("ServiceKO : 100% of the connection pool in use (2 of 2, 2 open")
    assert pool.seconds < 1.0
    assert hostname.status == 200
    assert hostname.seconds < 1.0
    # The database itself is fine: only the pool is busy.
    assert db.status == 200
    assert db.text.startswith("ServiceOK : database answered in ")
    assert code == 2, output


def test_anonymous_polls_create_no_session(site):
    count = "SELECT COUNT(*) FROM cw_cwsession"
    before = site.sql(count)[0][0]
    for _ in range(1000):
        reply = fetch(url(site, "monitor_hostname"))
        assert "Set-Cookie" not in reply.headers
    assert site.sql(count)[0][0] == before


def test_upgrade_simulated_on_postgres(site):
    key = "system.version.haops"
    (recorded,) = site.sql("SELECT cw_value FROM cw_cwproperty WHERE cw_pkey = ?", (key,))[0]
    site.sql("UPDATE cw_cwproperty SET cw_value = ? WHERE cw_pkey = ?", ("0.0.9", key))
    try:
        reply = fetch(url(site, "monitor_version"))
    finally:
        site.sql("UPDATE cw_cwproperty SET cw_value = ? WHERE cw_pkey = ?", (recorded, key))
    assert reply.status == 503
    assert f"haops: {recorded} installed, 0.0.9 recorded in the database" in reply.text
    assert fetch(url(site, "monitor_version")).status == 200


def test_hung_database_ko_within_timeout(site, postgres):
    postgres.freeze()
    try:
        db = fetch(url(site, "monitor_db"))
        version = fetch(url(site, "monitor_version"))
        pool = fetch(url(site, "monitor_pool"))
    finally:
        postgres.thaw()
    assert db.status == 503
    assert db.text.splitlines()[0] == (
        f"ServiceKO : database not answering: the database probe timed out after {DB_TIMEOUT} s"
    )
    assert db.seconds < DB_TIMEOUT + 1
    assert version.status == 503
    assert version.text.startswith("ServiceUNKNOWN : cannot read the recorded versions: ")
    assert version.seconds < DB_TIMEOUT + 1
    assert pool.status == 200
    assert pool.seconds < 1.0


def test_stopped_database_ko_then_recovers(site, postgres):
    postgres.stop()
    try:
        db = fetch(url(site, "monitor_db"))
        version = fetch(url(site, "monitor_version"))
        hostname = fetch(url(site, "monitor_hostname"))
        code, output = nagios_check(site, "monitor_db")
    finally:
        postgres.start()
    assert db.status == 503
    assert db.text.splitlines()[0] == (
        "ServiceKO : database not answering: connection to the database failed "
        "(OperationalError), see the instance log"
    )
    # Nothing about the server's address or users reaches the client.
    assert "127.0.0.1" not in db.text
    assert str(postgres.port) not in db.text
    assert db.seconds < DB_TIMEOUT + 1
    assert version.status == 503
    assert hostname.status == 200
    assert code == 2, output
    assert "connection to the database failed" in site.output()

    recovered = fetch(url(site, "monitor_db"))
    assert recovered.status == 200, recovered.text

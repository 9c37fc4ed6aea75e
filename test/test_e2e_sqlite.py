"""The monitoring URLs of a real instance process on SQLite, polled by curl,
Debian's check_http and raw HTTP/1.0 requests."""

import http.client

import pytest

from conftest import run_instance
from harness.http import check_http, curl, fetch, perfdata, raw_request

VIEWS = ("monitor_pool", "monitor_db", "monitor_version", "monitor_hostname")


@pytest.fixture(scope="module")
def site(instance_root):
    """An instance with no anonymous user and sessions stored in the database."""
    instance = run_instance(instance_root, "sqlitesite", "haops", database_sessions=True)
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def customised_site(instance_root):
    """An instance whose haopstest cube registers its own monitor_db."""
    instance = run_instance(instance_root, "customsite", "haops,haopstest")
    yield instance
    instance.stop()


def url(instance, vid, query=""):
    return f"{instance.url}/view?vid={vid}{query}"


def test_site_has_no_anonymous_user(site):
    # CubicWeb renders its login form in place of the usual views.
    reply = fetch(url(site, "index"))
    assert 'name="__login"' in reply.text


@pytest.mark.parametrize("vid", VIEWS)
def test_curl_without_login(site, vid):
    output = curl("--include", url(site, vid))
    head, _, body = output.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 OK\r\n")
    assert "\r\nCache-Control: no-store\r\n" in head
    assert "\r\nContent-Type: text/plain; charset=utf-8\r\n" in head
    assert f"\r\nContent-Length: {len(body.encode())}\r\n" in head
    assert "Set-Cookie" not in head
    assert "Transfer-Encoding" not in head


@pytest.mark.parametrize("vid", ("monitor_pool", "monitor_db", "monitor_version"))
def test_check_http_service_ok(site, vid):
    code, output = check_http(
        "-H", "127.0.0.1", "-p", str(site.port), "-u", f"/view?vid={vid}",
        "-s", "ServiceOK", "-e", "200",
    )
    assert code == 0, output
    assert output.startswith("HTTP OK")


def test_check_http_http10_without_host(site):
    # Without -H, check_http sends an HTTP/1.0 request with no Host header.
    code, output = check_http(
        "-I", "127.0.0.1", "-p", str(site.port), "-u", "/view?vid=monitor_pool",
        "-s", "ServiceOK",
    )
    assert code == 0, output


def test_raw_http10_no_host_header(site):
    data = raw_request(site.port, b"GET /view?vid=monitor_hostname HTTP/1.0\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") or head.startswith(b"HTTP/1.0 200 ")
    assert body.decode().splitlines()[1] == "instance: sqlitesite"


def test_ip_address_as_host(site):
    for host in ("127.0.0.1", f"127.0.0.1:{site.port}", "[::1]"):
        reply = fetch(url(site, "monitor_db"), headers={"Host": host})
        assert reply.status == 200, host
        assert reply.text.startswith("ServiceOK : "), host


def test_head_and_options(site):
    head = curl("--head", url(site, "monitor_db"))
    assert head.startswith("HTTP/1.1 200 OK\r\n")
    assert "Content-Length: " in head
    options = curl("--include", "--request", "OPTIONS", url(site, "monitor_db"))
    assert options.startswith("HTTP/1.1 200 OK\r\n")
    assert "\r\nAllow: GET, HEAD, OPTIONS\r\n" in options


def test_bad_threshold_one_line_400(site):
    reply = fetch(url(site, "monitor_pool", "&critical=120"))
    assert reply.status == 400
    assert reply.text == "invalid critical=120: expected a number from 0 to 100\n"


def test_unknown_vid_keeps_cubicweb_answer(site):
    # With no anonymous user, CubicWeb returns its login form.
    reply = fetch(url(site, "no_such_view"))
    assert 'name="__login"' in reply.text
    assert reply.headers.get("Cache-Control") != "no-store"


def test_polls_leave_sessions_and_pool_unchanged(site):
    sessions_before = site.sql("SELECT COUNT(*) FROM cw_CWSession")[0][0]
    pool_before = perfdata(fetch(url(site, "monitor_pool")).text)
    connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=10)
    try:
        for _ in range(1000):
            connection.request("GET", "/view?vid=monitor_pool")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("Set-Cookie") is None
    finally:
        connection.close()
    assert site.sql("SELECT COUNT(*) FROM cw_CWSession")[0][0] == sessions_before
    assert perfdata(fetch(url(site, "monitor_pool")).text) == pool_before


def _set_recorded_version(site, name, version):
    key = f"system.version.{name}"
    if version is None:
        site.sql("DELETE FROM cw_CWProperty WHERE cw_pkey = ?", (key,))
    else:
        site.sql("UPDATE cw_CWProperty SET cw_value = ? WHERE cw_pkey = ?", (version, key))


def test_upgrade_simulated_in_database(site):
    recorded = dict(site.sql(
        "SELECT cw_pkey, cw_value FROM cw_CWProperty WHERE cw_pkey LIKE 'system.version.%'"
    ))
    haops_version = recorded["system.version.haops"]
    web_version = recorded["system.version.web"]
    try:
        _set_recorded_version(site, "haops", "0.0.1")
        older = fetch(url(site, "monitor_version"))
        _set_recorded_version(site, "haops", "99.0.0")
        newer = fetch(url(site, "monitor_version"))
        site.sql(
            "DELETE FROM cw_CWProperty WHERE cw_pkey = ?", ("system.version.web",)
        )
        missing = fetch(url(site, "monitor_version"))
        code, output = check_http(
            "-H", "127.0.0.1", "-p", str(site.port), "-u", "/view?vid=monitor_version",
            "-s", "ServiceOK",
        )
    finally:
        _set_recorded_version(site, "haops", haops_version)
        if not site.sql(
            "SELECT cw_value FROM cw_CWProperty WHERE cw_pkey = 'system.version.web'"
        ):
            eid = site.sql(
                "SELECT cw_eid FROM cw_CWProperty WHERE cw_pkey = 'system.version.haops'"
            )[0][0]
            site.sql(
                "INSERT INTO cw_CWProperty (cw_eid, cw_pkey, cw_value) "
                "SELECT ? + 100000, 'system.version.web', ?",
                (eid, web_version),
            )

    assert older.status == 503
    assert older.text.startswith("ServiceKO : 1 version mismatch(es), run cubicweb-ctl upgrade: ")
    assert f"haops: {haops_version} installed, 0.0.1 recorded in the database" in older.text
    assert newer.status == 503
    assert f"haops: {haops_version} installed, 99.0.0 recorded in the database" in newer.text
    assert missing.text.startswith("ServiceKO : 2 version mismatch(es)")
    assert f"web: {web_version} installed, no version recorded in the database" in missing.text
    assert code == 2, output
    restored = fetch(url(site, "monitor_version"))
    assert restored.status == 200, restored.text


def test_customised_monitor_db_is_served(customised_site):
    reply = fetch(url(customised_site, "monitor_db"))
    assert reply.status == 200
    assert reply.text.startswith("ServiceOK : database answered in ")
    assert reply.text.endswith("\nchecked by the haopstest cube\n")
    assert "Set-Cookie" not in reply.headers

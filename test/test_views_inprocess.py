"""Monitoring views served in-process by CubicWeb's pyramid application (SQLite)."""

import json
import re
import time

from cubicweb.devtools import BASE_URL
from cubicweb.server.repository import get_cnxset
from cubicweb_web.devtools.testlib import PyramidWebCWTC

from cubicweb_haops.__pkginfo__ import version as HAOPS_VERSION
from cubicweb_haops.route import is_connectionless_view

STATUS_LINE = re.compile(
    r"^Service(OK|WARNING|KO|UNKNOWN) : [^|\n]+( \| ('[^']+'=[-0-9.]+[a-zA-Z%]*(;[-0-9.]*){0,4} ?)+)?$"
)
CHECK_VIEWS = ("monitor_pool", "monitor_db", "monitor_version", "monitor_replication")
ALL_VIEWS = CHECK_VIEWS + ("monitor_hostname",)


class LoopbackWebTC(PyramidWebCWTC):
    """Requests from 127.0.0.1, which the monitoring guard allows by default."""

    def setUp(self):
        super().setUp()
        # webtest sends no peer address of its own.
        self.webapp.extra_environ["REMOTE_ADDR"] = "127.0.0.1"


class MonitoringViewsTC(LoopbackWebTC):
    settings = {
        "cubicweb.includes": ["cubicweb.pyramid.auth", "cubicweb.pyramid.session"],
        "cubicweb.bwcompat": True,
    }

    def get(self, vid, status="*", **params):
        return self.webapp.get(
            f"{BASE_URL}view", params={"vid": vid, **params}, status=status
        )

    def session_count(self):
        with self.admin_access.cnx() as cnx:
            return cnx.execute("Any COUNT(X) WHERE X is CWSession")[0][0]

    def test_views_registered_in_vreg(self):
        for vid in ALL_VIEWS:
            self.assertTrue(is_connectionless_view(self.vreg, vid), vid)

    def test_check_views_first_line_grammar(self):
        for vid in CHECK_VIEWS:
            response = self.get(vid)
            first_line, _, rest = response.text.partition("\n")
            self.assertRegex(first_line, STATUS_LINE, vid)
            self.assertNotIn("|", rest, vid)

    def test_views_plain_text_no_store(self):
        for vid in ALL_VIEWS:
            response = self.get(vid)
            self.assertEqual(response.status_int, 200, vid)
            self.assertEqual(response.headers["Content-Type"], "text/plain; charset=utf-8")
            self.assertEqual(response.headers["Cache-Control"], "no-store")
            self.assertEqual(int(response.headers["Content-Length"]), len(response.body))
            self.assertNotIn("Set-Cookie", response.headers, vid)

    def test_head_and_options(self):
        head = self.webapp.head(f"{BASE_URL}view?vid=monitor_pool")
        self.assertEqual(head.status_int, 200)
        self.assertEqual(head.headers["Cache-Control"], "no-store")
        options = self.webapp.options(f"{BASE_URL}view?vid=monitor_pool")
        self.assertEqual(options.status_int, 200)
        self.assertEqual(options.headers["Allow"], "GET, HEAD, OPTIONS")

    def test_post_not_allowed(self):
        response = self.webapp.post(
            f"{BASE_URL}view?vid=monitor_pool", status="*", params={}
        )
        self.assertEqual(response.status_int, 405)
        self.assertEqual(response.headers["Allow"], "GET, HEAD, OPTIONS")

    def test_pool_default_is_unlimited(self):
        response = self.get("monitor_pool")
        self.assertIn("pool size unlimited", response.text)
        self.assertIn("'connections_in_use'=", response.text)
        self.assertNotIn("pool_usage", response.text)

    def test_db_round_trip(self):
        response = self.get("monitor_db")
        self.assertTrue(response.text.startswith("ServiceOK : database answered in "))
        self.assertRegex(response.text, r"'time'=[0-9.]+s;;3;0")

    def test_version_ok_lists_components(self):
        text = self.get("monitor_version").text
        self.assertTrue(text.startswith("ServiceOK : "), text)
        self.assertIn("\ncubicweb: ", text)
        self.assertIn("\nhaops: ", text)
        self.assertIn("\nweb: ", text)

    def test_hostname_lines(self):
        lines = self.get("monitor_hostname").text.splitlines()
        self.assertEqual(len(lines), 3)
        self.assertTrue(lines[0])
        self.assertNotIn(" ", lines[0])
        self.assertEqual(lines[1], f"instance: {self.config.appid}")
        self.assertRegex(lines[2], r"^pid: [0-9]+$")

    def test_invalid_thresholds_bad_request(self):
        cases = [
            ({"warning": "abc"}, "invalid warning=abc: expected a number from 0 to 100"),
            ({"critical": "101"}, "invalid critical=101: expected a number from 0 to 100"),
            ({"warning": "-1"}, "invalid warning=-1: expected a number from 0 to 100"),
            ({"warning": "nan"}, "invalid warning=nan: expected a number from 0 to 100"),
            ({"critical": ""}, "invalid critical=: expected a number from 0 to 100"),
            (
                {"warning": "90", "critical": "80"},
                "invalid thresholds: warning=90 is above critical=80; give a warning "
                "at most equal to the critical threshold",
            ),
            ({"warning": "97"}, "invalid thresholds: warning=97 is above critical=95;"),
        ]
        for params, message in cases:
            response = self.get("monitor_pool", **params)
            self.assertEqual(response.status_int, 400, params)
            self.assertTrue(response.text.startswith(message), response.text)
            self.assertEqual(response.text.count("\n"), 1, params)
            self.assertEqual(response.headers["Cache-Control"], "no-store")

    def test_repeated_threshold_bad_request(self):
        response = self.webapp.get(
            f"{BASE_URL}view?vid=monitor_pool&warning=1&warning=2", status="*"
        )
        self.assertEqual(response.status_int, 400)
        self.assertIn("invalid warning: given 2 times", response.text)

    def test_valid_thresholds_accepted(self):
        response = self.get("monitor_pool", warning="10.5", critical="20")
        self.assertEqual(response.status_int, 200)

    def test_unknown_vid_keeps_cubicweb_answer(self):
        response = self.webapp.get(f"{BASE_URL}view?vid=no_such_view", status="*")
        self.assertNotEqual(response.headers.get("Cache-Control"), "no-store")
        self.assertNotIn("Service", response.text[:20])

    def test_polling_leaves_no_session(self):
        before = self.session_count()
        for _ in range(1000):
            self.get("monitor_pool")
        self.assertEqual(self.session_count(), before)
        self.assertEqual(self.webapp.cookies, {})

    def test_session_count_detects_usual_path(self):
        # Control for the previous test: a login through the usual path
        # creates a CWSession row, so the count can change.
        before = self.session_count()
        self.webapp.login()
        self.webapp.get(f"{BASE_URL}view?vid=index", status="*")
        self.assertGreater(self.session_count(), before)


class BoundedPoolTC(LoopbackWebTC):
    """monitor_pool and monitor_hostname while the pool is fully held."""

    settings = MonitoringViewsTC.settings

    def setUp(self):
        super().setUp()
        # The test repository is shared between test classes: give it a
        # bounded pool, built by CubicWeb's own factory, for this class only.
        self.config.global_set_option("connections-pool-max-size", 2)
        self.unbounded_pool = self.repo.cnxsets
        self.repo.cnxsets = get_cnxset(self.config, self.repo.system_source)

    def tearDown(self):
        self.repo.cnxsets.close()
        self.repo.cnxsets = self.unbounded_pool
        self.config.global_set_option("connections-pool-max-size", 0)
        super().tearDown()

    def test_pool_full_answers_fast(self):
        pool = self.repo.cnxsets
        self.assertEqual(pool.max_size, 2)
        held_cnxsets = [pool.get() for _ in range(pool.max_size)]
        try:
            started = time.monotonic()
            response = self.webapp.get(f"{BASE_URL}view?vid=monitor_pool", status="*")
            elapsed = time.monotonic() - started
            hostname = self.webapp.get(f"{BASE_URL}view?vid=monitor_hostname")
        finally:
            for cnxset in held_cnxsets:
                pool.release(cnxset)
        self.assertEqual(response.status_int, 503)
        self.assertTrue(response.text.startswith("ServiceKO : 100% of the connection pool in use (2 of 2"))
        self.assertIn("'pool_usage'=100%;80;95;0;100", response.text)
        # the usual path would wait 5 s for a connection
        self.assertLess(elapsed, 1.0)
        self.assertEqual(hostname.status_int, 200)

    def test_pool_thresholds_per_request(self):
        pool = self.repo.cnxsets
        held_cnxset = pool.get()
        try:
            idle_others = pool.qsize()
            self.assertEqual(pool.size() - idle_others, 1)
            warning = self.webapp.get(
                f"{BASE_URL}view?vid=monitor_pool&warning=40&critical=60"
            )
            critical = self.webapp.get(
                f"{BASE_URL}view?vid=monitor_pool&warning=10&critical=40", status=503
            )
            ok = self.webapp.get(f"{BASE_URL}view?vid=monitor_pool")
        finally:
            pool.release(held_cnxset)
        self.assertTrue(warning.text.startswith("ServiceWARNING : 50% "), warning.text)
        self.assertTrue(critical.text.startswith("ServiceKO : 50% "), critical.text)
        self.assertTrue(ok.text.startswith("ServiceOK : 50% "), ok.text)


class PoolerDisabledTC(LoopbackWebTC):
    settings = MonitoringViewsTC.settings

    def setUp(self):
        super().setUp()
        self.config.global_set_option("connections-pooler-enabled", False)
        self.pool = self.repo.cnxsets
        self.repo.cnxsets = get_cnxset(self.config, self.repo.system_source)

    def tearDown(self):
        self.repo.cnxsets = self.pool
        self.config.global_set_option("connections-pooler-enabled", True)
        super().tearDown()

    def test_pooler_disabled_says_so(self):
        response = self.webapp.get(f"{BASE_URL}view?vid=monitor_pool")
        self.assertEqual(
            response.text,
            "ServiceOK : connection pooler disabled (connections-pooler-enabled = no): "
            "each request opens its own database connection\n",
        )


class InvalidOptionsTC(LoopbackWebTC):
    settings = MonitoringViewsTC.settings

    def setUp(self):
        super().setUp()
        self.config.global_set_option("haops-pool-warning", 99.0)
        self.config.global_set_option("haops-pool-critical", 90.0)

    def tearDown(self):
        self.config.global_set_option("haops-pool-warning", 80.0)
        self.config.global_set_option("haops-pool-critical", 95.0)
        super().tearDown()

    def test_invalid_options_unknown(self):
        response = self.webapp.get(f"{BASE_URL}view?vid=monitor_pool", status=503)
        self.assertEqual(
            response.text,
            "ServiceUNKNOWN : invalid options: haops-pool-warning=99 is above "
            "haops-pool-critical=90; fix the instance configuration\n",
        )


class MonitoringGuardTC(LoopbackWebTC):
    settings = MonitoringViewsTC.settings

    def get(self, url, peer, forwarded_for=None):
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        return self.webapp.get(
            url, headers=headers, extra_environ={"REMOTE_ADDR": peer}, status="*"
        )

    def assert_denied(self, response):
        self.assertEqual(response.status_int, 403)
        self.assertEqual(response.text, "Forbidden\n")
        self.assertEqual(response.headers["Cache-Control"], "no-store")
        self.assertNotIn("Set-Cookie", response.headers)

    def test_outside_client_learns_nothing(self):
        for vid in ALL_VIEWS:
            with self.subTest(vid=vid):
                self.assert_denied(self.get(f"{BASE_URL}view?vid={vid}", "203.0.113.5"))

    def test_client_through_trusted_proxy(self):
        allowed = self.get(f"{BASE_URL}view?vid=monitor_hostname", "127.0.0.1", "127.0.0.2")
        self.assertEqual(allowed.status_int, 200)
        denied = self.get(f"{BASE_URL}view?vid=monitor_hostname", "127.0.0.1", "203.0.113.5")
        self.assert_denied(denied)

    def test_forged_header_from_untrusted_client(self):
        response = self.get(f"{BASE_URL}view?vid=monitor_version", "203.0.113.5", "127.0.0.1")
        self.assert_denied(response)

    def test_ipv6_clients(self):
        self.assertEqual(self.get(f"{BASE_URL}view?vid=monitor_pool", "::1").status_int, 200)
        self.assert_denied(self.get(f"{BASE_URL}view?vid=monitor_pool", "2001:db8::1"))

    def test_malformed_header_denied(self):
        self.assert_denied(self.get(f"{BASE_URL}view?vid=monitor_pool", "127.0.0.1", "garbage"))

    def test_allow_option_opens_network(self):
        self.config.global_set_option("haops-monitor-allow", ["127.0.0.0/8", "203.0.113.0/24"])
        try:
            response = self.get(f"{BASE_URL}view?vid=monitor_pool", "203.0.113.5")
        finally:
            self.config.global_set_option("haops-monitor-allow", ["127.0.0.0/8", "::1"])
        self.assertEqual(response.status_int, 200)

    def test_invalid_option_denies_everyone(self):
        self.config.global_set_option("haops-monitor-allow", ["127.0.0.0/33"])
        try:
            with self.assertLogs("cubicweb.haops.guard", level="ERROR") as logs:
                response = self.get(f"{BASE_URL}view?vid=monitor_pool", "127.0.0.1")
        finally:
            self.config.global_set_option("haops-monitor-allow", ["127.0.0.0/8", "::1"])
        self.assert_denied(response)
        self.assertIn("127.0.0.0/33", "\n".join(logs.output))

    def test_denial_logged_once_per_client(self):
        with self.assertLogs("cubicweb.haops.guard", level="WARNING") as logs:
            for _ in range(3):
                self.get(f"{BASE_URL}view?vid=monitor_pool", "198.51.100.77")
        denials = [line for line in logs.output if "198.51.100.77" in line]
        self.assertEqual(len(denials), 1)

    def test_denied_client_learns_no_method(self):
        url = f"{BASE_URL}view?vid=monitor_pool"
        outside = {"REMOTE_ADDR": "203.0.113.5"}
        for response in (
            self.webapp.options(url, extra_environ=outside, status="*"),
            self.webapp.post(url, params={}, extra_environ=outside, status="*"),
        ):
            with self.subTest(method=response.request.method):
                self.assert_denied(response)
                self.assertNotIn("Allow", response.headers)

    def test_usual_path_guarded_too(self):
        # Two vid parameters make the monitoring route step aside: CubicWeb's
        # usual handling renders the view, and the guard still applies.
        response = self.get(
            f"{BASE_URL}view?vid=monitor_version&vid=monitor_version", "203.0.113.5"
        )
        self.assertNotIn("cubicweb:", response.text)
        self.assertNotIn("haops:", response.text)


class SummaryViewTC(LoopbackWebTC):
    settings = MonitoringViewsTC.settings

    def test_summary_json_document(self):
        response = self.webapp.get(f"{BASE_URL}view?vid=monitor", status="*")
        self.assertEqual(response.status_int, 200)
        self.assertEqual(response.headers["Content-Type"], "application/json")
        self.assertEqual(response.headers["Cache-Control"], "no-store")
        self.assertNotIn("Set-Cookie", response.headers)
        document = json.loads(response.text)
        self.assertEqual(document["state"], "OK")
        self.assertEqual(set(document["checks"]), {"pool", "db", "version", "replication"})
        for name, check in document["checks"].items():
            with self.subTest(check=name):
                self.assertEqual(check["state"], "OK")
                self.assertTrue(check["message"])
        db_time = document["checks"]["db"]["perfdata"][0]
        self.assertEqual(db_time["label"], "time")
        self.assertEqual(db_time["unit"], "s")
        self.assertIsInstance(db_time["value"], float)

    def test_summary_503_when_a_check_fails(self):
        with self.admin_access.cnx() as cnx:
            cnx.execute(
                "SET P value '0.0.1' WHERE P pkey 'system.version.haops'"
            )
            cnx.commit()
        try:
            response = self.webapp.get(f"{BASE_URL}view?vid=monitor", status="*")
        finally:
            with self.admin_access.cnx() as cnx:
                cnx.execute(
                    "SET P value %(v)s WHERE P pkey 'system.version.haops'",
                    {"v": HAOPS_VERSION},
                )
                cnx.commit()
        self.assertEqual(response.status_int, 503)
        document = json.loads(response.text)
        self.assertEqual(document["state"], "KO")
        self.assertEqual(document["checks"]["version"]["state"], "KO")
        self.assertEqual(document["checks"]["pool"]["state"], "OK")

    def test_summary_bad_threshold(self):
        response = self.webapp.get(f"{BASE_URL}view?vid=monitor&warning=abc", status="*")
        self.assertEqual(response.status_int, 400)
        self.assertIn("error", json.loads(response.text))

    def test_summary_denied_outside(self):
        response = self.webapp.get(
            f"{BASE_URL}view?vid=monitor", extra_environ={"REMOTE_ADDR": "203.0.113.5"}, status="*"
        )
        self.assertEqual(response.status_int, 403)
        self.assertEqual(response.text, "Forbidden\n")
        self.assertTrue(response.headers["Content-Type"].startswith("text/plain"))

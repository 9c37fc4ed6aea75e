"""The monitoring views that Nagios polls at ``/view?vid=monitor_...``.

They never touch ``req.cnx`` or ``req.user``, so the route in
:mod:`cubicweb_haops.route` serves them without login and without a pool
connection. A cube may replace one by registering a subclass of
:class:`MonitorView` with the same ``__regid__`` and a higher score.
"""

import json
from concurrent.futures import ThreadPoolExecutor

from cubicweb import _
from logilab.common.registry import yes

from cubicweb_web.view import View

from cubicweb_haops.httpcache import NoStoreHTTPCacheManager
from cubicweb_haops.monitoring.access import (
    ALLOWED_KEY,
    FORBIDDEN,
    FORBIDDEN_BODY,
    client_allowed,
)
from cubicweb_haops.monitoring.host import describe_process
from cubicweb_haops.monitoring.pool import judge_pool, measure_pool
from cubicweb_haops.monitoring.replication import LagThresholds, check_replication
from cubicweb_haops.monitoring.roundtrip import check_round_trip
from cubicweb_haops.monitoring.status import CheckResult, State
from cubicweb_haops.monitoring.summary import summary_document
from cubicweb_haops.monitoring.thresholds import (
    InvalidThreshold,
    ThresholdFormValidator,
    thresholds_from_options,
)
from cubicweb_haops.monitoring.versions import check_versions

BAD_REQUEST = 400


def request_allowed(req):
    """Return whether the client of the CubicWeb request *req* may read the views."""
    # NOTE: the peer address is only on the pyramid request (see get_repository).
    request = req._request
    if request.environ.get(ALLOWED_KEY):
        return True
    return client_allowed(req.vreg.config, request.remote_addr, req.get_header("X-Forwarded-For"))


def get_repository(req):
    """Return the repository serving *req* without taking a connection."""
    # NOTE: cubicweb-web 1.6 has no public accessor for the pyramid request
    # behind a CubicWebPyramidRequest; its own forms read ``_request`` too.
    return req._request.registry["cubicweb.repository"]


class MonitorView(View):
    """Base of the monitoring views: plain text, never stored by a cache.

    ``connectionless`` promises that the view reads neither ``req.cnx`` nor
    ``req.user``; the monitoring route serves only views that promise it.
    """

    __abstract__ = True
    __select__ = yes()
    content_type = "text/plain"
    templatable = False
    add_to_breadcrumbs = False
    http_cache_manager = NoStoreHTTPCacheManager
    connectionless = True

    def call(self, **kwargs):
        self.set_http_cache_headers()
        if request_allowed(self._cw):
            text, status = self.render_body()
        else:
            text, status = FORBIDDEN_BODY, FORBIDDEN
            # A denial reveals nothing, and is plain text whatever the view.
            self._cw.set_content_type("text/plain")
        self._cw.status_out = status
        self.w(text, escape=False)

    def render_body(self):
        """Return the body text and its HTTP status."""
        raise NotImplementedError


class CheckView(MonitorView):
    """A view whose body is a :class:`CheckResult`: 200 when OK or WARNING,
    503 when KO or UNKNOWN, and 400 with a one-line reason for bad input."""

    __abstract__ = True

    def render_body(self):
        try:
            result = self.check()
        except InvalidThreshold as error:
            return f"{error}\n", BAD_REQUEST
        return result.render(), result.state.http_status

    def check(self):
        raise NotImplementedError


class PoolMonitorView(CheckView):
    """Share of this process's database connection pool in use."""

    __regid__ = "monitor_pool"
    title = _("monitor_pool")

    def check(self):
        try:
            defaults = thresholds_from_options(
                self._cw.vreg.config, "haops-pool-warning", "haops-pool-critical"
            )
        except InvalidThreshold as error:
            # The operator must fix the configuration: not a bad request.
            return CheckResult(State.UNKNOWN, str(error))
        thresholds = self._cw.get_cleaned_form(ThresholdFormValidator(defaults))
        usage = measure_pool(get_repository(self._cw).cnxsets)
        return judge_pool(usage, thresholds)


class DatabaseMonitorView(CheckView):
    """A round trip to the database on a fresh connection, bounded in time."""

    __regid__ = "monitor_db"
    title = _("monitor_db")

    def check(self):
        repo = get_repository(self._cw)
        return check_round_trip(
            repo.system_source.dbhelper, self._cw.vreg.config["haops-db-timeout"]
        )


class VersionMonitorView(CheckView):
    """Installed versions of CubicWeb and the cubes against the database's."""

    __regid__ = "monitor_version"
    title = _("monitor_version")

    def check(self):
        config = self._cw.vreg.config
        repo = get_repository(self._cw)
        return check_versions(config, repo.system_source.dbhelper, config["haops-db-timeout"])


class ReplicationMonitorView(CheckView):
    """PostgreSQL streaming replication: the standbys of a primary, or a
    standby's own replay delay, on a fresh connection bounded in time."""

    __regid__ = "monitor_replication"
    title = _("monitor_replication")

    def check(self):
        config = self._cw.vreg.config
        warning = config["haops-replication-lag-warning"]
        critical = config["haops-replication-lag-critical"]
        expected = config["haops-replication-standbys"]
        if warning > critical or expected < 0:
            # The operator must fix the configuration: not a bad request.
            return CheckResult(
                State.UNKNOWN,
                f"invalid options: haops-replication-lag-warning={warning:g} must be at most"
                f" haops-replication-lag-critical={critical:g}, and"
                f" haops-replication-standbys={expected} at least 0; fix the instance"
                " configuration",
            )
        repo = get_repository(self._cw)
        return check_replication(
            repo.system_source.dbhelper,
            config["haops-db-timeout"],
            expected,
            LagThresholds(warning, critical),
        )


class HostnameMonitorView(MonitorView):
    """Host name alone on the first line, then the instance id and the pid."""

    __regid__ = "monitor_hostname"
    title = _("monitor_hostname")

    def render_body(self):
        lines = describe_process(self._cw.vreg.config.appid)
        return "\n".join(lines) + "\n", 200


class SummaryMonitorView(MonitorView):
    """Every check in one JSON document; 503 when any of them is KO or UNKNOWN."""

    __regid__ = "monitor"
    title = _("monitor")
    content_type = "application/json"
    # Check names in the document, and the views that run them.
    checks = (
        ("pool", "monitor_pool"),
        ("db", "monitor_db"),
        ("version", "monitor_version"),
        ("replication", "monitor_replication"),
    )

    def render_body(self):
        views = self._cw.vreg["views"]
        selected = {name: views.select(vid, self._cw) for name, vid in self.checks}
        # The checks run side by side, so that a hung database costs one
        # haops-db-timeout, not one per database probe.
        with ThreadPoolExecutor(max_workers=len(selected), thread_name_prefix="haops-summary") as pool:
            futures = {name: pool.submit(view.check) for name, view in selected.items()}
        try:
            results = {name: future.result() for name, future in futures.items()}
        except InvalidThreshold as error:
            return json.dumps({"error": str(error)}) + "\n", BAD_REQUEST
        text, state = summary_document(results)
        return text, state.http_status

"""Views of the test cube."""

import time

from logilab.common.registry import yes

from cubicweb_web.view import View

from cubicweb_haops.views.monitoring import DatabaseMonitorView

MAX_HOLD_SECONDS = 20


class CustomDatabaseMonitorView(DatabaseMonitorView):
    """monitor_db as a site would customise it: the same check, one more line."""

    __select__ = DatabaseMonitorView.__select__ & yes(10)

    def check(self):
        result = super().check()
        return result.__class__(
            result.state,
            result.message,
            result.metrics,
            result.details + ("checked by the haopstest cube",),
        )


class HoldConnectionView(View):
    """Sleep ``seconds`` (at most MAX_HOLD_SECONDS) inside an ordinary request,
    which holds a pool connection for its whole duration."""

    __regid__ = "haopstest_hold"
    templatable = False
    content_type = "text/plain"

    def call(self, **kwargs):
        seconds = min(float(self._cw.form.get("seconds", 1)), MAX_HOLD_SECONDS)
        # Touching the connection makes sure one is taken from the pool.
        self._cw.execute("Any X LIMIT 1 WHERE X is CWGroup")
        time.sleep(seconds)
        self.w(f"held a connection for {seconds} s\n")

"""Pyramid route that serves the monitoring views without login or pool connection.

CubicWeb's usual web handling opens a session and takes a connection from the
pool for the whole request, and waits 5 s for one when the pool is full. A
monitoring view reached that way would fail exactly when the pool is
exhausted. This route catches ``/view?vid=<vid>`` for the views that declare
themselves ``connectionless``, selects them in the vreg as usual and renders
them on a request that has no connection, no session and no cookie. Any
other ``vid`` falls through to CubicWeb.
"""

import logging

from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

from cubicweb_web.bwcompat import CubicWebPyramidRequest

from cubicweb_haops.monitoring.access import (
    ALLOWED_KEY,
    FORBIDDEN,
    FORBIDDEN_BODY,
    check_access_options,
    client_allowed,
)
from cubicweb_haops.monitoring.ratelimit import RateLimitedLogger

ROUTE_NAME = "haops.monitoring"
ALLOWED_METHODS = ("GET", "HEAD", "OPTIONS")
FAILURE_BODY = "ServiceUNKNOWN : the monitoring view failed, see the instance log\n"

LOGGER = logging.getLogger("cubicweb.haops.route")
FAILURES = RateLimitedLogger(LOGGER)


def is_connectionless_view(vreg, vid):
    """Tell whether every view registered as *vid* promises to be connectionless."""
    candidates = vreg["views"].get(vid, ())
    return bool(candidates) and all(
        getattr(candidate, "connectionless", False) for candidate in candidates
    )


class ConnectionlessVidPredicate:
    """Route predicate ``haops_connectionless_vid``: the request's one ``vid``
    query parameter names a connectionless view."""

    def __init__(self, value, config):
        self.value = bool(value)

    def text(self):
        return f"haops_connectionless_vid = {self.value}"

    phash = text

    def __call__(self, info, request):
        try:
            vids = request.GET.getall("vid")
        except UnicodeDecodeError:
            return False
        if len(vids) != 1:
            return False
        vreg = request.registry["cubicweb.registry"]
        return is_connectionless_view(vreg, vids[0]) == self.value


def _plain_response(status, body, headers=(), content_type="text/plain"):
    response = Response(
        body=body.encode("utf-8"),
        status=status,
        content_type=content_type,
        charset="utf-8",
    )
    response.headers["Cache-Control"] = "no-store"
    for name, value in headers:
        response.headers[name] = value
    return response


def _render(request, vid):
    """Select and render *vid*; return its body, status, headers and content type."""
    cwreq = CubicWebPyramidRequest(request)
    view = request.registry["cubicweb.registry"]["views"].select(vid, cwreq)
    body = view.render()
    headers = [
        (name, value)
        for name, values in cwreq.headers_out.getAllRawHeaders()
        for value in values
    ]
    return body, request.response.status_int, headers, view.content_type


def serve_monitoring_view(request):
    """Pyramid view for the monitoring route."""
    # The guard comes first, so that a denied client does not even learn
    # which methods the URL accepts.
    config = request.registry["cubicweb.config"]
    if not client_allowed(config, request.remote_addr, request.headers.get("X-Forwarded-For")):
        return _plain_response(FORBIDDEN, FORBIDDEN_BODY)
    # The view need not check again (see MonitorView.call).
    request.environ[ALLOWED_KEY] = True

    allow = (("Allow", ", ".join(ALLOWED_METHODS)),)
    if request.method == "OPTIONS":
        return _plain_response(200, "", allow)
    if request.method not in ALLOWED_METHODS:
        return _plain_response(405, f"method {request.method} not allowed, use GET\n", allow)

    vid = request.GET["vid"]
    try:
        body, status, headers, content_type = _render(request, vid)
    except Exception:
        FAILURES.log(logging.ERROR, vid, "rendering %s failed", vid, exc_info=True)
        return _plain_response(503, FAILURE_BODY)
    return _plain_response(status, body, headers, content_type)


def includeme(config):
    """Register the monitoring route on ``/view``."""
    check_access_options(config.registry["cubicweb.config"])
    config.add_route_predicate("haops_connectionless_vid", ConnectionlessVidPredicate)
    config.add_route(ROUTE_NAME, "/view", haops_connectionless_vid=True)
    config.add_view(
        serve_monitoring_view,
        route_name=ROUTE_NAME,
        permission=NO_PERMISSION_REQUIRED,
        require_csrf=False,
    )

"""The floor of the monitoring benchmark, a pyramid route in the instance
process that returns a constant text.

It goes through the same WSGI server and pyramid tweens as every request,
cubicweb-web's access log line included, but builds no CubicWeb request and
takes no session or pool connection.
"""

from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

FLOOR_PATH = "/haopsbench/floor"
FLOOR_BODY = b"floor\n"


def serve_floor(request):
    return Response(body=FLOOR_BODY, content_type="text/plain", charset="utf-8")


def includeme(config):
    config.add_route("haopsbench.floor", FLOOR_PATH)
    config.add_view(
        serve_floor,
        route_name="haopsbench.floor",
        permission=NO_PERMISSION_REQUIRED,
        require_csrf=False,
    )

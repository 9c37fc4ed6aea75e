"""Pyramid routes that serve image URLs without a session.

Squid may store an image only if its response carries no cookie, and an
image that every visitor fetches must not open a session each time. CubicWeb's
usual web handling does both for anonymous visitors. These routes catch
``/file/<eid>/raw/...`` and ``/file/<eid>/thumb/...`` when the entity is an
image that the visitor may read, select the image views in the vreg as usual
and render them with the visitor's connection but without the pyramid
session. Any other such URL (not an image, not readable, not an eid) falls
through to CubicWeb, which handles it as usual.

They also catch the URLs of the download view for images, ``/<eid>``,
``/file/<eid>`` and ``/view?rql=Any X WHERE X eid <eid>``, with
``vid=download``.

The path segment after ``raw`` or ``thumb`` may be the image's fingerprint:
the current one earns a year-long ``Cache-Control``, another one a
redirection to the current URL.
"""

import re
from http import HTTPStatus

from cubicweb import Unauthorized
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

from cubicweb_web.bwcompat import CubicWebPyramidRequest

from cubicweb_haops.eids import is_eid
from cubicweb_haops.fingerprint import fingerprint_of, is_fingerprint
from cubicweb_haops.imagecache import anonymous_may_read, cache_control
from cubicweb_haops.replacement import is_image_format
from cubicweb_haops.views.download import CURRENT_VERSION_KEY

SERVED_METHODS = ("GET", "HEAD")
ROUTES = {
    "haops.image.raw": ("/file/{eid}/raw/*rest", "download", "IDownloadable"),
    "haops.image.thumb": ("/file/{eid}/thumb/*rest", "thumbnail", "IThumbnail"),
    # The URLs of the download view: entity URLs and /view with an eid query.
    "haops.image.entity": ("/{eid}", "download", "IDownloadable"),
    "haops.image.file": ("/file/{eid}", "download", "IDownloadable"),
    "haops.image.view": ("/view", "download", "IDownloadable"),
}
VIEW_ROUTES = frozenset({"haops.image.entity", "haops.image.file", "haops.image.view"})
EID_QUERY = re.compile(r"^\s*Any\s+(\w+)\s+WHERE\s+\1\s+eid\s+(\d+)\s*$")
IMAGE_RSET_KEY = "haops_image_rset"


class ReadableImagePredicate:
    """Route predicate ``haops_readable_image``: the URL's eid is an image File
    that the visitor may read. The result set is kept on the request."""

    def __init__(self, value, config):
        self.value = bool(value)

    def text(self):
        return f"haops_readable_image = {self.value}"

    phash = text

    def __call__(self, info, request):
        eid = requested_eid(info, request)
        if request.method not in SERVED_METHODS or eid is None or not is_eid(eid):
            return not self.value
        cnx = request.cw_cnx
        if cnx is None:
            return not self.value
        # One query brings every attribute that the headers need, so that a
        # 304 costs this query and the permission check only.
        try:
            rset = cnx.execute(
                "Any X, F, H, M, N, E WHERE X eid %(x)s, X is File, X data_format F,"
                " X data_hash H, X modification_date M, X data_name N, X data_encoding E",
                {"x": int(eid)},
            )
        except Unauthorized:
            # An entity the visitor may not read: CubicWeb gives its denial.
            return not self.value
        readable = bool(rset) and is_image_format(rset[0][1])
        if readable:
            setattr(request, IMAGE_RSET_KEY, rset)
        return readable == self.value


def requested_eid(info, request):
    """Return the eid that the URL names, as text, or None if it names none."""
    if info["route"].name not in VIEW_ROUTES:
        return info["match"]["eid"]
    try:
        vids = request.GET.getall("vid")
        queries = request.GET.getall("rql")
    except UnicodeDecodeError:
        return None
    if vids != ["download"]:
        return None
    if "eid" in info["match"]:
        return None if queries else info["match"]["eid"]
    # Only the query of one entity by eid, as CubicWeb writes it, is read here.
    match = EID_QUERY.match(queries[0]) if len(queries) == 1 else None
    return match.group(2) if match else None


def requested_fingerprint(request):
    """Return the fingerprint segment of the URL, or None for an unversioned URL."""
    rest = request.matchdict.get("rest", ())
    if len(rest) >= 2 and is_fingerprint(rest[0]):
        return rest[0]
    return None


def _response(status, cwreq, body=b""):
    response = Response(status=status, headerlist=[])
    for name, values in cwreq.headers_out.getAllRawHeaders():
        for value in values:
            response.headers.add(name, value)
    if status == HTTPStatus.NOT_MODIFIED:
        # A 304 has no body: a "Content-Length: 0" on it makes Squid 5.7
        # serve later hits as empty 200s.
        response.app_iter = []
    else:
        response.body = body
    return response


def _redirect_to_current(cwreq, entity, adapter_id):
    adapter = entity.cw_adapt_to(adapter_id)
    location = adapter.download_url() if adapter_id == "IDownloadable" else adapter.thumbnail_url()
    public = anonymous_may_read(cwreq.cnx, entity.eid)
    cwreq.headers_out.setRawHeaders("Location", [location])
    cwreq.headers_out.setRawHeaders(
        "Cache-Control", [cache_control(public, cwreq.vreg.config["haops-image-max-age"])]
    )
    return _response(HTTPStatus.FOUND, cwreq)


def drop_cookies(request, response):
    """Remove the cookies that the session machinery adds to an image response.

    Reading who the visitor is may make pyramid's cookie session re-send its
    cookie. An image response must carry none, for any visitor, so that a shared
    cache never stores or hands out a visitor's session.
    """
    if "Set-Cookie" in response.headers:
        del response.headers["Set-Cookie"]


def serve_image(request):
    """Pyramid view of the image routes."""
    # Response callbacks run in the order they were added: this one runs
    # after the session's, which the route predicate triggered.
    request.add_response_callback(drop_cookies)
    _pattern, vid, adapter_id = ROUTES[request.matched_route.name]
    rset = getattr(request, IMAGE_RSET_KEY)
    cwreq = CubicWebPyramidRequest(request)
    cwreq.set_cnx(request.cw_cnx)
    entity = rset.get_entity(0, 0)

    requested = requested_fingerprint(request)
    current = fingerprint_of(entity.data_hash)
    if requested is not None and requested != current:
        # A stale version: never keep it for a year anywhere.
        return _redirect_to_current(cwreq, entity, adapter_id)
    cwreq.data[CURRENT_VERSION_KEY] = requested is not None

    view = cwreq.vreg["views"].select(vid, cwreq, rset=rset)
    view.set_http_cache_headers()
    if cwreq.is_client_cache_valid():
        return _response(HTTPStatus.NOT_MODIFIED, cwreq)

    view.set_request_content_type()
    body = view.render()
    return _response(HTTPStatus.OK, cwreq, body)


def includeme(config):
    """Register the image routes, ahead of CubicWeb's own handling."""
    config.add_route_predicate("haops_readable_image", ReadableImagePredicate)
    for name, (pattern, _vid, _adapter) in ROUTES.items():
        config.add_route(name, pattern, haops_readable_image=True)
        config.add_view(
            serve_image,
            route_name=name,
            permission=NO_PERMISSION_REQUIRED,
            require_csrf=False,
        )

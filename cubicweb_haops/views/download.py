"""Download and thumbnail views for images, with headers that caches can trust.

They replace, for Files whose format starts with ``image/``, the core
``download`` view and cubicweb-file's ``thumbnail`` view. The response
carries a strong ``ETag`` built from the content hash (it changes when, and
only when, the bytes change), ``Last-Modified``, and a ``Cache-Control``
that is public only when the anonymous user may read the image. A request on
the current fingerprinted URL (see :mod:`cubicweb_haops.entities`) may be kept
for a year; any other URL, for ``haops-image-max-age`` seconds.

NOTE: reached through ``/view?vid=download`` with a query other than one
entity by eid, these views run in CubicWeb's usual handling. That handling
opens a session for an anonymous visitor and sends its cookie, unlike the
image routes of :mod:`cubicweb_haops.imageroute`.
"""

from calendar import timegm

from cubicweb.predicates import has_mimetype, is_instance
from cubicweb_web.httpcache import NoHTTPCacheManager
from cubicweb_web.views.idownloadable import DownloadView

from cubicweb_file.views import ThumbnailView

from cubicweb_haops.fingerprint import digest_of
from cubicweb_haops.imagecache import IMMUTABLE_MAX_AGE, anonymous_may_read, cache_control

# Key of the request data where the image route records whether the request
# named the current fingerprint.
CURRENT_VERSION_KEY = "haops.current_version"


class ImageHTTPCacheManager(NoHTTPCacheManager):
    """Cache headers of an image response, computed without reading the bytes."""

    def set_headers(self):
        req = self.req
        entity = self.cw_rset.get_entity(0, 0)
        immutable = bool(req.data.get(CURRENT_VERSION_KEY))
        max_age = IMMUTABLE_MAX_AGE if immutable else req.vreg.config["haops-image-max-age"]
        public = anonymous_may_read(req.cnx, entity.eid)
        req.headers_out.setRawHeaders("Cache-Control", [cache_control(public, max_age, immutable)])

        digest = digest_of(entity.data_hash)
        if digest:
            req.headers_out.setRawHeaders("ETag", [f'"{digest}{self.view.etag_suffix()}"'])
        req.set_header("Last-modified", timegm(entity.modification_date.timetuple()), raw=False)


class ImageDownloadView(DownloadView):
    """The bytes of an image, shown in place rather than saved as an attachment."""

    __select__ = DownloadView.__select__ & is_instance("File") & has_mimetype("image/")
    http_cache_manager = ImageHTTPCacheManager

    def etag_suffix(self):
        return ""

    def set_request_content_type(self):
        entity = self.cw_rset.complete_entity(self.cw_row or 0, self.cw_col or 0)
        adapter = entity.cw_adapt_to("IDownloadable")
        self._cw.set_content_type(
            adapter.download_content_type(),
            filename=adapter.download_file_name(),
            disposition="inline",
        )


class ImageThumbnailView(ThumbnailView):
    """The thumbnail of an image, cached like the image."""

    __select__ = ThumbnailView.__select__ & is_instance("File") & has_mimetype("image/")
    http_cache_manager = ImageHTTPCacheManager

    def etag_suffix(self):
        # The thumbnail's bytes depend on the image and on the thumbnail size.
        return "-thumbnail-" + self._cw.vreg.config["image-thumb-size"]

    def set_request_content_type(self):
        entity = self.cw_rset.complete_entity(self.cw_row or 0, self.cw_col or 0)
        self._cw.set_content_type(
            self.content_type,
            filename=entity.cw_adapt_to("IThumbnail").thumbnail_file_name(),
            disposition="inline",
        )

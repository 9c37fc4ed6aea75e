"""HTTP cache policies of the haops views."""

from cubicweb_web.httpcache import NoHTTPCacheManager


class NoStoreHTTPCacheManager(NoHTTPCacheManager):
    """no-store: no cache, shared or private, keeps the response at all."""

    def set_headers(self):
        self.req.set_header("Cache-Control", "no-store")

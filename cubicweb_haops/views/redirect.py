"""Permanent redirects from the URLs of replaced images to their replacement.

A page that Squid or a browser cached before the replacement, or a link from
another site, still names the old eid. The records that the edit controller
stores in the database map it to the File that contains the data now, so
every process and every web server sends the same 301.
"""

from http import HTTPStatus

from cubicweb_web import Redirect
from cubicweb_web.views.urlpublishing import PathDontMatch, URLPathEvaluator

from cubicweb_haops.eids import is_eid

REDIRECTED_METHODS = ("GET", "HEAD")


def parse_file_path(parts):
    """Return (eid, kind, tail) for an eid URL of a File, or raise PathDontMatch.

    *kind* is None for ``/<eid>`` and ``/file/<eid>``, else ``raw`` or
    ``thumb``; *tail* is the rest of the path after it.
    """
    if len(parts) == 1 and is_eid(parts[0]):
        return int(parts[0]), None, []
    if len(parts) >= 2 and parts[0].lower() == "file" and is_eid(parts[1]):
        if len(parts) == 2:
            return int(parts[1]), "file", []
        if parts[2] in ("raw", "thumb"):
            return int(parts[1]), parts[2], parts[3:]
    raise PathDontMatch()


def equivalent_path(req, target, kind, tail):
    """Return the URL of *target* of the same *kind* as the old URL."""
    if kind is None:
        return req.build_url(str(target.eid))
    if kind == "raw":
        return target.cw_adapt_to("IDownloadable").download_url()
    if kind == "thumb":
        thumbnail = target.cw_adapt_to("IThumbnail")
        if thumbnail is not None:
            return thumbnail.thumbnail_url()
        return req.build_url("/".join([target.rest_path(), "thumb", *tail]))
    return req.build_url(target.rest_path())


class ReplacedFileEvaluator(URLPathEvaluator):
    """Redirect (301) the URLs of a File that an upload replaced.

    It runs before the evaluator of ``/<eid>`` URLs and costs one indexed
    query on eid URLs only. Another path, another method, or a replacement
    the user may not read goes to the usual evaluators, as for an entity that
    does not exist.
    """

    priority = 0.5

    def evaluate_path(self, req, parts):
        eid, kind, tail = parse_file_path(parts)
        if req.http_method() not in REDIRECTED_METHODS:
            raise PathDontMatch()

        rset = req.execute(
            "Any N WHERE R replaced_eid %(eid)s, R replacement_file N", {"eid": eid}
        )
        if not rset:
            raise PathDontMatch()

        location = equivalent_path(req, rset.get_entity(0, 0), kind, tail)
        _path, separator, query = req.relative_path(includeparams=True).partition("?")
        if separator:
            location += ("&" if "?" in location else "?") + query

        # The redirect depends on what this user may read.
        req.headers_out.setRawHeaders("Cache-Control", ["private, no-cache"])
        raise Redirect(location, status=HTTPStatus.MOVED_PERMANENTLY)

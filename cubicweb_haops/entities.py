"""Adapters that put the content fingerprint in the URLs of images.

A page links an image through the ``IDownloadable`` and ``IThumbnail``
adapters. For images, the URLs gain a path segment with the fingerprint of
the current bytes, ``/file/<eid>/raw/<fingerprint>/<name>``, so that any
change of the bytes, whatever made it, changes the URL. cubicweb-file's
rewrite rules ignore what follows ``raw`` and ``thumb``, and this cube's
image route reads the segment.
"""

from cubicweb.predicates import score_entity

from cubicweb_file.entities import FileIDownloadableAdapter, FileThumbnailAdapter

from cubicweb_haops.fingerprint import fingerprint_of
from cubicweb_haops.replacement import is_image_format

# has_mimetype() gets the format from the IDownloadable adapter, so it cannot
# select that adapter: read the File's format directly.
is_image_file = score_entity(lambda entity: is_image_format(entity.data_format))


def versioned_path(entity, kind, name):
    """Return the path of *entity*'s *kind* URL (raw or thumb), versioned when it can be."""
    fingerprint = fingerprint_of(entity.data_hash)
    segments = [entity.rest_path(), kind]
    if fingerprint:
        segments.append(fingerprint)
    segments.append(entity._cw.url_quote(name))
    return "/".join(segments)


class VersionedImageDownloadAdapter(FileIDownloadableAdapter):
    __select__ = FileIDownloadableAdapter.__select__ & is_image_file

    def download_url(self, **kwargs):
        path = versioned_path(self.entity, "raw", self.download_file_name())
        return self._cw.build_url(path, **kwargs)


class VersionedThumbnailAdapter(FileThumbnailAdapter):
    __select__ = FileThumbnailAdapter.__select__ & is_image_file

    def thumbnail_url(self):
        path = versioned_path(self.entity, "thumb", self.thumbnail_file_name())
        return self._cw.build_url(path)

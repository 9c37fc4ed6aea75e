"""The edit controller that gives a replaced image a new eid, hence a new URL.

Squid and browsers keep an image for as long as its ``Cache-Control`` allows,
so a new version must live at a new URL. When a form uploads new data for an
existing image, the ordinary edit runs first, with the editor's permissions,
hooks and validation, on the old entity. Once every entity of the form is
edited, each such image moves to a new File (see
:func:`cubicweb_haops.replacement.replace_file`), in the same transaction.
"""

from cubicweb_web.views.editcontroller import EditController

from cubicweb_haops.eids import is_eid, replace_eids
from cubicweb_haops.replacement import (
    concurrent_edition_error,
    is_image_format,
    lock_file,
    replace_file,
)


class ImageReplacingEditController(EditController):
    """CubicWeb's ``edit`` controller, with replacement of uploaded images."""

    def _default_publish(self):
        self._images_to_replace = []
        super()._default_publish()

        replaced = {}
        for eid in self._images_to_replace:
            replaced[eid] = replace_file(self._cw.cnx, eid)
        if replaced:
            self._follow_replacements(replaced)

    def edit_entity(self, formparams, multiple=False):
        # Lock an existing File before the form reads it: a concurrent
        # replacement has then either committed (the row is gone, and the form
        # is stale) or waits for this transaction to end.
        eid = formparams.get("eid")
        if formparams.get("__type") == "File" and isinstance(eid, str) and is_eid(eid):
            if not lock_file(self._cw.cnx, int(eid)):
                raise concurrent_edition_error(int(eid))
        return super().edit_entity(formparams, multiple)

    def _update_entity(self, eid, rqlquery):
        upload = self._is_file_upload(eid, rqlquery)
        if upload:
            format_before = self._data_format(eid)

        super()._update_entity(eid, rqlquery)

        # The format of the new upload is known once cubicweb-file's hooks
        # have set it from the upload or its name.
        if upload and (is_image_format(format_before) or is_image_format(self._data_format(eid))):
            self._images_to_replace.append(eid)

    def _is_file_upload(self, eid, rqlquery):
        return (
            self._cw.vreg.config["haops-replace-images-on-edit"]
            and rqlquery.kwargs.get("data") is not None
            and self._cw.cnx.entity_type(eid) == "File"
        )

    def _data_format(self, eid):
        with self._cw.cnx.security_enabled(read=False):
            rset = self._cw.execute("Any F WHERE X eid %(x)s, X data_format F", {"x": eid})
        return rset[0][0] if rset else None

    def _follow_replacements(self, replaced):
        """Point the redirect of this edit at the new eids."""
        form = self._cw.form
        for key, value in list(form.items()):
            if key.startswith("__redirect") and isinstance(value, str):
                form[key] = replace_eids(value, replaced)

        edited = self._edited_entity
        if edited is not None and edited.eid in replaced:
            self._edited_entity = self._cw.entity_from_eid(replaced[edited.eid])


def registration_callback(vreg):
    vreg.register_all(globals().values(), __name__, (ImageReplacingEditController,))
    vreg.register_and_replace(ImageReplacingEditController, EditController)

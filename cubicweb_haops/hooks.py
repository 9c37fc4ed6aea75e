"""Hooks of the haops cube: keep the content hash of every File current."""

from cubicweb.predicates import is_instance
from cubicweb.server import hook


class KeepDataHashHook(hook.Hook):
    """Hash the data of a File whenever it is set, unless the hash comes with it.

    cubicweb-file hashes uploads only when its ``compute-hash`` option is on,
    in a hook of category "hash" that runs before this one. Versioned image
    URLs and ETags need the hash whatever the value of that option, and whatever path
    (form, RQL, shell, import with hooks) changed the data.
    """

    __regid__ = "haops.keep_data_hash"
    __select__ = hook.Hook.__select__ & is_instance("File")
    events = ("before_add_entity", "before_update_entity")
    category = "haops.fingerprint"

    def __call__(self):
        edited = self.entity.cw_edited
        if "data" not in edited or edited.get("data_hash"):
            return
        data = edited["data"]
        edited["data_hash"] = None if data is None else self.entity.compute_hash(data.getvalue())

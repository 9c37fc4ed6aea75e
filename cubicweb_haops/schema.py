"""Schema of the haops cube: where the data of a replaced image went."""

from cubicweb import _
from yams.buildobjs import EntityType, Int, SubjectRelation

# Anyone may read a replacement record: the old eid reveals nothing by itself,
# and the File it points to stays behind that File's own read permission.
# Only the cube writes records, through the edit controller.
RECORD_PERMISSIONS = {
    "read": ("managers", "users", "guests"),
    "add": ("managers",),
    "update": ("managers",),
    "delete": ("managers",),
}


class FileReplacement(EntityType):
    """The eid of a File replaced by an upload, and the File that replaced it."""

    __permissions__ = RECORD_PERMISSIONS

    replaced_eid = Int(
        required=True,
        unique=True,
        indexed=True,
        description=_("eid of the File that an upload replaced"),
    )
    # Composite on the File side: deleting the replacement File deletes the
    # records that lead to it, so an old URL never leads to a missing entity.
    # When the replacement is itself replaced, the relation moves with the
    # others, so every record points to the latest File.
    replacement_file = SubjectRelation(
        "File",
        cardinality="1*",
        inlined=True,
        composite="object",
        description=_("File that contains the data now"),
        __permissions__={
            "read": ("managers", "users", "guests"),
            "add": ("managers",),
            "delete": ("managers",),
        },
    )

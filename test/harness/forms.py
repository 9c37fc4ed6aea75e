"""Fields of CubicWeb's edit form, as the tests post them to ``/edit``."""


def file_fields(eid, fields="data-subject", name="picture.png", content_type=""):
    """Return the fields that edit File *eid*: *fields* lists the edited ones.

    The name and format fields go with an upload, as the edit form sends
    them; an empty format lets cubicweb-file take the upload's.
    """
    return [
        ("eid", str(eid)),
        (f"__type:{eid}", "File"),
        (f"_cw_entity_fields:{eid}", fields),
        (f"data_name-subject:{eid}", name),
        (f"data_format-subject:{eid}", content_type),
    ]


def main_entity_fields(eid):
    """Return the fields that make *eid* the entity of the form."""
    return [("__maineid", str(eid)), ("__form_id", "edition")]

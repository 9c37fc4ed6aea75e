"""Replace a File by a copy with a new eid, hence a new URL.

The copy takes every attribute and every relation of the original, a
:class:`FileReplacement` record remembers where the original went, and the
original is deleted. All of it happens in the caller's transaction, so a
failure at any step, or at commit, rolls all of it back.
"""

from cubicweb import ValidationError, _
from cubicweb.hooks.security import (
    CheckEntityPermissionOp,
    CheckRelationPermissionOp,
    check_entity_attributes,
)
from cubicweb.schema import VIRTUAL_RTYPES

from cubicweb_haops.relocation import move_relations, moved_relation_types

# Attributes that belong to the entity as a record, not to its content: the
# copy gets its own eid, URI and modification date. Virtual ones have no value.
UNCOPIED_ATTRIBUTES = frozenset(VIRTUAL_RTYPES | {"cwuri", "modification_date"})

CONCURRENT_EDITION = _(
    "Entity %(eid)s has changed since you started to edit it."
    " Reload the page and reapply your changes."
)


def concurrent_edition_error(eid):
    """Return the error that CubicWeb's edit controller gives for a stale form."""
    # The message is CubicWeb's own, so its catalogs translate it.
    return ValidationError(eid, {None: CONCURRENT_EDITION}, {"eid": eid})


def is_image_format(mimetype):
    return bool(mimetype) and mimetype.startswith("image/")


def lock_file(cnx, eid):
    """Lock the row of File *eid* until the end of the transaction.

    Return False when the File no longer exists, because another transaction
    replaced or deleted it. On PostgreSQL, a concurrent edit of the same File
    waits here until the first one commits or rolls back. SQLite serializes
    writers anyway, so there this is only an existence check.
    """
    sql = "SELECT cw_eid FROM cw_File WHERE cw_eid = %(eid)s"
    if cnx.repo.system_source.dbdriver == "postgres":
        sql += " FOR UPDATE"
    return bool(cnx.system_sql(sql, {"eid": eid}).fetchall())


def copied_attributes(entity):
    """Return the attribute values of *entity* that its copy takes over."""
    entity.cw_clear_all_caches()
    entity.complete(skip_bytes=False)
    return {
        rschema.type: entity.cw_attr_cache[rschema.type]
        for rschema in entity.e_schema.subject_relations.values()
        if rschema.final and rschema.type not in UNCOPIED_ATTRIBUTES
    }


def delete_emptied_entity(cnx, etype, eid):
    """Delete entity *eid*, whose relations have all moved away.

    CubicWeb deletes the relations of a deleted entity with one RQL query per
    relation type and role, except for the relation types listed as pending in
    the transaction. The moved ones have no row left for *eid*, so they are
    listed while the entity is deleted, which saves those queries.
    """
    pending = cnx.transaction_data.setdefault("pendingrtypes", set())
    emptied = set(moved_relation_types(cnx.vreg.schema, etype)) - pending
    pending.update(emptied)
    try:
        cnx.execute(f"DELETE {etype} X WHERE X eid %(eid)s", {"eid": eid})
    finally:
        pending.difference_update(emptied)


def check_pending_permissions(cnx, eid):
    """Run now the permission checks that CubicWeb would run at commit on entity *eid*.

    CubicWeb checks update permissions, and those of relations added to an
    entity, at commit. By then the replaced entity is gone, its relations
    with it, so an RQL expression such as ``X owned_by U`` would reject its
    owner, and a relation check would not find the entity's type. The checks
    run here instead, on the edited entity, and leave the queue.
    """
    # NOTE: CubicWeb has no public API to list queued data: this reads the
    # container of its security operations.
    for item in queued_items(cnx, CheckEntityPermissionOp, lambda item: item[0] == eid):
        _eid, action, edited = item
        check_entity_attributes(cnx, cnx.entity_from_eid(eid), action, edited)

    for item in queued_items(cnx, CheckRelationPermissionOp, lambda item: eid in item[2:]):
        action, rschema, eidfrom, eidto = item
        rdef = rschema.relation_definition(cnx.entity_type(eidfrom), cnx.entity_type(eidto))
        rdef.check_perm(cnx, action, fromeid=eidfrom, toeid=eidto)


def queued_items(cnx, operation_class, selected):
    """Remove the *selected* items from the queue of *operation_class* and return them."""
    operation = cnx.transaction_data.get(operation_class.data_key)
    if operation is None:
        return []
    items = [item for item in operation._container if selected(item)]
    for item in items:
        operation.remove_data(item)
    return items


def replace_file(cnx, old_eid):
    """Move File *old_eid* to a new eid and return the new File's eid.

    The caller checks permissions (the edit controller has just updated the
    File with the user's rights, and the checks that CubicWeb keeps for commit
    run first, while the File exists). The steps run with security disabled,
    so an editor who may update an image but not delete entities can replace
    it.
    """
    check_pending_permissions(cnx, old_eid)

    with cnx.security_enabled(read=False, write=False):
        old = cnx.entity_from_eid(old_eid)
        values = copied_attributes(old)

        # The "hash" hooks of cubicweb-file would resize the image and compute
        # its hash again: the bytes, format and hash are copied as stored.
        try:
            with cnx.allow_all_hooks_but("hash"):
                new = cnx.create_entity(old.cw_etype, **values)
        except ValidationError as error:
            # Errors refer to the entity the form edited.
            error.entity = old_eid
            raise

        # Moving relations also moves the records of earlier replacements
        # onto the new File, so that a chain of replacements always ends on
        # the latest one.
        move_relations(cnx, old.cw_etype, old_eid, new.eid)
        cnx.execute(
            "INSERT FileReplacement R: R replaced_eid %(old)s, R replacement_file N"
            " WHERE N eid %(new)s",
            {"old": old_eid, "new": new.eid},
        )
        delete_emptied_entity(cnx, old.cw_etype, old_eid)

    # Cached entities still hold relations to the old eid.
    cnx.drop_entity_cache()
    return new.eid

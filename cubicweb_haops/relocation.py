"""SQL statements that move every relation of one entity onto another.

The statements are set-based: each one moves all the rows of one relation
type in one role, so the number of statements depends on the schema only,
never on how many entities are related. They run on the system source, below
RQL, so no hook runs for the moves: the relations are not added or removed, they
change hands.
"""

from functools import lru_cache

from cubicweb.schema import VIRTUAL_RTYPES
from cubicweb.server.sqlutils import SQL_PREFIX

# Relations that CubicWeb maintains itself for every entity, from its type
# and its source: the new entity gets its own when it is created.
MAINTAINED_RTYPES = frozenset(VIRTUAL_RTYPES | {"is", "is_instance_of", "cw_source"})


def entity_table(etype):
    return f"{SQL_PREFIX}{etype}"


def entity_column(rtype):
    return f"{SQL_PREFIX}{rtype}"


def relation_table(rtype):
    return f"{rtype}_relation"


def movable_relations(eschema, role):
    """Return the relation schemas of *eschema* in *role* that have rows to move."""
    relations = set(eschema.subject_relations.values())
    if role == "object":
        # yams lists a symmetric relation on the subject side only, but
        # CubicWeb stores it in both directions.
        relations = {rschema for rschema in relations if rschema.symmetric}
        relations.update(eschema.object_relations.values())
    return sorted(
        (
            rschema
            for rschema in relations
            if not rschema.final and not rschema.rule and rschema.type not in MAINTAINED_RTYPES
        ),
        key=lambda rschema: rschema.type,
    )


@lru_cache(maxsize=None)
def _statements(schema, etype):
    eschema = schema[etype]
    statements = []

    # Relations inlined in the entity's own row: copy the columns.
    inlined = [rschema.type for rschema in movable_relations(eschema, "subject") if rschema.inlined]
    if inlined:
        table = entity_table(etype)
        copies = ", ".join(
            f"{entity_column(rtype)} = (SELECT old.{entity_column(rtype)} FROM {table} AS old"
            f" WHERE old.{SQL_PREFIX}eid = %(old)s)"
            for rtype in inlined
        )
        statements.append(f"UPDATE {table} SET {copies} WHERE {SQL_PREFIX}eid = %(new)s")

    # Relations in relation tables, in both roles. Rows that hooks gave the
    # new entity at creation (owner, creator) make way for the old ones.
    for role, column in (("subject", "eid_from"), ("object", "eid_to")):
        for rschema in movable_relations(eschema, role):
            if rschema.inlined:
                continue
            table = relation_table(rschema.type)
            statements.append(f"DELETE FROM {table} WHERE {column} = %(new)s")
            statements.append(f"UPDATE {table} SET {column} = %(new)s WHERE {column} = %(old)s")

    # Relations inlined in the rows of the entities that point to this one.
    for rschema in movable_relations(eschema, "object"):
        if not rschema.inlined:
            continue
        column = entity_column(rschema.type)
        for subject in sorted(str(subject) for subject in rschema.subjects(eschema)):
            statements.append(
                f"UPDATE {entity_table(subject)} SET {column} = %(new)s WHERE {column} = %(old)s"
            )

    return tuple(statements)


def relation_moves(schema, etype):
    """Return the SQL statements that move the relations of an *etype* entity.

    Each statement takes the parameters ``old`` and ``new`` (eids). The list
    is computed once per schema object, and a migration that changes the
    schema builds a new one.
    """
    return _statements(schema, etype)


@lru_cache(maxsize=None)
def moved_relation_types(schema, etype):
    """Return the names of the relation types whose rows :func:`move_relations` moves."""
    eschema = schema[etype]
    return frozenset(
        rschema.type
        for role in ("subject", "object")
        for rschema in movable_relations(eschema, role)
    )


def move_relations(cnx, etype, old_eid, new_eid):
    """Move every relation of entity *old_eid* onto entity *new_eid*, in both roles."""
    # NOTE: CubicWeb's undo log (option undo-enabled, off by default) does not
    # record these statements, so undoing a replacement cannot restore them.
    args = {"old": old_eid, "new": new_eid}
    for statement in relation_moves(cnx.vreg.schema, etype):
        cnx.system_sql(statement, args)

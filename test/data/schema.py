"""Test schema: entity types related to File in every way the replacement must handle."""

from yams.buildobjs import EntityType, RelationDefinition, String, SubjectRelation

from cubicweb.schema import ERQLExpression

# Members of "users" may update any File but delete none, so a replacement
# must not need the delete permission. Guests, the anonymous user among them,
# may read every File except those titled "private".
FILE_PERMISSIONS = {
    "read": ("managers", "users", ERQLExpression('NOT X title "private"')),
    "add": ("managers", "users"),
    "update": ("managers", "users"),
    "delete": ("managers",),
}

MANAGED_RELATION = {
    "read": ("managers", "users", "guests"),
    "add": ("managers",),
    "delete": ("managers",),
}


class Product(EntityType):
    """Points to a File from its own row, with a mandatory inlined relation."""

    name = String(required=True)
    main_image = SubjectRelation("File", cardinality="1*", inlined=True)
    gallery = SubjectRelation("File", cardinality="**")


class Album(EntityType):
    """Owns Files: deleting an album deletes its pictures."""

    title = String()
    pictures = SubjectRelation("File", cardinality="*?", composite="subject")


class Caption(EntityType):
    """Belongs to exactly one File, which owns it."""

    text = String()


class Photographer(EntityType):
    name = String()


class has_caption(RelationDefinition):
    subject = "File"
    object = "Caption"
    cardinality = "*1"
    composite = "subject"


class credited_to(RelationDefinition):
    """Inlined in the File's row."""

    subject = "File"
    object = "Photographer"
    cardinality = "?*"
    inlined = True


class see_also(RelationDefinition):
    subject = "File"
    object = "File"
    symmetric = True


class endorsed_by(RelationDefinition):
    """A relation that only managers may change by hand."""

    __permissions__ = MANAGED_RELATION
    subject = "File"
    object = "Photographer"


def post_build_callback(schema):
    for action, groups in FILE_PERMISSIONS.items():
        schema["File"].set_action_permissions(action, groups)

"""The ``Cache-Control`` of image responses: how long caches may keep an image, and which caches.

Whether a shared cache may store an image depends on what the anonymous user
may read, never on who asks: a response fetched by an administrator and
marked public would later be served by Squid to anyone.
"""

IMMUTABLE_MAX_AGE = 365 * 24 * 3600


def cache_control(public, max_age, immutable=False):
    """Return the ``Cache-Control`` value for an image response."""
    directives = ["public" if public else "private", f"max-age={max_age}"]
    if immutable:
        directives.append("immutable")
    return ", ".join(directives)


def _allowed(permissions, groups, check_expression):
    for permission in permissions:
        if isinstance(permission, str):
            if permission in groups:
                return True
        elif check_expression(permission):
            return True
    return False


def anonymous_user(cnx):
    """Return the eid and the group names of the instance's anonymous user.

    Return (None, empty set) when the instance has no anonymous user.
    """
    login = cnx.vreg.config.anonymous_user()[0]
    if not login:
        return None, frozenset()
    with cnx.security_enabled(read=False):
        rows = cnx.execute(
            "Any U, N WHERE U login %(login)s, U in_group G, G name N", {"login": login}
        ).rows
    if not rows:
        return None, frozenset()
    return rows[0][0], frozenset(name for _eid, name in rows)


def anonymous_may_read(cnx, eid):
    """Return whether the instance's anonymous user may read entity *eid* and its data.

    The entity's read permission is evaluated for the anonymous user, with
    its RQL expressions bound to that user. An RQL expression on the
    ``data`` attribute counts as a refusal, which only makes a response
    private.
    """
    user_eid, groups = anonymous_user(cnx)
    if user_eid is None:
        return False
    eschema = cnx.vreg.schema[cnx.entity_type(eid)]

    def expression_allows(expression):
        rql = f"Any X WHERE X eid %(x)s, U eid %(u)s, {expression.expression}"
        with cnx.security_enabled(read=False):
            return bool(cnx.execute(rql, {"x": eid, "u": user_eid}))

    if not _allowed(eschema.permissions["read"], groups, expression_allows):
        return False
    data_permissions = eschema.relation_definition("data").permissions["read"]
    return _allowed(data_permissions, groups, lambda _expression: False)

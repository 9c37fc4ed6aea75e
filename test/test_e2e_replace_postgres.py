"""Image replacement through a real instance process on a real PostgreSQL server.

The uploads are real multipart requests, which webtest sends through
WSGIProxy2 to the server. The server runs in its own process with several
threads, so two requests can really overlap. The test data is created with ``cubicweb-ctl
shell`` and the results are read with SQL from the database.
"""

import functools
import http.client
import json
import re
import threading
import time
import urllib.parse
from contextlib import closing

import pytest
import webtest
from wsgiproxy.proxies import HostProxy, HttpClient

from conftest import run_instance
from harness.forms import file_fields, main_entity_fields
from images import decoded_size, fingerprint, image_bytes, mimetype

HTTP_TIMEOUT = 30
THREAD_TIMEOUT = 2 * HTTP_TIMEOUT

VALIDATION_RESPONSE = re.compile(r"handleFormValidationResponse\('[^']*', \w+, \w+, (.*), \w+\);")
CONCURRENT_EDITION = "has changed since you started to edit it"

# The test cube's hook sleeps HOLD_SECONDS after an update that sets this
# title, with the File's row locked (see cubicweb_haopstest/hooks.py).
HOLD_TITLE = "hold-replacement"
HOLD_SECONDS = 2
# The second editor submits this long after the first one, well within the
# time the first one keeps the lock.
SECOND_SUBMIT_DELAY = 0.5

USERS = {"editor": "users", "editor2": "users", "visitor": "guests"}

# Relations that CubicWeb stores for every entity from its type and source,
# and the records of earlier replacements, which the comparison leaves out.
UNCOMPARED_RTYPES = frozenset({"is", "is_instance_of", "cw_source", "replacement_file"})
# Every way the test schema relates a File, plus the metadata that CubicWeb
# adds. The relations of a test image must include all of them.
EXPECTED_RTYPES = frozenset(
    {
        "credited_to",
        "endorsed_by",
        "see_also",
        "has_caption",
        "main_image",
        "gallery",
        "pictures",
        "owned_by",
        "created_by",
    }
)

# Run in cubicweb-ctl shell, where ``cnx`` is a connection of the admin user.
SETUP_SCRIPT = """
import json
from cubicweb import Binary

USERS = {users!r}
IMAGES = {images!r}

for login, group in USERS.items():
    cnx.execute(
        "INSERT CWUser U: U login %(login)s, U upassword %(password)s, U in_group G"
        " WHERE G name %(group)s",
        {{"login": login, "password": login, "group": group}},
    )


def related_image(kind, data, other_data):
    image = cnx.create_entity(
        "File", data=Binary(data), data_name="picture." + kind,
        data_format="image/" + kind, title="picture",
    )
    other = cnx.create_entity(
        "File", data=Binary(other_data), data_name="other.png",
        data_format="image/png", title="other",
    )
    photographer = cnx.create_entity("Photographer", name="Ada")
    endorser = cnx.create_entity("Photographer", name="Grace")
    cnx.execute(
        "SET X credited_to P, X endorsed_by E, X see_also O"
        " WHERE X eid %(x)s, P eid %(p)s, E eid %(e)s, O eid %(o)s",
        {{"x": image.eid, "p": photographer.eid, "e": endorser.eid, "o": other.eid}},
    )
    cnx.create_entity("Product", name="lamp", main_image=image)
    cnx.create_entity("Product", name="desk", main_image=other, gallery=image)
    cnx.create_entity("Album", title="summer", pictures=image)
    cnx.create_entity("Caption", text="at dawn", reverse_has_caption=image)
    return {{"image": image.eid, "other": other.eid}}


created = {{
    name: related_image(kind, data, IMAGES["other"])
    for name, (kind, data) in IMAGES["images"].items()
}}
cnx.commit()
print("RESULT", json.dumps(created))
"""

CONFLICT_SCRIPT = """
cnx.execute(
    "INSERT FileReplacement R: R replaced_eid %(old)s, R replacement_file F WHERE F eid %(other)s",
    {{"old": {old}, "other": {other}}},
)
cnx.commit()
"""

# The images of the module, one per test that changes one, so the tests do
# not depend on each other. Keys are names, values are image kinds.
IMAGE_KINDS = {
    "png": "png",
    "jpeg": "jpeg",
    "gif": "gif",
    "chain": "png",
    "guest": "png",
    "race": "png",
    "conflict": "png",
}


@pytest.fixture(scope="module")
def site(instance_root, postgres):
    """An instance without anonymous access, its users and related images."""
    instance = run_instance(instance_root, "pgreplace", "haops,haopstest", database=postgres)
    try:
        script = SETUP_SCRIPT.format(
            users=USERS,
            images={
                "images": {name: (kind, image_bytes(kind)) for name, kind in IMAGE_KINDS.items()},
                "other": image_bytes(color="green"),
            },
        )
        output = instance.shell(script)
        result = next(line for line in output.splitlines() if line.startswith("RESULT "))
        instance.images = json.loads(result.removeprefix("RESULT "))
        yield instance
    finally:
        instance.stop()


# HTTP ------------------------------------------------------------------------


class TimedHttpClient(HttpClient):
    """WSGIProxy2's default client, with a timeout on every connection.

    The proxy returns 504 when the server does not reply in time.
    """

    HTTPConnection = functools.partial(http.client.HTTPConnection, timeout=HTTP_TIMEOUT)


class WebUser:
    """A user's session on the site, as a webtest app with its own cookies."""

    def __init__(self, site, login):
        self.base = site.url
        self.app = webtest.TestApp(HostProxy(site.url, client=TimedHttpClient()))
        self.login(login)

    def url(self, path):
        return f"{self.base}/{path}"

    def csrf_token(self):
        # CubicWeb checks a CSRF token on every POST, login included. The
        # server sets it as a cookie and expects it back as a form field.
        # Over plain HTTP, pyramid checks no Origin header.
        return self.app.cookies["csrf_token"]

    def login(self, login):
        self.app.get(self.url("login"))
        response = self.app.post(
            self.url("login"),
            {"__login": login, "__password": login, "csrf_token": self.csrf_token()},
            status="*",
        )
        assert response.status_int == 303, f"login of {login} failed: {response.status}"

    def get(self, path):
        return self.app.get(self.url(path), status="*")

    def edit_form(self, eid):
        # The instance's default pyramid.ini includes the HTML views of
        # cubicweb.pyramid.rest_api, which serve /<eid> for existing
        # entities, so the edit form of cubicweb-web is reached through /view.
        rql = urllib.parse.quote_plus(f"Any X WHERE X eid {eid}")
        page = self.app.get(self.url(f"view?rql={rql}&vid=edition"))
        return page.forms["entityForm"]

    def submit(self, form, eid, data, name, content_type, **fields):
        """Fill the edit *form* of File *eid*, submit it to validateform and
        return the (status, result) that the page passes to its script."""
        form[f"data-subject:{eid}"] = webtest.Upload(name, data, content_type)
        for field, value in fields.items():
            form[f"{field}-subject:{eid}"] = value
        response = form.submit()
        match = VALIDATION_RESPONSE.search(response.text)
        assert match, f"no validation response in: {response.text[:500]}"
        status, result, _entity = json.loads(match.group(1))
        return status, result

    def post_upload(self, eid, data, name):
        """Post an upload for File *eid* straight to /edit."""
        params = file_fields(eid, name=name) + main_entity_fields(eid)
        params.append(("csrf_token", self.csrf_token()))
        return self.app.post(
            self.url("edit"),
            params,
            upload_files=[(f"data-subject:{eid}", name, data)],
            status="*",
        )


def replace(site, eid, color):
    """Upload a PNG of *color* over File *eid* as an editor and return the new eid."""
    editor = WebUser(site, "editor")
    ok, location = editor.submit(
        editor.edit_form(eid), eid, image_bytes(color=color), f"{color}.png", "image/png"
    )
    assert ok, location
    new = replacement_of(site, eid)
    assert new is not None, f"File {eid} was not replaced"
    return new


# Database ----------------------------------------------------------------------


def connect(site):
    return closing(site.database.connect(site.name))


def file_data(site, eid):
    rows = site.sql("SELECT cw_data FROM cw_file WHERE cw_eid = ?", (eid,))
    return bytes(rows[0][0]) if rows else None


def file_exists(site, eid):
    in_table = site.sql("SELECT 1 FROM cw_file WHERE cw_eid = ?", (eid,))
    in_entities = site.sql("SELECT 1 FROM entities WHERE eid = ?", (eid,))
    return bool(in_table or in_entities)


def replacement_of(site, eid):
    rows = site.sql(
        "SELECT cw_replacement_file FROM cw_filereplacement WHERE cw_replaced_eid = ?", (eid,)
    )
    return rows[0][0] if rows else None


def relations_of(cursor, eid):
    """Return every relation of *eid* as a set of (rtype, role, other eid).

    The relation tables and the inlined columns are read from the database
    itself, so a relation that the schema gains is compared too.
    """
    relations = set()

    cursor.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = current_schema() AND table_name LIKE %s",
        ("%\\_relation",),
    )
    for (table,) in cursor.fetchall():
        rtype = table.removesuffix("_relation")
        if rtype in UNCOMPARED_RTYPES:
            continue
        cursor.execute(f"SELECT eid_to FROM {table} WHERE eid_from = %s", (eid,))
        relations.update((rtype, "subject", other) for (other,) in cursor.fetchall())
        cursor.execute(f"SELECT eid_from FROM {table} WHERE eid_to = %s", (eid,))
        relations.update((rtype, "object", other) for (other,) in cursor.fetchall())

    cursor.execute("SELECT cw_name FROM cw_cwrtype WHERE cw_inlined")
    inlined = {
        f"cw_{name.lower()}": name
        for (name,) in cursor.fetchall()
        if name not in UNCOMPARED_RTYPES
    }
    cursor.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND column_name = ANY(%s)",
        (list(inlined),),
    )
    for table, column in cursor.fetchall():
        rtype = inlined[column]
        if table == "cw_file":
            cursor.execute(
                f"SELECT {column} FROM cw_file WHERE cw_eid = %s AND {column} IS NOT NULL", (eid,)
            )
            relations.update((rtype, "subject", other) for (other,) in cursor.fetchall())
        cursor.execute(f"SELECT cw_eid FROM {table} WHERE {column} = %s", (eid,))
        relations.update((rtype, "object", other) for (other,) in cursor.fetchall())

    return {(rtype, role, "self" if other == eid else other) for rtype, role, other in relations}


def file_relations(site, eid):
    with connect(site) as cnx, cnx.cursor() as cursor:
        return relations_of(cursor, eid)


def related_image(site, name):
    """Return the eid of the test image *name* and its relations, checked complete."""
    eid = site.images[name]["image"]
    relations = file_relations(site, eid)
    assert {rtype for rtype, _role, _other in relations} >= EXPECTED_RTYPES
    return eid, relations


def snapshot(site):
    """Return the Files, their bytes and relations, and the replacement records."""
    with connect(site) as cnx, cnx.cursor() as cursor:
        cursor.execute(
            "SELECT cw_eid, cw_title, cw_data_name, cw_data FROM cw_file ORDER BY cw_eid"
        )
        files = [(eid, title, name, bytes(data)) for eid, title, name, data in cursor.fetchall()]
        cursor.execute(
            "SELECT cw_replaced_eid, cw_replacement_file FROM cw_filereplacement"
            " ORDER BY cw_replaced_eid"
        )
        records = cursor.fetchall()
        relations = {eid: relations_of(cursor, eid) for eid, _, _, _ in files}
    return {"files": files, "records": records, "relations": relations}


# The replacement ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ("png", "jpeg", "gif"))
def test_upload_replaces_image(site, kind):
    old, relations = related_image(site, kind)
    new_bytes = image_bytes(kind, "blue", (16, 9))
    editor = WebUser(site, "editor")
    form = editor.edit_form(old)

    ok, location = editor.submit(form, old, new_bytes, f"new.{kind}", mimetype(kind))

    assert ok, location
    new = replacement_of(site, old)
    assert new is not None
    assert new != old
    assert not file_exists(site, old)
    assert location.split("?")[0] == f"{site.url}/file/{new}"
    assert file_data(site, new) == new_bytes
    assert decoded_size(file_data(site, new)) == (16, 9)
    assert file_relations(site, new) == relations
    assert site.sql(
        "SELECT cw_data_name, cw_data_format FROM cw_file WHERE cw_eid = ?", (new,)
    ) == [(f"new.{kind}", mimetype(kind))]


# Old URLs ---------------------------------------------------------------------------


def assert_redirects(site, expected):
    """Check that each path of *expected* redirects with 301 to its URL, for an editor."""
    editor = WebUser(site, "editor")
    for path, location in expected.items():
        response = editor.get(path)
        assert response.status_int == 301, f"GET /{path}: {response.status}"
        assert response.headers["Location"] == location, f"GET /{path}"
        assert response.headers["Cache-Control"] == "private, no-cache", f"GET /{path}"


def test_old_urls_redirect_across_restart(site):
    first, _relations = related_image(site, "chain")
    second = replace(site, first, "blue")
    third = replace(site, second, "yellow")
    # Image URLs lead to the current URL, which carries the content fingerprint.
    version = fingerprint(image_bytes(color="yellow"))
    expected = {}
    for old in (first, second):
        expected.update(
            {
                f"{old}": f"{site.url}/{third}",
                f"file/{old}": f"{site.url}/file/{third}",
                f"file/{old}/raw/picture.png": f"{site.url}/file/{third}/raw/{version}/yellow.png",
                f"file/{old}/thumb/picture_75x75.png": (
                    f"{site.url}/file/{third}/thumb/{version}/yellow_75x75.png"
                ),
            }
        )

    assert_redirects(site, expected)

    # The records are in the database, so a new process sends the same redirects.
    site.stop()
    site.start()

    assert_redirects(site, expected)
    editor = WebUser(site, "editor")
    target = editor.get(f"file/{first}/raw/picture.png").headers["Location"]
    image = editor.app.get(target)
    assert image.body == image_bytes(color="yellow")
    assert image.body == file_data(site, third)


# Permissions -------------------------------------------------------------------------


def test_guest_upload_changes_nothing(site):
    old, _relations = related_image(site, "guest")
    original = file_data(site, old)
    before = snapshot(site)

    response = WebUser(site, "visitor").post_upload(old, image_bytes(color="blue"), "b.png")

    # The replacement runs the update permission check before the commit,
    # so CubicWeb's Unauthorized reaches the client as 403.
    assert response.status_int == 403
    assert "Traceback" not in response.text
    assert snapshot(site) == before
    assert file_data(site, old) == original
    assert replacement_of(site, old) is None


# Concurrent editors ---------------------------------------------------------------------


def submit_in_thread(results, name, user, form, eid, data, **fields):
    """Start a thread that submits *form* and stores its outcome in *results*."""

    def run():
        started = time.monotonic()
        try:
            outcome = user.submit(form, eid, data, f"{name}.png", "image/png", **fields)
        except Exception as error:  # re-raised by the test, with its traceback
            results[name] = (error, time.monotonic() - started)
        else:
            results[name] = (outcome, time.monotonic() - started)

    thread = threading.Thread(target=run, name=f"submit-{name}", daemon=True)
    thread.start()
    return thread


def test_concurrent_replacements_one_wins(site):
    old, relations = related_image(site, "race")
    files_before = site.sql("SELECT COUNT(*) FROM cw_file")[0][0]
    winner, loser = WebUser(site, "editor"), WebUser(site, "editor2")
    winner_form, loser_form = winner.edit_form(old), loser.edit_form(old)
    winner_bytes = image_bytes(color="blue")
    results = {}

    threads = [
        submit_in_thread(
            results, "winner", winner, winner_form, old, winner_bytes, title=HOLD_TITLE
        )
    ]
    time.sleep(SECOND_SUBMIT_DELAY)
    threads.append(
        submit_in_thread(results, "loser", loser, loser_form, old, image_bytes(color="yellow"))
    )
    for thread in threads:
        thread.join(THREAD_TIMEOUT)
        assert not thread.is_alive(), f"{thread.name} still running after {THREAD_TIMEOUT} s"

    for name, (outcome, _seconds) in results.items():
        if isinstance(outcome, Exception):
            raise AssertionError(f"the {name}'s submission failed") from outcome
    (winner_ok, location), _ = results["winner"]
    (loser_ok, loser_result), loser_seconds = results["loser"]

    assert winner_ok, location
    assert not loser_ok
    assert CONCURRENT_EDITION in json.dumps(loser_result)
    # The loser waited for the winner's row lock, so the requests overlapped.
    assert loser_seconds >= HOLD_SECONDS - SECOND_SUBMIT_DELAY - 0.5, loser_seconds

    records = site.sql(
        "SELECT cw_replacement_file FROM cw_filereplacement WHERE cw_replaced_eid = ?", (old,)
    )
    assert len(records) == 1
    new = records[0][0]
    assert location.split("?")[0] == f"{site.url}/file/{new}"
    assert not file_exists(site, old)
    assert site.sql("SELECT COUNT(*) FROM cw_file")[0][0] == files_before
    assert site.sql("SELECT cw_eid FROM cw_file WHERE cw_title = ?", (HOLD_TITLE,)) == [(new,)]
    assert file_data(site, new) == winner_bytes
    assert file_relations(site, new) == relations


# Nothing lost -------------------------------------------------------------------------------


def test_database_error_changes_nothing(site):
    old, _relations = related_image(site, "conflict")
    original = file_data(site, old)
    editor = WebUser(site, "editor")
    form = editor.edit_form(old)

    # A record that already names the old eid makes PostgreSQL reject the
    # replacement's own record, after the copy and the moves. It is added
    # once the form is loaded, since the old URLs of a replaced eid redirect.
    other = site.images["conflict"]["other"]
    site.shell(CONFLICT_SCRIPT.format(old=old, other=other))
    before = snapshot(site)

    ok, result = editor.submit(form, old, image_bytes(color="blue"), "b.png", "image/png")

    assert not ok
    # CubicWeb reports the failed SQL statement, which shows that the
    # injected conflict is what failed.
    assert "INSERT INTO cw_FileReplacement" in result
    assert "Traceback" not in result
    assert snapshot(site) == before
    assert file_data(site, old) == original
    assert site.sql(
        "SELECT cw_replacement_file FROM cw_filereplacement WHERE cw_replaced_eid = ?", (old,)
    ) == [(other,)]

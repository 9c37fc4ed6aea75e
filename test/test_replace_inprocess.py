"""Image replacement through the edit controller, in-process on SQLite.

Uploads go through webtest as real multipart requests: the edit form that
CubicWeb renders is filled and submitted (it posts to ``validateform``), or
``/edit`` is posted directly.
"""

import json
import re
from contextlib import contextmanager
from unittest import mock

import webtest

from cubicweb import Binary, ValidationError
from cubicweb.schema import ERQLExpression, RRQLExpression
from cubicweb.devtools import BASE_URL
from cubicweb.predicates import is_instance
from cubicweb.server import ON_COMMIT_ADD_RELATIONS, hook
from cubicweb_web.devtools.testlib import PyramidWebCWTC

from cubicweb_haops import relocation
from harness.forms import file_fields, main_entity_fields
from images import decoded_size, image_bytes, mimetype

VALIDATION_RESPONSE = re.compile(r"handleFormValidationResponse\('[^']*', \w+, \w+, (.*), \w+\);")


class FailingHook(hook.Hook):
    """Raise when a File titled "fail-in-hook" is created."""

    __regid__ = "haops_test_failing_hook"
    __select__ = hook.Hook.__select__ & is_instance("File")
    events = ("after_add_entity",)

    def __call__(self):
        if self.entity.title == "fail-in-hook":
            raise RuntimeError("injected hook failure")


class RejectAtCommit(hook.Operation):
    def precommit_event(self):
        raise ValidationError(self.eid, {"title": "injected commit-time rejection"})


class RejectAtCommitHook(hook.Hook):
    """Reject, at commit, the creation of a File titled "fail-at-commit"."""

    __regid__ = "haops_test_commit_hook"
    __select__ = hook.Hook.__select__ & is_instance("File")
    events = ("after_add_entity",)

    def __call__(self):
        if self.entity.title == "fail-at-commit":
            RejectAtCommit(self._cw, eid=self.entity.eid)


class ReplaceImageTC(PyramidWebCWTC):
    settings = {
        "cubicweb.includes": ["cubicweb.pyramid.auth", "cubicweb.pyramid.session"],
        "cubicweb.bwcompat": True,
    }

    def setUp(self):
        super().setUp()
        with self.admin_access.cnx() as cnx:
            self.create_user(cnx, "editor", groups=("users",), password="editor")
            self.create_user(cnx, "visitor", groups=("guests",), password="visitor")
            cnx.commit()

    # Fixtures ---------------------------------------------------------------

    def create_image(self, cnx, kind="png", title="picture", color="red", name=None):
        return cnx.create_entity(
            "File",
            data=Binary(image_bytes(kind, color)),
            data_name=name or f"picture.{kind}",
            data_format=mimetype(kind),
            title=title,
        )

    def create_related_image(self, kind="png"):
        """Create an image related to other entities in every way the test schema allows."""
        with self.admin_access.cnx() as cnx:
            image = self.create_image(cnx, kind)
            other = self.create_image(cnx, title="other", color="green")
            photographer = cnx.create_entity("Photographer", name="Ada")
            endorser = cnx.create_entity("Photographer", name="Grace")
            cnx.execute(
                "SET X credited_to P, X endorsed_by E, X see_also O WHERE X eid %(x)s,"
                " P eid %(p)s, E eid %(e)s, O eid %(o)s",
                {"x": image.eid, "p": photographer.eid, "e": endorser.eid, "o": other.eid},
            )
            product = cnx.create_entity("Product", name="lamp", main_image=image)
            cnx.create_entity("Product", name="desk", main_image=other, gallery=image)
            cnx.create_entity("Album", title="summer", pictures=image)
            cnx.create_entity("Caption", text="at dawn", reverse_has_caption=image)
            cnx.commit()
            self.related = {
                "photographer": photographer.eid,
                "endorser": endorser.eid,
                "other": other.eid,
                "product": product.eid,
            }
            return image.eid

    def relations_of(self, eid):
        """Return every relation of *eid* as a set of (rtype, role, other eid)."""
        relations = set()
        with self.admin_access.cnx() as cnx:
            with cnx.security_enabled(read=False):
                eschema = self.schema[cnx.entity_type(eid)]
                for role in ("subject", "object"):
                    for rschema in relocation.movable_relations(eschema, role):
                        if rschema.type == "replacement_file":
                            continue
                        if role == "subject":
                            rql = f"Any Y WHERE X {rschema.type} Y, X eid %(x)s"
                        else:
                            rql = f"Any Y WHERE Y {rschema.type} X, X eid %(x)s"
                        for (other,) in cnx.execute(rql, {"x": eid}):
                            relations.add((rschema.type, role, other if other != eid else "self"))
        return relations

    def snapshot(self):
        """Return the state that a failed replacement must leave untouched."""
        with self.admin_access.cnx() as cnx:
            files = cnx.execute("Any X, T, N ORDERBY X WHERE X is File, X title T, X data_name N")
            records = cnx.execute("Any E, N ORDERBY E WHERE R replaced_eid E, R replacement_file N")
            return {
                "files": [tuple(row) for row in files],
                "records": [tuple(row) for row in records],
                "relations": {eid: self.relations_of(eid) for eid, _, _ in files},
            }

    def file_data(self, eid):
        with self.admin_access.cnx() as cnx:
            return cnx.entity_from_eid(eid).data.getvalue()

    def replacement_of(self, eid):
        with self.admin_access.cnx() as cnx:
            rset = cnx.execute(
                "Any N WHERE R replaced_eid %(x)s, R replacement_file N", {"x": eid}
            )
            return rset[0][0] if rset else None

    def file_exists(self, eid):
        with self.admin_access.cnx() as cnx:
            return bool(cnx.execute("Any X WHERE X is File, X eid %(x)s", {"x": eid}))

    # Requests ---------------------------------------------------------------

    def submit_edit_form(self, eid, data, name, content_type, before_submit=None, **fields):
        """Fill CubicWeb's edit form of File *eid* and submit it to validateform."""
        page = self.webapp.get(f"{BASE_URL}{eid}?vid=edition")
        if before_submit is not None:
            before_submit()
        form = page.forms["entityForm"]
        if data is not None:
            form[f"data-subject:{eid}"] = webtest.Upload(name, data, content_type)
        for field, value in fields.items():
            form[f"{field}-subject:{eid}"] = value
        response = form.submit()
        status, result, _entity = json.loads(VALIDATION_RESPONSE.search(response.text).group(1))
        return status, result

    def post_edit(self, params, uploads, status="*"):
        params = params + [("csrf_token", self.webapp.get_csrf_token())]
        return self.webapp.post(f"{BASE_URL}edit", params, upload_files=uploads, status=status)

    @contextmanager
    def logged_in(self, login=None):
        if login is None:
            self.webapp.login()
        else:
            self.webapp.login(login, login)
        try:
            yield
        finally:
            self.webapp.logout()

    # The replacement ---------------------------------------------------------

    def test_upload_replaces_each_image_format(self):
        for kind in ("png", "jpeg", "gif"):
            with self.subTest(kind=kind):
                old = self.create_related_image(kind)
                relations = self.relations_of(old)
                new_bytes = image_bytes(kind, "blue", (16, 9))

                with self.logged_in():
                    ok, location = self.submit_edit_form(
                        old, new_bytes, f"new.{kind}", mimetype(kind)
                    )

                self.assertTrue(ok, location)
                new = self.replacement_of(old)
                self.assertIsNotNone(new)
                self.assertNotEqual(new, old)
                self.assertFalse(self.file_exists(old))
                self.assertEqual(location.split("?")[0], f"{BASE_URL}file/{new}")
                self.assertEqual(self.file_data(new), new_bytes)
                self.assertEqual(decoded_size(self.file_data(new)), (16, 9))
                self.assertEqual(self.relations_of(new), relations)

    def test_copy_keeps_attributes_owner_and_creator(self):
        with self.admin_access.cnx() as cnx:
            self.create_user(cnx, "author", groups=("users",), password="author")
            cnx.commit()
        with self.new_access("author").cnx() as cnx:
            image = self.create_image(cnx, title="kept title")
            image.cw_set(description="kept description")
            cnx.commit()
            old, created = image.eid, image.creation_date

        with self.logged_in("editor"):
            ok, location = self.submit_edit_form(
                old, image_bytes(color="blue"), "new.png", "image/png"
            )

        self.assertTrue(ok, location)
        with self.admin_access.cnx() as cnx:
            new = cnx.entity_from_eid(self.replacement_of(old))
            self.assertEqual(new.title, "kept title")
            self.assertEqual(new.description, "kept description")
            self.assertEqual(new.data_name, "new.png")
            self.assertEqual(new.data_format, "image/png")
            self.assertEqual(new.creation_date, created)
            self.assertEqual([user.login for user in new.owned_by], ["author"])
            self.assertEqual([user.login for user in new.created_by], ["author"])

    def test_form_values_go_to_new_entity(self):
        old = self.create_related_image()
        with self.logged_in():
            ok, location = self.submit_edit_form(
                old, image_bytes(color="blue"), "new.png", "image/png", title="edited title"
            )
        self.assertTrue(ok, location)
        with self.admin_access.cnx() as cnx:
            self.assertEqual(cnx.entity_from_eid(self.replacement_of(old)).title, "edited title")

    def test_upload_of_image_onto_non_image_replaces(self):
        with self.admin_access.cnx() as cnx:
            text = cnx.create_entity(
                "File", data=Binary(b"plain"), data_name="notes.txt", data_format="text/plain"
            )
            cnx.commit()
        with self.logged_in():
            ok, location = self.submit_edit_form(text.eid, image_bytes(), "now.png", "image/png")
        self.assertTrue(ok, location)
        self.assertIsNotNone(self.replacement_of(text.eid))

    def test_metadata_edit_stays_in_place(self):
        old = self.create_related_image()
        with self.logged_in():
            ok, location = self.submit_edit_form(old, None, None, None, title="new title")
        self.assertTrue(ok, location)
        self.assertTrue(self.file_exists(old))
        self.assertIsNone(self.replacement_of(old))
        with self.admin_access.cnx() as cnx:
            self.assertEqual(cnx.entity_from_eid(old).title, "new title")

    def test_non_image_upload_stays_in_place(self):
        with self.admin_access.cnx() as cnx:
            text = cnx.create_entity(
                "File", data=Binary(b"plain"), data_name="notes.txt", data_format="text/plain"
            )
            cnx.commit()
        with self.logged_in():
            ok, location = self.submit_edit_form(text.eid, b"other text", "notes.txt", "text/plain")
        self.assertTrue(ok, location)
        self.assertTrue(self.file_exists(text.eid))
        self.assertIsNone(self.replacement_of(text.eid))
        self.assertEqual(self.file_data(text.eid), b"other text")

    def test_option_off_updates_in_place(self):
        old = self.create_related_image()
        self.config.global_set_option("haops-replace-images-on-edit", False)
        try:
            with self.logged_in():
                ok, location = self.submit_edit_form(old, image_bytes(color="blue"), "b.png", "image/png")
        finally:
            self.config.global_set_option("haops-replace-images-on-edit", True)
        self.assertTrue(ok, location)
        self.assertTrue(self.file_exists(old))
        self.assertIsNone(self.replacement_of(old))
        self.assertEqual(self.file_data(old), image_bytes(color="blue"))

    # Permissions -------------------------------------------------------------

    def test_editor_without_delete_permission_replaces(self):
        old = self.create_related_image()
        relations = self.relations_of(old)
        with self.logged_in("editor"):
            ok, location = self.submit_edit_form(old, image_bytes(color="blue"), "b.png", "image/png")
        self.assertTrue(ok, location)
        self.assertFalse(self.file_exists(old))
        self.assertEqual(self.relations_of(self.replacement_of(old)), relations)

    def post_as_visitor(self, old):
        with self.logged_in("visitor"):
            return self.post_edit(
                file_fields(old) + main_entity_fields(old),
                [(f"data-subject:{old}", "b.png", image_bytes(color="blue"))],
            )

    def test_user_without_update_permission_changes_nothing(self):
        old = self.create_related_image()
        before = self.snapshot()

        response = self.post_as_visitor(old)

        self.assertEqual(response.status_int, 403)
        self.assertNotIn("Traceback", response.text)
        self.assertEqual(self.snapshot(), before)

    def test_owner_permission_allows_owner_only(self):
        with self.admin_access.cnx() as cnx:
            self.create_user(cnx, "author", groups=("users",), password="author")
            cnx.commit()
        with self.new_access("author").cnx() as cnx:
            old = self.create_image(cnx, title="owned").eid
            cnx.commit()

        owners_may_update = {"update": ("managers", ERQLExpression("X owned_by U"))}
        with self.temporary_permissions(File=owners_may_update):
            before = self.snapshot()
            # The form offers no file field to a user who may not update the
            # File, so the denied upload is a direct post.
            with self.logged_in("editor"):
                denied = self.post_edit(
                    file_fields(old) + main_entity_fields(old),
                    [(f"data-subject:{old}", "b.png", image_bytes(color="blue"))],
                )
            after_denial = self.snapshot()
            with self.logged_in("author"):
                ok, location = self.submit_edit_form(old, image_bytes(color="blue"), "b.png", "image/png")

        self.assertEqual(denied.status_int, 403)
        self.assertEqual(after_denial, before)
        self.assertTrue(ok, location)
        self.assertIsNotNone(self.replacement_of(old))

    def test_relation_added_with_upload_moves(self):
        with self.new_access("editor").cnx() as cnx:
            old = self.create_image(cnx, title="the editor's").eid
            extra = self.create_image(cnx, title="extra", color="white").eid
            cnx.commit()
        # A relation type listed in ON_COMMIT_ADD_RELATIONS has its add
        # permission checked at commit, once the old File is gone, unless the
        # replacement checks it first.
        see_also = self.schema["see_also"].relation_definition("File", "File")
        owner_may_add = {"add": ("managers", RRQLExpression("S owned_by U"))}
        params = file_fields(old) + [
            ("__maineid", str(old)),
            ("__form_id", "edition"),
            ("__linkto", f"see_also:{extra}:subject"),
        ]
        ON_COMMIT_ADD_RELATIONS.add("see_also")
        try:
            with self.temporary_permissions((see_also, owner_may_add)):
                with self.logged_in("editor"):
                    response = self.post_edit(
                        params, [(f"data-subject:{old}", "b.png", image_bytes(color="blue"))]
                    )
        finally:
            ON_COMMIT_ADD_RELATIONS.discard("see_also")

        self.assertEqual(response.status_int, 303, response.text)
        new = self.replacement_of(old)
        self.assertIsNotNone(new)
        self.assertIn(("see_also", "subject", extra), self.relations_of(new))

    # Forms and redirects ------------------------------------------------------

    def test_direct_post_redirect_uses_new_eid(self):
        old = self.create_related_image()
        params = file_fields(old) + [
            ("__maineid", str(old)),
            ("__form_id", "edition"),
            ("__redirectpath", f"file/{old}"),
            ("__redirectparams", f"focus={old}&keep=1{old}"),
        ]
        with self.logged_in():
            response = self.post_edit(
                params, [(f"data-subject:{old}", "b.png", image_bytes(color="blue"))]
            )
        new = self.replacement_of(old)
        self.assertEqual(response.status_int, 303)
        location = response.headers["Location"]
        self.assertTrue(location.startswith(f"{BASE_URL}file/{new}?"), location)
        self.assertIn(f"focus={new}", location)
        # Only whole numbers are eids.
        self.assertIn(f"keep=1{old}", location)

    def test_default_redirect_goes_to_new_entity(self):
        old = self.create_related_image()
        params = file_fields(old) + main_entity_fields(old)
        with self.logged_in():
            response = self.post_edit(params, [(f"data-subject:{old}", "b.png", image_bytes())])
        new = self.replacement_of(old)
        self.assertEqual(response.status_int, 303)
        self.assertEqual(response.headers["Location"].split("?")[0], f"{BASE_URL}file/{new}")

    def test_form_editing_several_entities(self):
        first = self.create_related_image()
        with self.admin_access.cnx() as cnx:
            second = self.create_image(cnx, title="second", color="yellow").eid
            text = cnx.create_entity(
                "File", data=Binary(b"plain"), data_name="notes.txt", data_format="text/plain"
            ).eid
            cnx.commit()
        product = self.related["product"]
        first_relations = self.relations_of(first)

        params = [
            ("eid", str(product)),
            ("__maineid", str(product)),
            ("__form_id", "edition"),
            (f"__type:{product}", "Product"),
            (f"_cw_entity_fields:{product}", "name-subject"),
            (f"name-subject:{product}", "renamed lamp"),
        ]
        params += file_fields(first, "data-subject,title-subject")
        params.append((f"title-subject:{first}", "first, edited"))
        params += file_fields(second)
        params += file_fields(text, "data-subject", "notes.txt")
        uploads = [
            (f"data-subject:{first}", "one.png", image_bytes(color="blue")),
            (f"data-subject:{second}", "two.gif", image_bytes("gif", "blue")),
            (f"data-subject:{text}", "notes.txt", b"new notes"),
        ]
        with self.logged_in():
            response = self.post_edit(params, uploads)

        self.assertEqual(response.status_int, 303, response.text)
        self.assertEqual(response.headers["Location"].split("?")[0], f"{BASE_URL}product/{product}")
        new_first, new_second = self.replacement_of(first), self.replacement_of(second)
        self.assertIsNotNone(new_first)
        self.assertIsNotNone(new_second)
        self.assertIsNone(self.replacement_of(text))
        self.assertEqual(self.file_data(text), b"new notes")
        self.assertEqual(self.file_data(new_second), image_bytes("gif", "blue"))
        self.assertEqual(self.relations_of(new_first), first_relations)
        with self.admin_access.cnx() as cnx:
            self.assertEqual(cnx.entity_from_eid(new_first).title, "first, edited")
            lamp = cnx.entity_from_eid(product)
            self.assertEqual(lamp.name, "renamed lamp")
            self.assertEqual(lamp.main_image[0].eid, new_first)

    # Old URLs ---------------------------------------------------------------

    def replace(self, eid, color):
        with self.logged_in():
            ok, location = self.submit_edit_form(eid, image_bytes(color=color), f"{color}.png", "image/png")
        self.assertTrue(ok, location)
        return self.replacement_of(eid)

    def test_old_urls_redirect_permanently(self):
        old = self.create_related_image()
        new = self.replace(old, "blue")
        with self.admin_access.cnx() as cnx:
            replacement = cnx.entity_from_eid(new)
            raw = replacement.cw_adapt_to("IDownloadable").download_url()
            thumbnail = replacement.cw_adapt_to("IThumbnail").thumbnail_url()
        # Image URLs lead to the replacement's current, fingerprinted URL.
        self.assertTrue(raw.startswith(f"{BASE_URL}file/{new}/raw/"), raw)
        self.assertTrue(raw.endswith("/blue.png"), raw)
        self.assertTrue(thumbnail.endswith("/blue_75x75.png"), thumbnail)
        cases = {
            f"{old}": f"{BASE_URL}{new}",
            f"file/{old}": f"{BASE_URL}file/{new}",
            f"File/{old}": f"{BASE_URL}file/{new}",
            f"file/{old}/raw/picture.png": raw,
            f"file/{old}/raw/picture.png?v=2": f"{raw}?v=2",
            f"file/{old}/thumb/picture_75x75.png": thumbnail,
            f"{old}?vid=edition": f"{BASE_URL}{new}?vid=edition",
        }
        for path, expected in cases.items():
            with self.subTest(path=path):
                response = self.webapp.get(f"{BASE_URL}{path}", status="*")
                self.assertEqual(response.status_int, 301)
                self.assertEqual(response.headers["Location"], expected)
                self.assertEqual(response.headers["Cache-Control"], "private, no-cache")
        head = self.webapp.head(f"{BASE_URL}file/{old}/raw/picture.png", status="*")
        self.assertEqual(head.status_int, 301)

    def test_redirect_target_serves_new_bytes(self):
        old = self.create_related_image()
        new = self.replace(old, "blue")
        redirect = self.webapp.get(f"{BASE_URL}file/{old}/raw/picture.png", status=301)
        image = self.webapp.get(redirect.headers["Location"])
        self.assertEqual(image.body, image_bytes(color="blue"))
        self.assertEqual(self.file_data(new), image.body)

    def test_chain_redirects_to_latest(self):
        first = self.create_related_image()
        second = self.replace(first, "blue")
        third = self.replace(second, "yellow")
        for eid in (first, second):
            with self.subTest(eid=eid):
                response = self.webapp.get(f"{BASE_URL}{eid}", status="*")
                self.assertEqual(response.status_int, 301)
                self.assertEqual(response.headers["Location"], f"{BASE_URL}{third}")

    def test_deleting_replacement_deletes_records(self):
        old = self.create_related_image()
        new = self.replace(old, "blue")
        unknown = self.webapp.get(f"{BASE_URL}99999999", status="*")
        with self.admin_access.cnx() as cnx:
            cnx.execute("DELETE Caption C")
            cnx.execute("DELETE Product P")
            cnx.execute("DELETE File X WHERE X eid %(x)s", {"x": new})
            cnx.commit()
            self.assertFalse(cnx.execute("Any R WHERE R is FileReplacement"))
        after_deletion = self.webapp.get(f"{BASE_URL}{old}", status="*")
        self.assertEqual(after_deletion.status_int, unknown.status_int)

    def test_unreadable_replacement_answers_as_unknown_entity(self):
        old = self.create_related_image()
        new = self.replace(old, "blue")
        with self.temporary_permissions(File={"read": ("managers",)}):
            with self.logged_in("editor"):
                hidden = self.webapp.get(f"{BASE_URL}{new}", status="*")
                unknown_entity = self.webapp.get(f"{BASE_URL}99999999", status="*")
                for path in ("{}", "file/{}", "file/{}/raw/picture.png"):
                    with self.subTest(path=path):
                        unknown = self.webapp.get(BASE_URL + path.format(99999999), status="*")
                        response = self.webapp.get(BASE_URL + path.format(old), status="*")
                        self.assertEqual(response.status_int, unknown.status_int)
                        self.assertNotIn(str(new), response.headers.get("Location", ""))
                        # Page ids are random hex, so only a URL of the new eid counts.
                        self.assertNotRegex(response.text, rf"/(file/)?{new}(?![0-9])")
        self.assertEqual(hidden.status_int, unknown_entity.status_int)

    def test_post_to_old_url_is_not_redirected(self):
        old = self.create_related_image()
        self.replace(old, "blue")
        with self.logged_in():
            response = self.webapp.post(f"{BASE_URL}{old}", {}, status="*")
        self.assertNotEqual(response.status_int, 301)

    def test_number_too_large_for_an_eid(self):
        unknown = self.webapp.get(f"{BASE_URL}file/99999999/raw/x.png", status="*")
        response = self.webapp.get(f"{BASE_URL}file/99999999999999999999/raw/x.png", status="*")
        self.assertNotEqual(response.status_int, 500)
        self.assertEqual(response.status_int, unknown.status_int)

    # Nothing lost -------------------------------------------------------------

    def assert_failed_replacement_changes_nothing(self, old, before, title, **submit):
        with self.logged_in():
            ok, result = self.submit_edit_form(
                old, image_bytes(color="blue"), "b.png", "image/png", title=title, **submit
            )
        self.assertFalse(ok)
        self.assertNotIn("Traceback", json.dumps(result))
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.file_data(old), image_bytes("png", "red"))
        return result

    def test_validation_error_changes_nothing(self):
        old = self.create_related_image()
        before = self.snapshot()
        _eid, errors = self.assert_failed_replacement_changes_nothing(old, before, "x" * 300)
        self.assertIn("title-subject", errors)

    def test_failing_hook_changes_nothing(self):
        old = self.create_related_image()
        before = self.snapshot()
        with self.temporary_appobjects(FailingHook):
            result = self.assert_failed_replacement_changes_nothing(old, before, "fail-in-hook")
        self.assertIn("injected hook failure", result)

    def test_rejection_at_commit_changes_nothing(self):
        old = self.create_related_image()
        before = self.snapshot()
        with self.temporary_appobjects(RejectAtCommitHook):
            _eid, errors = self.assert_failed_replacement_changes_nothing(
                old, before, "fail-at-commit"
            )
        self.assertIn("injected commit-time rejection", json.dumps(errors))

    def test_database_error_changes_nothing(self):
        old = self.create_related_image()
        before = self.snapshot()

        def add_conflicting_record():
            # A record that already names the old eid makes the database
            # reject the replacement's own record, after the copy and the
            # moves. It is added once the form is loaded, since the old URLs
            # of a replaced eid redirect.
            with self.admin_access.cnx() as cnx:
                cnx.execute(
                    "INSERT FileReplacement R: R replaced_eid %(old)s, R replacement_file F"
                    " WHERE F eid %(other)s",
                    {"old": old, "other": self.related["other"]},
                )
                cnx.commit()
            before.update(self.snapshot())

        self.assert_failed_replacement_changes_nothing(
            old, before, "picture", before_submit=add_conflicting_record
        )

    def test_failure_while_moving_changes_nothing(self):
        old = self.create_related_image()
        before = self.snapshot()
        real_move = relocation.move_relations

        def move_then_fail(cnx, etype, old_eid, new_eid):
            real_move(cnx, etype, old_eid, new_eid)
            cnx.system_sql("SELECT no_such_column FROM cw_File")

        with mock.patch("cubicweb_haops.replacement.move_relations", move_then_fail):
            self.assert_failed_replacement_changes_nothing(old, before, "picture")

    def test_stale_form_gets_concurrent_edition_error(self):
        old = self.create_related_image()
        with self.logged_in():
            page = self.webapp.get(f"{BASE_URL}{old}?vid=edition")
            stale = page.forms["entityForm"]
            ok, _location = self.submit_edit_form(old, image_bytes(color="blue"), "b.png", "image/png")
            self.assertTrue(ok)
            after_first = self.snapshot()

            stale[f"data-subject:{old}"] = webtest.Upload("c.png", image_bytes(color="yellow"), "image/png")
            response = stale.submit()
        ok, (_eid, errors) = json.loads(VALIDATION_RESPONSE.search(response.text).group(1))[:2]
        self.assertFalse(ok)
        self.assertIn("has changed since you started to edit it", json.dumps(errors))
        self.assertEqual(self.snapshot(), after_first)

    # Scale --------------------------------------------------------------------

    def count_statements(self, related):
        """Return the number of SQL statements that replacing an image in *related* products runs."""
        with self.admin_access.cnx() as cnx:
            image = self.create_image(cnx)
            for number in range(related):
                cnx.create_entity("Product", name=f"p{number}", main_image=image, gallery=image)
            cnx.commit()
            old = image.eid

        source = self.repo.system_source
        statements = []
        counting = []
        real_doexec = source.doexec

        def counting_doexec(cnx, query, *args, **kwargs):
            if counting:
                statements.append(query)
            return real_doexec(cnx, query, *args, **kwargs)

        # Only the submission counts, not the rendering of the form.
        with self.logged_in():
            with mock.patch.object(source, "doexec", counting_doexec):
                ok, location = self.submit_edit_form(
                    old,
                    image_bytes(color="blue"),
                    "b.png",
                    "image/png",
                    before_submit=lambda: counting.append(True),
                )
        self.assertTrue(ok, location)
        with self.admin_access.cnx() as cnx:
            self.assertEqual(
                len(cnx.execute("Any P WHERE P main_image F, F eid %(f)s", {"f": self.replacement_of(old)})),
                related,
            )
        return len(statements)

    def test_statement_count_independent_of_related_entities(self):
        self.assertEqual(self.count_statements(10), self.count_statements(100))

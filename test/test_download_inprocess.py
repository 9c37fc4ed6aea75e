"""Image download and thumbnail responses, in-process on SQLite."""

import re
from unittest import mock

from cubicweb import Binary
from cubicweb.devtools import BASE_URL
from cubicweb_web.devtools.testlib import PyramidWebCWTC

from cubicweb_haops.fingerprint import FINGERPRINT_LENGTH
from images import image_bytes

YEAR = "max-age=31536000, immutable"
# The data column itself, not cw_data_format, cw_data_name or cw_data_hash.
DATA_COLUMN = re.compile(r"\bcw_data\b(?!_)")
VERSIONED_RAW = re.compile(rf"/file/(\d+)/raw/([0-9a-f]{{{FINGERPRINT_LENGTH}}})/([^/?\"']+)")


class ImageDownloadTC(PyramidWebCWTC):
    settings = {
        "cubicweb.includes": ["cubicweb.pyramid.auth", "cubicweb.pyramid.session"],
        "cubicweb.bwcompat": True,
    }

    def create_file(self, title="lamp", data=None, name="lamp.png", data_format="image/png"):
        with self.admin_access.cnx() as cnx:
            entity = cnx.create_entity(
                "File",
                data=Binary(image_bytes() if data is None else data),
                data_name=name,
                data_format=data_format,
                title=title,
            )
            cnx.commit()
            return entity.eid, entity.cw_adapt_to("IDownloadable").download_url()

    def session_count(self):
        with self.admin_access.cnx() as cnx:
            return cnx.execute("Any COUNT(X) WHERE X is CWSession")[0][0]

    def set_data(self, eid, data):
        with self.admin_access.cnx() as cnx:
            cnx.execute("SET X data %(d)s WHERE X eid %(x)s", {"d": Binary(data), "x": eid})
            cnx.commit()

    def current_url(self, eid):
        with self.admin_access.cnx() as cnx:
            return cnx.entity_from_eid(eid).cw_adapt_to("IDownloadable").download_url()

    # URLs -------------------------------------------------------------------

    def test_download_url_carries_fingerprint(self):
        eid, url = self.create_file()
        match = VERSIONED_RAW.search(url)
        self.assertIsNotNone(match, url)
        self.assertEqual(match.group(1), str(eid))
        self.assertEqual(match.group(3), "lamp.png")

    def test_fingerprint_follows_data_changed_by_rql(self):
        eid, url = self.create_file()
        self.set_data(eid, image_bytes(color="blue"))
        new_url = self.current_url(eid)
        self.assertNotEqual(new_url, url)
        self.set_data(eid, image_bytes())
        self.assertEqual(self.current_url(eid), url)

    def test_page_links_current_url(self):
        eid, _url = self.create_file()
        self.set_data(eid, image_bytes(color="blue"))
        page = self.webapp.get(f"{BASE_URL}file/{eid}")
        self.assertIn(self.current_url(eid), page.text)

    def test_non_image_url_unversioned(self):
        _eid, url = self.create_file(data=b"notes", name="notes.txt", data_format="text/plain")
        self.assertIsNone(VERSIONED_RAW.search(url), url)

    # Responses --------------------------------------------------------------

    def test_current_version_cached_for_a_year(self):
        eid, url = self.create_file()
        sessions = self.session_count()

        response = self.webapp.get(url)

        self.assertEqual(response.body, image_bytes())
        self.assertEqual(response.headers["Cache-Control"], f"public, {YEAR}")
        self.assertEqual(response.headers["Content-Type"], "image/png")
        self.assertEqual(int(response.headers["Content-Length"]), len(image_bytes()))
        self.assertIn('filename="lamp.png"', response.headers["Content-Disposition"])
        self.assertRegex(response.headers["ETag"], r'^"[0-9a-f]{64}"$')
        self.assertIn("Last-Modified", response.headers)
        self.assertNotIn("Set-Cookie", response.headers)
        self.assertEqual(self.session_count(), sessions)

    def test_unversioned_url_short_max_age(self):
        eid, _url = self.create_file()
        response = self.webapp.get(f"{BASE_URL}file/{eid}/raw/lamp.png")
        self.assertEqual(response.headers["Cache-Control"], "public, max-age=3600")
        self.assertEqual(response.body, image_bytes())

    def test_max_age_option(self):
        eid, _url = self.create_file()
        self.config.global_set_option("haops-image-max-age", 60)
        try:
            response = self.webapp.get(f"{BASE_URL}file/{eid}/raw/lamp.png")
        finally:
            self.config.global_set_option("haops-image-max-age", 3600)
        self.assertEqual(response.headers["Cache-Control"], "public, max-age=60")

    def test_stale_fingerprint_redirects_to_current(self):
        eid, old_url = self.create_file()
        self.set_data(eid, image_bytes(color="blue"))

        response = self.webapp.get(old_url, status="*")

        self.assertEqual(response.status_int, 302)
        self.assertEqual(response.headers["Location"], self.current_url(eid))
        self.assertEqual(response.headers["Cache-Control"], "public, max-age=3600")
        self.assertNotIn("immutable", response.headers["Cache-Control"])
        self.assertEqual(response.body, b"")

    def test_etag_changes_with_bytes_only(self):
        eid, url = self.create_file()
        first = self.webapp.get(url).headers["ETag"]
        with self.admin_access.cnx() as cnx:
            cnx.execute("SET X title 'renamed' WHERE X eid %(x)s", {"x": eid})
            cnx.commit()
        self.assertEqual(self.webapp.get(self.current_url(eid)).headers["ETag"], first)
        self.set_data(eid, image_bytes(color="blue"))
        self.assertNotEqual(self.webapp.get(self.current_url(eid)).headers["ETag"], first)

    def test_if_none_match_304_without_reading_bytes(self):
        _eid, url = self.create_file()
        etag = self.webapp.get(url).headers["ETag"]
        source = self.repo.system_source
        queries = []
        real_doexec = source.doexec

        def recording_doexec(cnx, query, *args, **kwargs):
            queries.append(str(query))
            return real_doexec(cnx, query, *args, **kwargs)

        with mock.patch.object(source, "doexec", recording_doexec):
            response = self.webapp.get(url, headers={"If-None-Match": etag}, status="*")

        self.assertEqual(response.status_int, 304)
        self.assertEqual(response.body, b"")
        self.assertNotIn("Content-Length", response.headers)
        self.assertEqual(response.headers["ETag"], etag)
        self.assertEqual(response.headers["Cache-Control"], f"public, {YEAR}")
        self.assertTrue(queries)
        self.assertFalse([query for query in queries if DATA_COLUMN.search(query)], queries)

    def test_if_modified_since_304(self):
        _eid, url = self.create_file()
        last_modified = self.webapp.get(url).headers["Last-Modified"]
        response = self.webapp.get(url, headers={"If-Modified-Since": last_modified}, status="*")
        self.assertEqual(response.status_int, 304)
        self.assertNotIn("Content-Length", response.headers)

    def test_other_etag_gets_full_image(self):
        _eid, url = self.create_file()
        response = self.webapp.get(url, headers={"If-None-Match": '"0000"'})
        self.assertEqual(response.status_int, 200)
        self.assertEqual(response.body, image_bytes())

    def test_head_headers_without_body(self):
        _eid, url = self.create_file()
        response = self.webapp.head(url)
        self.assertEqual(response.status_int, 200)
        self.assertEqual(response.body, b"")
        self.assertEqual(int(response.headers["Content-Length"]), len(image_bytes()))
        self.assertEqual(response.headers["Cache-Control"], f"public, {YEAR}")

    def test_thumbnail_cached_like_image(self):
        eid, _url = self.create_file(data=image_bytes(size=(300, 200)))
        with self.admin_access.cnx() as cnx:
            thumbnail_url = cnx.entity_from_eid(eid).cw_adapt_to("IThumbnail").thumbnail_url()
        self.assertRegex(thumbnail_url, rf"/file/{eid}/thumb/[0-9a-f]{{{FINGERPRINT_LENGTH}}}/")

        response = self.webapp.get(thumbnail_url)

        self.assertEqual(response.headers["Content-Type"], "image/png")
        self.assertEqual(response.headers["Cache-Control"], f"public, {YEAR}")
        self.assertTrue(response.headers["Content-Disposition"].startswith("inline"))
        self.assertNotIn("Set-Cookie", response.headers)
        image = self.webapp.get(self.current_url(eid))
        self.assertNotEqual(response.headers["ETag"], image.headers["ETag"])

    def test_view_download_uses_image_headers(self):
        eid, _url = self.create_file()
        sessions = self.session_count()
        urls = (
            f"{BASE_URL}view?rql=Any+X+WHERE+X+eid+{eid}&vid=download",
            f"{BASE_URL}{eid}?vid=download",
            f"{BASE_URL}file/{eid}?vid=download",
        )
        for url in urls:
            with self.subTest(url=url):
                response = self.webapp.get(url)
                self.assertEqual(response.body, image_bytes())
                self.assertEqual(response.headers["Cache-Control"], "public, max-age=3600")
                self.assertRegex(response.headers["ETag"], r'^"[0-9a-f]{64}"$')
                self.assertNotIn("Set-Cookie", response.headers)
        self.assertEqual(self.session_count(), sessions)

    def test_other_queries_keep_usual_handling(self):
        eid, _url = self.create_file()
        response = self.webapp.get(
            f"{BASE_URL}view",
            params={"rql": f"Any X WHERE X eid {eid}, X is File", "vid": "download"},
        )
        # CubicWeb's usual handling selects the image view all the same.
        self.assertEqual(response.body, image_bytes())
        self.assertEqual(response.headers["Cache-Control"], "public, max-age=3600")
        entity_page = self.webapp.get(f"{BASE_URL}{eid}")
        self.assertIn("text/html", entity_page.headers["Content-Type"])

    def test_non_image_keeps_core_download(self):
        eid, url = self.create_file(data=b"notes", name="notes.txt", data_format="text/plain")
        response = self.webapp.get(url)
        self.assertEqual(response.body, b"notes")
        self.assertEqual(response.headers["Cache-Control"], "must-revalidate,max-age=0")

    # Who may read -----------------------------------------------------------

    def test_private_image_private_for_logged_in_user(self):
        eid, url = self.create_file(title="private")
        self.webapp.login()
        response = self.webapp.get(url)
        self.assertEqual(response.body, image_bytes())
        self.assertEqual(response.headers["Cache-Control"], f"private, {YEAR}")
        self.assertNotIn("Set-Cookie", response.headers)

    def test_private_image_denied_to_anonymous(self):
        eid, url = self.create_file(title="private")
        response = self.webapp.get(url, status="*")
        # CubicWeb's usual response, not an error of the image route.
        self.assertLess(response.status_int, 500)
        self.assertNotEqual(response.body, image_bytes())
        self.assertNotIn("immutable", response.headers.get("Cache-Control", ""))
        self.assertNotIn("public", response.headers.get("Cache-Control", ""))

    def test_public_decided_by_anonymous_not_requester(self):
        _eid, url = self.create_file(title="public")
        self.webapp.login()
        response = self.webapp.get(url)
        self.assertEqual(response.headers["Cache-Control"], f"public, {YEAR}")

    def test_post_falls_through_to_cubicweb(self):
        _eid, url = self.create_file()
        self.webapp.login()
        response = self.webapp.post(url, {}, status="*")
        self.assertNotIn("immutable", response.headers.get("Cache-Control", ""))

"""Which responses become private: a table of cookies and Cache-Control values."""

import pytest
from cubicweb.devtools import BASE_URL
from cubicweb_web.devtools.testlib import PyramidWebCWTC

from cubicweb_haops.personalcache import authentication_cookies, needs_private

NAMES = ("auth_tkt", "pauth_tkt")

CASES = [
    # (request cookies, response Cache-Control, must become private)
    ({"auth_tkt": "x"}, "max-age=7200", True),
    ({"pauth_tkt": "x"}, "max-age=7200", True),
    ({"auth_tkt": "x"}, "", True),
    ({"auth_tkt": "x"}, "must-revalidate,max-age=0", True),
    ({"auth_tkt": "x"}, "public, max-age=31536000, immutable", False),
    ({"auth_tkt": "x"}, "private, max-age=3600", False),
    ({"auth_tkt": "x"}, "no-store", False),
    ({"auth_tkt": "x"}, "No-Store", False),
    # Anonymous visitors: the session and CSRF cookies are not authentication.
    ({"session": "x", "csrf_token": "y"}, "max-age=7200", False),
    ({}, "max-age=7200", False),
]


@pytest.mark.parametrize("cookies, cache_control, expected", CASES)
def test_private_decision(cookies, cache_control, expected):
    assert needs_private(NAMES, cookies, cache_control) is expected


def test_cookie_names_follow_settings():
    settings = {"cubicweb.auth.authtkt.session.cookie_name": "site_tkt"}
    assert authentication_cookies(settings) == ("site_tkt", "pauth_tkt")


class PersonalPagesTC(PyramidWebCWTC):
    settings = {
        "cubicweb.includes": ["cubicweb.pyramid.auth", "cubicweb.pyramid.session"],
        "cubicweb.bwcompat": True,
    }

    def test_logged_in_page_private(self):
        self.webapp.login()
        response = self.webapp.get(f"{BASE_URL}", status=200)
        directives = [part.strip() for part in response.headers["Cache-Control"].split(",")]
        self.assertEqual(directives[0], "private")
        self.assertEqual(directives.count("private"), 1)

    def test_anonymous_page_unchanged(self):
        response = self.webapp.get(f"{BASE_URL}", status="*")
        self.assertNotIn("private", response.headers.get("Cache-Control", ""))

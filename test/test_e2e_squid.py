"""Squid 5 on 127.0.0.1 as a reverse-proxy cache in front of a real instance
process on SQLite.

Every request goes to Squid's port, and Squid fetches from the instance what
its cache does not contain. Two logs show which requests reached the
instance: Squid's access log, whose result codes mark the responses served
from the cache (TCP_MEM_HIT and the like), and the instance's output, where
cubicweb-web prints a line for each request.
"""

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.http import raw_request
from harness.instance import Instance
from harness.squid import SQUID, Squid, squid_missing_message
from harness.visitor import Visitor
from images import image_bytes

YEAR = 365 * 24 * 3600
IMMUTABLE = f"public, max-age={YEAR}, immutable"
UNVERSIONED = "public, max-age=3600"
EDITOR = ("editor", "editor-password")
ANONYMOUS = ("anon", "anon")

# The test images: name -> (title, color, size). A File titled "private" is
# hidden from guests, the anonymous user among them, by the test schema.
IMAGES = {
    "headers": ("headers", "red", (8, 8)),
    "hit": ("hit", "green", (9, 8)),
    "changed": ("changed", "blue", (10, 8)),
    "stale": ("stale", "navy", (10, 9)),
    "replaced": ("replaced", "yellow", (11, 8)),
    "private": ("private", "purple", (12, 8)),
    "conditional": ("conditional", "orange", (13, 8)),
}

# Run in `cubicweb-ctl shell`, which provides `cnx` and `commit`. It prints
# one line starting with RESULT, after whatever the shell itself prints.
SETUP_SCRIPT = """
import json
from cubicweb import Binary

users = cnx.find("CWGroup", name="users").one()
cnx.create_entity("CWUser", login={login!r}, upassword={password!r}, in_group=users)
eids = {{}}
for name, (title, data) in {images!r}.items():
    image = cnx.create_entity(
        "File", data=Binary(data), data_name=name + ".png", data_format="image/png",
        title=title,
    )
    eids[name] = image.eid
commit()
print("RESULT", json.dumps(eids))
"""

CHANGE_DATA_SCRIPT = """
from cubicweb import Binary

cnx.execute(
    "SET X data %(d)s WHERE X eid %(x)s", {{"d": Binary({data!r}), "x": {eid}}}
)
commit()
"""


# The site ---------------------------------------------------------------------------


class InstanceBehindSquid(Instance):
    """An instance whose base URL is *public_url*, Squid's, as on a site behind
    a reverse proxy: the links and redirections that it writes point to Squid."""

    public_url = None

    def configure(self, options):
        if "base-url" in options and self.public_url:
            options = {**options, "base-url": f"{self.public_url}/"}
        super().configure(options)


@dataclass
class Site:
    """The instance, Squid in front of it and the eids of the test images."""

    instance: Instance
    squid: Squid
    eids: dict

    def image(self, name):
        """Return the eid and the original bytes of the test image *name*."""
        _title, color, size = IMAGES[name]
        return self.eids[name], image_bytes("png", color, size)


@pytest.fixture(scope="module")
def site(instance_root):
    """Start an instance with an anonymous user, an editor and the test images,
    and Squid in front of it."""
    if shutil.which(SQUID) is None:
        pytest.fail(squid_missing_message())
    instance = InstanceBehindSquid(instance_root, "squidsite", "haops,haopstest")
    squid = Squid(Path(instance_root) / "squid", instance.port)
    instance.public_url = squid.url
    # cubicweb-web prints a line for each request. Unbuffered, the line is in
    # the output file by the time the response leaves the instance.
    instance.env["PYTHONUNBUFFERED"] = "1"
    try:
        instance.create({"anonymous-user": ANONYMOUS[0], "anonymous-password": ANONYMOUS[1]})
        images = {
            name: (title, image_bytes("png", color, size))
            for name, (title, color, size) in IMAGES.items()
        }
        output = instance.shell(
            SETUP_SCRIPT.format(login=EDITOR[0], password=EDITOR[1], images=images)
        )
        instance.use_cubicweb_web_pages()
        result = next(line for line in output.splitlines() if line.startswith("RESULT "))
        instance.start()
        squid.start()
        yield Site(instance, squid, json.loads(result.removeprefix("RESULT ")))
    finally:
        squid.stop()
        instance.stop()


# HTTP through Squid -----------------------------------------------------------------


def raw_get(site, path, **headers):
    """Send a GET to Squid on a new connection and return (status, headers, bytes
    after the header block), read until Squid closes the connection."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {site.squid.site}", "Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    data = raw_request(site.squid.port, ("\r\n".join(lines) + "\r\n\r\n").encode())
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("iso-8859-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), fields, rest


# What reached the instance ----------------------------------------------------------


class Traffic:
    """The requests that Squid and the instance log after this object is created."""

    def __init__(self, site):
        self.site = site
        self.squid_mark = len(site.squid.access_log_entries())
        self.instance_mark = len(site.instance.output())

    def squid(self, path, count):
        """Return Squid's records for *path*, once there are *count* of them."""
        return self.site.squid.wait_for_entries(
            count, since=self.squid_mark, matching=lambda entry: entry.path == path
        )

    def instance(self, path):
        """Count the GET and HEAD requests for *path* in the instance's output."""
        output = self.site.instance.output()[self.instance_mark :]
        pattern = rf'"(?:GET|HEAD) {re.escape(path)} HTTP/[0-9.]+"'
        return len(re.findall(pattern, output))


def max_age(cache_control):
    match = re.search(r"(?:^|[ ,])max-age=(\d+)", cache_control or "")
    return int(match.group(1)) if match else None


def image_path(visitor, eid):
    """Return the versioned image URL that the page of File *eid* links, as a path."""
    page = visitor.get(f"/file/{eid}")
    assert page.status == 200, f"/file/{eid}: {page.status}"
    paths = set(re.findall(rf"/file/{eid}/raw/[0-9a-f]{{16}}/[^\"'<>?\s]+", page.text))
    assert len(paths) == 1, f"/file/{eid} links {sorted(paths) or 'no versioned image URL'}"
    return paths.pop()


def unversioned(path):
    """Remove the fingerprint: ``/file/<eid>/raw/<name>``."""
    return re.sub(r"/raw/[0-9a-f]{16}/", "/raw/", path)


def location_path(site, reply):
    """Return the path of a redirection's Location, checked to point to Squid."""
    location = reply.headers["Location"]
    assert location.startswith(f"{site.squid.url}/"), location
    return location.removeprefix(site.squid.url)


def change_data(site, eid, data):
    site.instance.shell(CHANGE_DATA_SCRIPT.format(eid=eid, data=data))


# Monitoring -------------------------------------------------------------------------


def test_monitoring_urls_are_never_stored(site):
    path = "/view?vid=monitor_hostname"
    traffic = Traffic(site)
    visitor = Visitor(site.squid.port)

    replies = [visitor.get(path) for _ in range(5)]

    for reply in replies:
        assert reply.status == 200
        assert reply.headers["Cache-Control"] == "no-store"
        assert reply.text.splitlines()[1] == f"instance: {site.instance.name}"
    entries = traffic.squid(path, 5)
    assert [entry.result for entry in entries] == ["TCP_MISS"] * 5
    assert [entry.origin_status for entry in entries] == [200] * 5
    # The monitoring views are routed to /view whatever their vid.
    assert traffic.instance("/view") == 5


# Public images ----------------------------------------------------------------------


def test_public_image_headers(site):
    eid, data = site.image("headers")
    visitor = Visitor(site.squid.port)
    path = image_path(visitor, eid)
    fingerprint = path.split("/")[4]

    versioned = visitor.get(path)
    plain = visitor.get(unversioned(path))

    assert path == f"/file/{eid}/raw/{fingerprint}/headers.png"
    for reply, cache_control in ((versioned, IMMUTABLE), (plain, UNVERSIONED)):
        assert reply.status == 200
        assert reply.body == data
        assert reply.headers["Cache-Control"] == cache_control
        assert reply.headers["Content-Type"] == "image/png"
        assert reply.headers["Content-Length"] == str(len(data))
        # A strong validator: no W/ prefix.
        assert reply.headers["ETag"].startswith('"'), reply.headers["ETag"]
        assert reply.headers["Last-Modified"]
        assert reply.headers.get_all("Set-Cookie") is None
    assert versioned.headers["ETag"] == plain.headers["ETag"]


def test_second_request_is_a_hit(site):
    eid, data = site.image("hit")
    path = image_path(Visitor(site.squid.port), eid)
    traffic = Traffic(site)

    for url in (path, unversioned(path)):
        # Two visitors, so that the second request carries no cookie from the first.
        first, second = Visitor(site.squid.port).get(url), Visitor(site.squid.port).get(url)

        assert first.body == second.body == data, url
        results = [entry.result for entry in traffic.squid(url, 2)]
        assert results[0] == "TCP_MISS", url
        assert results[1] in ("TCP_HIT", "TCP_MEM_HIT"), (url, results)
        assert traffic.instance(url) == 1, url


# Changed images ---------------------------------------------------------------------


def assert_stale_version_response(site, reply, new_path, new_data):
    """Check the response to a URL with an old fingerprint: a redirection to
    the current URL, or the current bytes, kept for an hour at most."""
    cache_control = reply.headers["Cache-Control"]
    assert "immutable" not in cache_control
    assert max_age(cache_control) is not None, cache_control
    assert max_age(cache_control) <= 3600, cache_control
    if reply.status == 302:
        assert location_path(site, reply) == new_path
    else:
        assert reply.status == 200, reply.status
        assert reply.body == new_data


def test_changed_data_gets_a_new_url(site):
    eid, old_data = site.image("changed")
    new_data = image_bytes("png", "white", (10, 8))
    visitor = Visitor(site.squid.port)
    old_path = image_path(visitor, eid)
    # Squid's cache now contains the old version.
    for _ in range(2):
        assert visitor.get(old_path).body == old_data

    change_data(site, eid, new_data)
    new_path = image_path(visitor, eid)
    traffic = Traffic(site)
    new_replies = [Visitor(site.squid.port).get(new_path) for _ in range(3)]
    old_reply = Visitor(site.squid.port).get(old_path)
    # A reload makes Squid ask the instance about the old URL.
    reloaded = Visitor(site.squid.port).get(old_path, **{"Cache-Control": "no-cache"})

    assert new_path != old_path
    assert unversioned(new_path) == unversioned(old_path)
    for reply in new_replies:
        assert reply.status == 200
        assert reply.body == new_data
        assert reply.headers["Cache-Control"] == IMMUTABLE
    assert traffic.instance(new_path) == 1
    # The old URL names the old bytes: Squid may go on serving them from its
    # cache, but never the new ones for a year.
    assert not (
        old_reply.body == new_data and max_age(old_reply.headers["Cache-Control"]) == YEAR
    )
    if old_reply.body != old_data:
        assert_stale_version_response(site, old_reply, new_path, new_data)
    old_entries = traffic.squid(old_path, 2)
    assert not old_entries[-1].hit, "the reload did not reach the instance"
    assert_stale_version_response(site, reloaded, new_path, new_data)


def test_stale_fingerprint_never_cached_before(site):
    eid, old_data = site.image("stale")
    new_data = image_bytes("png", "silver", (10, 9))
    old_path = image_path(Visitor(site.squid.port), eid)

    change_data(site, eid, new_data)
    new_path = image_path(Visitor(site.squid.port), eid)
    traffic = Traffic(site)
    old_replies = [Visitor(site.squid.port).get(old_path) for _ in range(2)]
    new_reply = Visitor(site.squid.port).get(new_path)
    plain_reply = Visitor(site.squid.port).get(unversioned(old_path))

    for reply in old_replies:
        assert reply.body != old_data
        assert_stale_version_response(site, reply, new_path, new_data)
    assert new_reply.body == new_data
    assert new_reply.headers["Cache-Control"] == IMMUTABLE
    assert plain_reply.body == new_data
    assert plain_reply.headers["Cache-Control"] == UNVERSIONED


def test_replacement_through_edit_form(site):
    old, old_data = site.image("replaced")
    new_data = image_bytes("png", "black", (11, 9))
    editor = Visitor(site.squid.port)
    editor.log_in(*EDITOR)
    old_path = image_path(editor, old)
    # An anonymous visit puts the old version in Squid's cache.
    assert Visitor(site.squid.port).get(old_path).body == old_data

    submitted = editor.upload(old, new_data, "new.png")

    assert submitted.status in (200, 303), f"{submitted.status} {submitted.text[:500]}"
    new = site.instance.sql(
        "SELECT cw_replacement_file FROM cw_FileReplacement WHERE cw_replaced_eid = ?", (old,)
    )
    assert new, f"File {old} was not replaced"
    new = new[0][0]
    new_path = image_path(Visitor(site.squid.port), new)
    traffic = Traffic(site)
    old_page = Visitor(site.squid.port).get(f"/file/{old}")
    new_replies = [Visitor(site.squid.port).get(new_path) for _ in range(2)]
    old_plain = Visitor(site.squid.port).get(unversioned(old_path))
    reloaded = Visitor(site.squid.port).get(old_path, **{"Cache-Control": "no-cache"})
    cached = Visitor(site.squid.port).get(old_path)

    assert old_page.status == 301
    assert location_path(site, old_page) == f"/file/{new}"
    for reply in new_replies:
        assert reply.status == 200
        assert reply.body == new_data
        assert reply.headers["Cache-Control"] == IMMUTABLE
    for reply in (old_plain, reloaded):
        assert reply.status == 301, reply.status
        assert location_path(site, reply).startswith(f"/file/{new}/raw/")
        assert old_data not in reply.body
        followed = Visitor(site.squid.port).get(location_path(site, reply))
        assert followed.status == 200
        assert followed.body == new_data
    # What Squid stored before the replacement stays under the old URL. The
    # instance responds to a reload of that URL with a redirection.
    if cached.body == old_data:
        assert traffic.squid(old_path, 2)[-1].hit
    else:
        assert cached.status == 301


# Private images ---------------------------------------------------------------------


def test_private_image_is_not_shared(site):
    eid, data = site.image("private")
    editor = Visitor(site.squid.port)
    editor.log_in(*EDITOR)
    path = image_path(editor, eid)
    traffic = Traffic(site)

    for url in (path, unversioned(path)):
        private = editor.get(url)
        anonymous = Visitor(site.squid.port).get(url)

        assert private.status == 200, url
        assert private.body == data, url
        assert private.headers["Cache-Control"].split(",")[0] == "private", url
        # The instance's default cookie session would re-send its cookie.
        assert "Set-Cookie" not in private.headers, url
        # CubicWeb's usual response to a visitor who may not read the File:
        # a page without the image (the status depends on the URL).
        assert data not in anonymous.body, url
        assert not anonymous.headers.get("Content-Type", "").startswith("image/"), url
        assert "public" not in anonymous.headers.get("Cache-Control", ""), url
        entries = traffic.squid(url, 2)
        assert not any(entry.hit for entry in entries), (url, entries)
        assert traffic.instance(url) == 2, url


# Conditional requests ---------------------------------------------------------------


def test_conditional_requests(site):
    eid, data = site.image("conditional")
    path = image_path(Visitor(site.squid.port), eid)
    traffic = Traffic(site)
    # Squid does not store the response to a HEAD request.
    etag = Visitor(site.squid.port).request("HEAD", path).headers["ETag"]

    # The browser has the image in its cache and Squid does not: the
    # instance's 304 goes to the client and must not become what Squid serves.
    forwarded = raw_get(site, path, If_None_Match=etag)
    full = Visitor(site.squid.port).get(path)
    # Now Squid's cache contains the image, so Squid evaluates the condition itself.
    answered = raw_get(site, path, If_None_Match=etag)
    again = Visitor(site.squid.port).get(path)

    for status, _headers, rest in (forwarded, answered):
        assert status == 304
        assert rest == b"", f"{len(rest)} bytes after a 304"
    # The instance's 304 carries the ETag of the client's copy. Squid 5.7
    # leaves the ETag out of the 304s that it generates itself.
    assert forwarded[1]["ETag"] == etag
    for reply in (full, again):
        assert reply.status == 200
        assert reply.body == data
        assert reply.headers["Content-Length"] == str(len(data))
    results = [entry.result for entry in traffic.squid(path, 5)]
    # HEAD, the forwarded condition and the first full GET all reach the instance.
    assert results[:3] == ["TCP_MISS"] * 3, results
    assert "HIT" in results[3], results
    assert results[4] in ("TCP_HIT", "TCP_MEM_HIT"), results

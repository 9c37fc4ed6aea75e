"""A visitor of a site on 127.0.0.1 that keeps its cookies, as a browser does.

The port may change between requests: cookies go with the host, not the
port, so a visitor moves from one Squid port to another with its session.
"""

import http.client
import urllib.parse
import uuid
from dataclasses import dataclass

from .forms import file_fields, main_entity_fields

HTTP_TIMEOUT = 30


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")


class Visitor:
    """A visitor who talks to 127.0.0.1:*port* and keeps its own cookies.

    Redirections are returned, never followed.
    """

    def __init__(self, port):
        self.port = port
        self.cookies = {}

    def request(self, method, path, headers=None, body=None):
        headers = dict(headers or {})
        if self.cookies:
            pairs = (f"{name}={value}" for name, value in self.cookies.items())
            headers["Cookie"] = "; ".join(pairs)
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            reply = Reply(response.status, response.headers, response.read())
        finally:
            connection.close()
        for cookie in reply.headers.get_all("Set-Cookie") or ():
            pair, _, attributes = cookie.partition(";")
            name, _, value = pair.strip().partition("=")
            if value and "max-age=0" not in attributes.lower().replace(" ", ""):
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return reply

    def get(self, path, **headers):
        return self.request("GET", path, headers)

    def post_form(self, path, fields):
        """Post *fields* (name, value pairs) urlencoded, with the CSRF token CubicWeb expects."""
        fields = [*fields, ("csrf_token", self.cookies["csrf_token"])]
        return self.request(
            "POST",
            path,
            {"Content-Type": "application/x-www-form-urlencoded"},
            urllib.parse.urlencode(fields),
        )

    def log_in(self, login, password):
        self.get("/login")
        # CubicWeb checks a CSRF token on every POST, login included: the value
        # of its csrf_token cookie, sent back as a form field.
        reply = self.post_form("/login", [("__login", login), ("__password", password)])
        assert reply.status == 303, f"login of {login} failed: {reply.status} {reply.text[:300]}"

    def upload(self, eid, data, name):
        """Post new data for File *eid* to /edit, as the edit form does."""
        fields = file_fields(eid, name=name) + main_entity_fields(eid)
        fields.append(("csrf_token", self.cookies["csrf_token"]))
        boundary = uuid.uuid4().hex
        parts = []
        for field, value in fields:
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n'
                f"{value}\r\n".encode()
            )
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="data-subject:{eid}"; '
            f'filename="{name}"\r\nContent-Type: image/png\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
        parts.append(f"--{boundary}--\r\n".encode())
        return self.request(
            "POST",
            "/edit",
            {"Content-Type": f"multipart/form-data; boundary={boundary}"},
            b"".join(parts),
        )

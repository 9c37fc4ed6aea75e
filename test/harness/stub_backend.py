"""Stub HTTP servers on 127.0.0.1 that stand in for CubicWeb processes behind proxies.

Each stub puts its own name in its responses, so a test can tell which
process a proxy reached, and records the headers of every request it received.
"""

import http.server
import json
import threading
import time
import urllib.parse
from email.utils import formatdate

from .network import free_port

STOP_TIMEOUT = 10
# Large enough that mod_deflate compresses it.
TEXT_REPEAT = 200
TEXT_TYPES = {
    "html": "text/html; charset=utf-8",
    "plain": "text/plain; charset=utf-8",
    "css": "text/css",
    "js": "application/javascript",
    "json": "application/json",
}


class StubBackend:
    """A threaded HTTP/1.0 server on 127.0.0.1 named *name*.

    It closes every connection after its response, so that once stopped no
    pooled proxy connection can still reach it. Paths:

    - ``/view?vid=monitor_hostname``: the name, as text, never stored;
    - ``/view?vid=monitor``: a JSON summary, 200 while ``healthy`` else 503;
    - ``/cached``: the name and a request count, ``public, max-age=60``;
    - ``/heuristic``: the same without Cache-Control, with a Last-Modified an
      hour old, which a cache may keep only by heuristic;
    - ``/text/<html|plain|css|js|json>``: a repeated text of that type;
    - anything else: a JSON description of the request, never stored.
    """

    def __init__(self, name):
        self.name = name
        self.port = free_port()
        self.healthy = True
        self.requests = []
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    def start(self):
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(STOP_TIMEOUT)
        self._server = None

    @property
    def running(self):
        return self._server is not None

    def record(self, path, headers):
        with self._lock:
            self.requests.append((path, headers))

    def requests_for(self, path):
        """Return the headers of the requests received for *path*, query string included."""
        with self._lock:
            return [headers for request_path, headers in self.requests if request_path == path]

    def text_body(self, kind):
        return f"<p>{self.name} answers with {kind}</p>\n" * TEXT_REPEAT


def _handler_for(backend):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self):
            backend.record(self.path, dict(self.headers.items()))
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            vid = query.get("vid", [""])[0]
            if url.path == "/view" and vid == "monitor_hostname":
                self.reply(200, "text/plain; charset=utf-8", f"{backend.name}\n", "no-store")
            elif url.path == "/view" and vid == "monitor":
                state = "OK" if backend.healthy else "KO"
                body = json.dumps({"state": state, "process": backend.name})
                self.reply(200 if backend.healthy else 503, "application/json", body, "no-store")
            elif url.path == "/cached" or url.path.startswith("/file/"):
                count = len(backend.requests_for(self.path))
                self.reply(200, "text/plain", f"{backend.name} {count}\n", "public, max-age=60")
            elif url.path == "/heuristic":
                count = len(backend.requests_for(self.path))
                self.reply(
                    200,
                    "text/plain",
                    f"{backend.name} {count}\n",
                    None,
                    {"Last-Modified": formatdate(time.time() - 3600, usegmt=True)},
                )
            elif url.path.startswith("/text/") and url.path[6:] in TEXT_TYPES:
                kind = url.path[6:]
                self.reply(200, TEXT_TYPES[kind], backend.text_body(kind), "no-store")
            else:
                body = json.dumps(
                    {
                        "backend": backend.name,
                        "path": self.path,
                        "host": self.headers.get("Host"),
                        "x_forwarded_for": self.headers.get("X-Forwarded-For"),
                    }
                )
                self.reply(200, "application/json", body, "no-store")

        def reply(self, status, content_type, body, cache_control, extra_headers=None):
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if cache_control:
                self.send_header("Cache-Control", cache_control)
            for name, value in (extra_headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):
            pass

    return Handler

"""HTTP clients of the end-to-end tests: urllib, raw sockets, curl and check_http."""

import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

CHECK_HTTP = "/usr/lib/nagios/plugins/check_http"


@dataclass
class Reply:
    status: int
    headers: dict
    text: str
    seconds: float


def fetch(url, method="GET", headers=None, timeout=30):
    """Send one request and return the reply, whatever its status."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw_headers, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, raw_headers, body = error.code, error.headers, error.read()
    seconds = time.monotonic() - started
    return Reply(status, dict(raw_headers.items()), body.decode("utf-8"), seconds)


def raw_request(port, data, timeout=10):
    """Send *data* bytes on a new connection and return all the bytes received."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def curl(*args):
    """Run curl with *args*; return its output, headers included with -i."""
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "20", *args],
        capture_output=True,
        timeout=30,
    )
    if result.returncode != 0:
        raise RuntimeError(f"curl {' '.join(args)} failed: {result.stderr.decode()}")
    # Decoded by hand: text mode would turn the CRLF line ends into LF.
    return result.stdout.decode("utf-8")


def check_http(*args):
    """Run Debian's check_http; return its exit code and output."""
    result = subprocess.run(
        [CHECK_HTTP, "-t", "20", *args], capture_output=True, text=True, timeout=30
    )
    return result.returncode, result.stdout.strip()


def perfdata(text):
    """Return the first line's perfdata as ``{label: value}``."""
    first_line = text.partition("\n")[0]
    _, _, data = first_line.partition(" | ")
    return {
        label: float(value)
        for label, value in re.findall(r"'([^']+)'=([-0-9.]+)", data)
    }

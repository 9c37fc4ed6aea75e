"""Loopback ports and HTTP polling for the test harness."""

import socket
import time
import urllib.error
import urllib.request


def free_port():
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url, timeout, process=None):
    """Poll *url* until it responds, *process* exits or *timeout* seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not respond within {timeout} s")


def free_port_range(count, first=20000, last=60000):
    """Return the first of *count* consecutive free ports on 127.0.0.1 in [first, last]."""
    for start in range(first, last - count, count):
        if all(_is_free(port) for port in range(start, start + count)):
            return start
    raise RuntimeError(f"no {count} consecutive free ports between {first} and {last}")


def _is_free(port):
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True

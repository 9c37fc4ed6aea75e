"""Identity of the host, instance and process that served a request."""

import os
import socket


def host_name():
    """Return this machine's host name, printable whatever its bytes.

    No name resolution is done, so an unresolvable name costs nothing.
    """
    try:
        name = socket.gethostname()
    except OSError:
        return "unknown-host"
    # gethostname() decodes undecodable bytes as surrogates, which UTF-8
    # cannot encode: show them as escapes instead.
    return name.encode("utf-8", "backslashreplace").decode("utf-8") or "unknown-host"


def describe_process(appid):
    """Return the lines of monitor_hostname: host name, then instance and pid."""
    return [host_name(), f"instance: {appid}", f"pid: {os.getpid()}"]

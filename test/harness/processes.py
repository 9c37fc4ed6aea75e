"""Servers that the harness runs in their own process group."""

import os
import signal
import socket
import subprocess
import time


def stop_process_group(process, timeout):
    """Stop the process group of *process*: SIGTERM, then SIGKILL after *timeout* seconds."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def wait_for_port(process, port, timeout, logs):
    """Wait until a server listens on 127.0.0.1:*port*.

    Raise RuntimeError if *process* exits first and TimeoutError after
    *timeout* seconds, both with the text that *logs()* returns.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{process.args[0]} exited with status {process.returncode}:\n{logs()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(
        f"{process.args[0]} did not listen on port {port} within {timeout} s:\n{logs()}"
    )

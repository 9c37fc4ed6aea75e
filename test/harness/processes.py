"""Servers that the harness runs in their own process group."""

import os
import signal
import subprocess


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

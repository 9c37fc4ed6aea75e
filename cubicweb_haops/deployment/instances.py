"""The per-process copies of an instance, as ``haops-split`` records them.

A copy of instance ``site`` is the instance ``site-<index>`` (index from 1),
whose configuration directory contains a marker file naming its template. The
marker is what tells a copy from an unrelated instance that happens to be
named ``site-2``.
"""

import configparser
import json
import os
from dataclasses import dataclass

from cubicweb.cwconfig import CubicWebConfiguration

MARKER = "haops-split.json"
MAIN_CONFIG = "all-in-one.conf"
# The port that CubicWeb's own start command uses when the option is unset.
DEFAULT_PORT = 8080


@dataclass(frozen=True)
class ProcessCopy:
    """One copy: its instance name, index (from 1), HTTP port and directory."""

    name: str
    index: int
    port: int
    apphome: str


def copy_name(template, index):
    return f"{template}-{index}"


def read_port(apphome):
    """Return the ``port`` option of the instance in *apphome*, or None if unset."""
    parser = configparser.RawConfigParser(strict=False)
    parser.read(os.path.join(apphome, MAIN_CONFIG))
    for section in parser.sections():
        value = parser.get(section, "port", fallback="").strip()
        if value:
            return int(value)
    return None


def read_marker(apphome):
    """Return the marker of the copy in *apphome* as a dict, or None if there is none."""
    path = os.path.join(apphome, MARKER)
    try:
        with open(path) as marker:
            return json.load(marker)
    except FileNotFoundError:
        return None


def find_copies(template):
    """Return the copies of instance *template*, by index."""
    instances_dir = CubicWebConfiguration.instances_dir()
    copies = []
    prefix = f"{template}-"
    for name in sorted(os.listdir(instances_dir)):
        if not name.startswith(prefix) or not name[len(prefix):].isdigit():
            continue
        apphome = os.path.join(instances_dir, name)
        marker = read_marker(apphome)
        if marker is None or marker.get("template") != template:
            continue
        copies.append(ProcessCopy(name, int(name[len(prefix):]), read_port(apphome), apphome))
    return sorted(copies, key=lambda copy: copy.index)

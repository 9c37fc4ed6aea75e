"""Snapshots of a configuration directory, and the writes that copy one.

A snapshot maps each path, relative to the directory and with ``/`` as
separator, to an ``Entry``. Directories end with ``/`` so that they sort
before their content.
"""

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass

# Files that processes write into an instance's directory while they run:
# pyramid's reloader lists the files it watches in the first, and Python
# caches the bytecode of urlmapping.py and other modules of the directory
# in the second.
RUNTIME_LEFTOVERS = frozenset({".pyramid-reload-files.list", "__pycache__"})


class TreeError(Exception):
    """A configuration directory that cannot be copied as it is."""


FILE = "file"
DIRECTORY = "directory"
# A socket, a device, or a symbolic link to a directory or to nothing.
OTHER = "other"


@dataclass(frozen=True)
class Entry:
    """One path of a snapshot: its kind, content (files only), mode and owner."""

    kind: str
    content: bytes
    mode: int
    uid: int
    gid: int


def owners_matter():
    """Tell whether copies take the owner of the template's files: only root may set it."""
    return os.geteuid() == 0


def read_tree(top, strict=True):
    """Return the snapshot of the directory *top*, runtime leftovers excluded.

    Symbolic links to files count as the files they point to. With *strict*,
    any other entry that is not a regular file or a directory raises
    TreeError; without it, such an entry is of kind OTHER.
    """
    snapshot = {}
    _read_directory(top, "", snapshot, strict)
    return snapshot


def _read_directory(top, relative, snapshot, strict):
    with os.scandir(os.path.join(top, relative)) as entries:
        for entry in entries:
            if entry.name in RUNTIME_LEFTOVERS:
                continue
            path = relative + entry.name
            if entry.is_dir(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                snapshot[path + "/"] = Entry(
                    DIRECTORY, b"", stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid
                )
                _read_directory(top, path + "/", snapshot, strict)
            elif entry.is_file():
                info = entry.stat()
                with open(entry.path, "rb") as source:
                    content = source.read()
                snapshot[path] = Entry(
                    FILE, content, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid
                )
            elif strict:
                raise TreeError(
                    f"{entry.path} is neither a regular file nor a directory:"
                    f" move it out of {top}, which is copied file by file"
                )
            else:
                info = entry.stat(follow_symlinks=False)
                snapshot[path] = Entry(OTHER, b"", 0, info.st_uid, info.st_gid)


def entry_differences(current, expected):
    """Return what differs between two entries at one path: content, mode, owner."""
    differences = []
    if current.kind != expected.kind:
        return [f"{current.kind} -> {expected.kind}"]
    if current.content != expected.content:
        differences.append("content")
    if current.mode != expected.mode:
        differences.append(f"mode {current.mode:04o} -> {expected.mode:04o}")
    if owners_matter() and (current.uid, current.gid) != (expected.uid, expected.gid):
        differences.append(f"owner {current.uid}:{current.gid} -> {expected.uid}:{expected.gid}")
    return differences


def _set_owner(path, entry):
    if owners_matter():
        os.chown(path, entry.uid, entry.gid, follow_symlinks=False)


def make_directory(path, entry):
    os.mkdir(path)
    os.chmod(path, entry.mode)
    _set_owner(path, entry)


def update_directory(path, entry):
    """Give the existing directory *path* the mode and owner of *entry*."""
    os.chmod(path, entry.mode)
    _set_owner(path, entry)


def write_file(path, entry):
    """Write *entry* at *path* through a temporary file in the same directory.

    The temporary file is private (mode 0600) until it has its content, mode
    and owner, so a secret is never readable by others. The rename replaces
    *path* at once, so a reader sees either the old file or the new one.
    """
    directory, name = os.path.split(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as target:
            target.write(entry.content)
            target.flush()
            os.fsync(target.fileno())
        os.chmod(temporary, entry.mode)
        _set_owner(temporary, entry)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def remove_entry(path):
    """Remove the file or the directory tree at *path*."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)

"""Plan, compare and write the per-process copies of an instance.

``plan_split`` checks the request and reads the template and its existing
copies without writing anything. ``apply_split`` then writes what the plan
lists. Neither opens the database, which the copies share with the template
through its ``sources`` file.
"""

import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field, replace

from cubicweb.cwconfig import CubicWebConfiguration

from cubicweb_haops.deployment import config_text, tree
from cubicweb_haops.deployment.instances import (
    DEFAULT_PORT,
    MAIN_CONFIG,
    MARKER,
    ProcessCopy,
    copy_name,
    find_copies,
    read_marker,
    read_port,
)

MAX_PORT = 65535
PYRAMID_CONFIG = "pyramid.ini"
MARKER_MODE = 0o644
# Options that name one process's files: two copies must never share them.
PER_PROCESS_PATHS = ("pid-file", "log-file")

CREATED = "created"
UPDATED = "updated"
REMOVED = "removed"


class SplitError(Exception):
    """A request that haops-split rejects before writing anything."""


@dataclass(frozen=True)
class FileChange:
    """A change to one path of a copy, with *details* naming what differs in an update."""

    path: str
    action: str
    details: tuple = ()


@dataclass
class CopyPlan:
    """The expected state of one copy and the changes that lead to it from its current state."""

    copy: ProcessCopy
    is_new: bool
    expected: dict
    changes: list = field(default_factory=list)
    unchanged: int = 0


@dataclass
class SplitPlan:
    """The copies to create or update, and the copies of an earlier run beyond the count."""

    template: str
    # The mode and owner that a new copy's directory takes from the template's.
    home_entry: tree.Entry
    copies: list
    extras: list


def default_processes():
    """Return the number of CPUs that this process may run on."""
    return len(os.sched_getaffinity(0))


def plan_split(template, processes=None, base_port=None):
    """Return the plan that brings copies 1 to *processes* of *template* in line with it.

    Once copies exist, *processes* and *base_port* default to what they are,
    so that a plain second run never moves a port under Squid's feet. For a
    first run they default to the CPUs available and the template's port
    plus one. Raises SplitError for a request that must not be written.
    """
    instances_dir = CubicWebConfiguration.instances_dir()
    template_home = _template_home(instances_dir, template)
    existing = _find_copies(template)

    if processes is None:
        processes = max((copy.index for copy in existing), default=0) or default_processes()
    if processes < 1:
        raise SplitError(f"--processes {processes} is below 1: give 1 or more")
    first = next((copy for copy in existing if copy.index == 1), None)
    if base_port is None and first is not None and first.port is not None:
        base_port = first.port
    ports = _copy_ports(template, template_home, processes, base_port)

    snapshot = _read_template(template, template_home)
    config = _decode_config(template_home, snapshot[MAIN_CONFIG].content)
    homes = [_check_copy_home(instances_dir, template, index) for index in range(1, processes + 1)]
    _check_ports_free(instances_dir, template, ports)

    home_entry = _directory_entry(template_home)
    copies = []
    for index, (home, port) in enumerate(zip(homes, ports), start=1):
        copy = ProcessCopy(copy_name(template, index), index, port, home)
        expected = _expected_snapshot(template, home_entry, snapshot, config, copy)
        copies.append(_compare(copy, expected))

    extras = [copy for copy in existing if copy.index > processes]
    return SplitPlan(template, home_entry, copies, extras)


def _find_copies(template):
    try:
        return find_copies(template)
    except ValueError as error:
        raise SplitError(
            f"a copy of {template} has an invalid {MARKER} or port ({error}):"
            f" fix or delete the copies of {template} beyond --processes"
        ) from error


def _directory_entry(path):
    info = os.stat(path)
    return tree.Entry(tree.DIRECTORY, b"", stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)


def _read_snapshot(home, strict):
    try:
        return tree.read_tree(home, strict)
    except tree.TreeError as error:
        raise SplitError(str(error)) from error
    except OSError as error:
        raise SplitError(
            f"cannot read {error.filename or home} ({error.strerror}): fix its permissions"
        ) from error


def _template_home(instances_dir, template):
    home = os.path.join(instances_dir, template)
    if template in ("", ".", "..") or os.sep in template or not os.path.isdir(home):
        raise SplitError(
            f"no such instance {template!r} in {instances_dir}:"
            " check its name with `cubicweb-ctl list`"
        )
    if os.path.lexists(os.path.join(home, MARKER)):
        marker = _load_marker(home)
        origin = marker.get("template") if isinstance(marker, dict) else None
        raise SplitError(
            f"instance {template} is a copy made by haops-split ({MARKER} names"
            f" template {origin!r}): run haops-split on its template instead"
        )
    return home


def _load_marker(home):
    try:
        return read_marker(home)
    except (OSError, ValueError) as error:
        raise SplitError(
            f"{os.path.join(home, MARKER)} is unreadable or invalid ({error}):"
            " fix it or move the instance away"
        ) from error


def _read_port(name, home):
    try:
        port = read_port(home)
    except (ValueError, OSError) as error:
        raise SplitError(
            f"instance {name} has an invalid port in {os.path.join(home, MAIN_CONFIG)}"
            f" ({error}): set port= to a number from 1 to {MAX_PORT}"
        ) from error
    return DEFAULT_PORT if port is None else port


def _copy_ports(template, template_home, processes, base_port):
    if base_port is None:
        base_port = _read_port(template, template_home) + 1
        origin = f"base port {base_port} ({template}'s port + 1)"
    else:
        origin = f"--base-port {base_port}"

    if not 1 <= base_port <= MAX_PORT:
        raise SplitError(f"{origin} is outside 1..{MAX_PORT}: give --base-port in that range")
    last_port = base_port + processes - 1
    if last_port > MAX_PORT:
        raise SplitError(
            f"{origin} with {processes} processes ends at port {last_port}, above {MAX_PORT}:"
            " give a lower --base-port or fewer --processes"
        )
    return list(range(base_port, last_port + 1))


def _read_template(template, template_home):
    snapshot = _read_snapshot(template_home, strict=True)
    missing = tree.Entry(tree.OTHER, b"", 0, 0, 0)

    if snapshot.get(MAIN_CONFIG, missing).kind != tree.FILE:
        raise SplitError(
            f"{os.path.join(template_home, MAIN_CONFIG)} is missing: instance {template}"
            " has no configuration to copy"
        )
    # Without it, each copy would write its own at its first start, with
    # its own secrets, and a cookie from one copy would be invalid in the others.
    if snapshot.get(PYRAMID_CONFIG, missing).kind != tree.FILE:
        raise SplitError(
            f"{os.path.join(template_home, PYRAMID_CONFIG)} is missing: run"
            f" `cubicweb-ctl start {template}` once, which writes it, then haops-split"
        )
    return snapshot


def _decode_config(template_home, content):
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SplitError(
            f"{os.path.join(template_home, MAIN_CONFIG)} is not valid UTF-8 ({error}):"
            " convert it to UTF-8"
        ) from error


def _check_copy_home(instances_dir, template, index):
    name = copy_name(template, index)
    home = os.path.join(instances_dir, name)
    if not os.path.lexists(home):
        return home

    advice = f"rename or delete instance {name}, or give --processes {index - 1} or fewer"
    if index == 1:
        advice = f"rename or delete instance {name}"
    if not os.path.isdir(home):
        raise SplitError(f"{home} exists and is not a directory: {advice}")
    marker = _load_marker(home)
    if not isinstance(marker, dict):
        raise SplitError(
            f"instance {name} exists and is not a copy of {template} (it has no {MARKER}): {advice}"
        )
    if marker.get("template") != template:
        raise SplitError(
            f"instance {name} is a copy of {marker.get('template')!r}, not of {template}: {advice}"
        )
    return home


def _check_ports_free(instances_dir, template, ports):
    """Raise SplitError if another instance is configured for one of *ports*.

    The template counts as another instance; its own copies do not, since
    this run reconfigures or reports them.
    """
    requested = set(ports)
    conflicts = []
    for name in sorted(os.listdir(instances_dir)):
        home = os.path.join(instances_dir, name)
        if not os.path.isfile(os.path.join(home, MAIN_CONFIG)):
            continue
        if _is_copy_of(name, home, template):
            continue
        port = _read_port(name, home)
        if port in requested:
            conflicts.append(f"port {port} is configured for instance {name}")

    if conflicts:
        raise SplitError(
            f"{', '.join(conflicts)}: give a --base-port such that ports"
            f" {ports[0]} to {ports[-1]} are free, or fewer --processes"
        )


def _is_copy_of(name, home, template):
    if not re.fullmatch(rf"{re.escape(template)}-\d+", name):
        return False
    try:
        marker = read_marker(home)
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("template") == template


def copy_path(value, template, copy):
    """Return the per-process path of *copy* for the template's path *value*.

    The template's name, where the file name contains it as a word, becomes
    the copy's name. Otherwise ``-<index>`` goes before the extension. The
    directory stays, since it exists already.
    """
    directory, filename = os.path.split(value)
    name = re.compile(rf"(?<![A-Za-z0-9]){re.escape(template)}(?![A-Za-z0-9])")
    if name.search(filename):
        filename = name.sub(lambda _match: copy.name, filename)
    else:
        stem, extension = os.path.splitext(filename)
        filename = f"{stem}-{copy.index}{extension}"
    return os.path.join(directory, filename)


def copy_config(text, template, copy):
    """Return the template's all-in-one.conf *text* as *copy* needs it."""
    text = config_text.set_option(text, "port", str(copy.port))
    for option in PER_PROCESS_PATHS:
        value = config_text.option_value(text, option)
        if value:
            text = config_text.set_option(text, option, copy_path(value, template, copy))
    return text


def marker_content(template, index):
    return (json.dumps({"template": template, "index": index}, indent=2) + "\n").encode("utf-8")


def _expected_snapshot(template, home_entry, snapshot, config, copy):
    expected = dict(snapshot)
    expected[MAIN_CONFIG] = replace(
        snapshot[MAIN_CONFIG], content=copy_config(config, template, copy).encode("utf-8")
    )
    expected[MARKER] = replace(
        home_entry, kind=tree.FILE, content=marker_content(template, copy.index), mode=MARKER_MODE
    )
    return expected


def _compare(copy, expected):
    if not os.path.lexists(copy.apphome):
        changes = [FileChange(path, CREATED) for path in sorted(expected)]
        return CopyPlan(copy, True, expected, changes)

    current = _read_snapshot(copy.apphome, strict=False)
    plan = CopyPlan(copy, False, expected)
    for path in sorted(expected):
        if path not in current:
            plan.changes.append(FileChange(path, CREATED))
            continue
        differences = tree.entry_differences(current[path], expected[path])
        if not differences:
            plan.unchanged += 1
            continue
        if path == MAIN_CONFIG and "content" in differences:
            differences[differences.index("content")] = _config_differences(
                current[path].content, expected[path].content
            )
        plan.changes.append(FileChange(path, UPDATED, tuple(differences)))

    for path in sorted(set(current) - set(expected)):
        plan.changes.append(FileChange(path, REMOVED))
    return plan


def _config_differences(current, expected):
    names = config_text.changed_options(
        current.decode("utf-8", "replace"), expected.decode("utf-8", "replace")
    )
    if names is None:
        return "content"
    if not names:
        return "comments or layout"
    return f"options {', '.join(names)}"


def apply_split(plan):
    """Write the copies as *plan* lists them, each file through a rename."""
    for copy_plan in plan.copies:
        if copy_plan.is_new:
            _create_copy(copy_plan, plan.home_entry)
        else:
            _update_copy(copy_plan)


def _create_copy(copy_plan, home_entry):
    """Build the new copy in a hidden directory, then rename it into place at once."""
    home = copy_plan.copy.apphome
    building = tempfile.mkdtemp(prefix=f".{copy_plan.copy.name}.", dir=os.path.dirname(home))
    try:
        for path in sorted(copy_plan.expected):
            _write_entry(os.path.join(building, path), copy_plan.expected[path])
        tree.update_directory(building, home_entry)
        os.rename(building, home)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise


def _update_copy(copy_plan):
    home = copy_plan.copy.apphome
    removals = [change for change in copy_plan.changes if change.action == REMOVED]
    # Children before their directory, and before anything is written in
    # their place: a file the template replaced by a directory, or the reverse.
    for change in reversed(removals):
        path = os.path.join(home, change.path)
        if os.path.lexists(path.rstrip("/")):
            tree.remove_entry(path.rstrip("/"))

    for change in copy_plan.changes:
        if change.action == REMOVED:
            continue
        entry = copy_plan.expected[change.path]
        path = os.path.join(home, change.path)
        if entry.kind == tree.DIRECTORY and os.path.isdir(path):
            tree.update_directory(path, entry)
        else:
            _write_entry(path, entry)


def _write_entry(path, entry):
    if entry.kind == tree.DIRECTORY:
        tree.make_directory(path.rstrip("/"), entry)
    else:
        tree.write_file(path, entry)

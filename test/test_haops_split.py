"""``cubicweb-ctl haops-split`` run as operators run it, on instances in a private root.

The instances are created without their database unless a test serves one:
its SQLite file must still be missing after every run, which shows that the
command never connects to the database.
"""

import json
import os
import shutil
import stat
import tempfile
import urllib.request
from pathlib import Path

import pytest

from harness.instance import Instance
from harness.network import free_port
from cubicweb_haops.deployment.config_text import changed_options, option_value, set_option
from cubicweb_haops.deployment.instances import (
    DEFAULT_PORT,
    MARKER,
    ProcessCopy,
    copy_name,
    find_copies,
    read_port,
)
from cubicweb_haops.deployment.split import copy_path

TEMPLATE = "site"
HOSTNAME_URL = "/view?vid=monitor_hostname"
# Owner given to a file of the template, to check that copies keep it: the
# user and group "nobody" on Debian.
NOBODY = 65534


@pytest.fixture
def root():
    path = tempfile.mkdtemp(prefix="haops-split-")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


def new_instance(root, name, options=None):
    instance = Instance(root, name, "haops")
    instance.create(options, create_database=False)
    return instance


@pytest.fixture
def template(root):
    return new_instance(root, TEMPLATE)


def split(instance, *args, check=True):
    return instance.ctl("haops-split", instance.name, *args, check=check)


def copy_home(template, index):
    return template.root / "etc" / copy_name(template.name, index)


def tree_state(top):
    """Return every path under *top* with its mode, inode and content (None for a directory)."""
    state = {}
    for path in sorted(Path(top).rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if path.is_file() else None
        state[str(path.relative_to(top))] = (stat.S_IMODE(info.st_mode), info.st_ino, content)
    return state


def config_lines(path):
    return Path(path).read_text().splitlines()


def differing_lines(template_conf, copy_conf):
    """Return the lines of the copy's all-in-one.conf that differ from the template's, in order."""
    template_lines, copy_lines = config_lines(template_conf), config_lines(copy_conf)
    assert len(template_lines) == len(copy_lines)
    return [copy for original, copy in zip(template_lines, copy_lines) if original != copy]


# all-in-one.conf edited as text #############################################


def test_set_option_uncomments_first_line():
    text = "[WEB]\n# the port\n#port=\ninterface=0.0.0.0\n"
    assert set_option(text, "port", "9001") == "[WEB]\n# the port\nport=9001\ninterface=0.0.0.0\n"


def test_set_option_prefers_uncommented_line():
    text = "[WEB]\n#port=8080\nport = 8000\n"
    assert set_option(text, "port", "9001") == "[WEB]\n#port=8080\nport=9001\n"


def test_set_option_appends_to_section():
    text = "[MAIN]\nuid=\n\n[WEB]\ninterface=127.0.0.1\n\n[UI]\nx=1\n"
    expected = "[MAIN]\nuid=\n\n[WEB]\ninterface=127.0.0.1\nport=9001\n\n[UI]\nx=1\n"
    assert set_option(text, "port", "9001") == expected


def test_set_option_appends_missing_section():
    assert set_option("[MAIN]\nuid=", "port", "9001") == "[MAIN]\nuid=\n\n[WEB]\nport=9001\n"


def test_option_value_ignores_comments():
    text = "[MAIN]\n#pid-file=/a.pid\npid-file= /run/b.pid \n"
    assert option_value(text, "pid-file") == "/run/b.pid"
    assert option_value("[MAIN]\n#pid-file=/a.pid\n", "pid-file") is None


def test_changed_options_names_options():
    old = "[WEB]\n# old comment\nport=1\n[HAOPS]\nhaops-image-max-age=3600\n"
    new = "[WEB]\n# new comment\nport=1\n[HAOPS]\nhaops-image-max-age=60\nextra=1\n"
    assert changed_options(old, new) == ["extra", "haops-image-max-age"]
    assert changed_options(old, old.replace("old", "other")) == []


def test_copy_path_replaces_template_name():
    copy = ProcessCopy("site-2", 2, 8082, "/unused")
    assert copy_path("/var/log/site/site.log", "site", copy) == "/var/log/site/site-2.log"
    assert copy_path("/tmp/site-all-in-one.log", "site", copy) == "/tmp/site-2-all-in-one.log"
    assert copy_path("/tmp/website.log", "site", copy) == "/tmp/website-2.log"
    assert copy_path("/run/cubicweb.pid", "site", copy) == "/run/cubicweb-2.pid"
    assert copy_path("/run/pidfile", "site", copy) == "/run/pidfile-2"


# Creating copies ############################################################


def test_split_creates_copies(template):
    base_port = 9101

    result = split(template, "--processes", "3", "--base-port", str(base_port))

    for index in (1, 2, 3):
        name = f"{TEMPLATE}-{index}"
        assert f"{name} (port {base_port + index - 1}): created" in result.stdout
    assert not copy_home(template, 4).exists()
    assert not template.sqlite_path.exists()


def test_copies_share_files_and_modes(template):
    if os.geteuid() == 0:
        os.chown(template.apphome / "sources", NOBODY, NOBODY)
    (template.apphome / "logging.conf").write_text("[loggers]\nkeys=root\n")
    os.chmod(template.apphome / "logging.conf", 0o640)

    split(template, "--processes", "2", "--base-port", "9101")

    originals = tree_state(template.apphome)
    for index in (1, 2):
        copies = tree_state(copy_home(template, index))
        assert set(copies) == set(originals) | {MARKER}
        for path, (mode, _inode, content) in originals.items():
            assert copies[path][0] == mode, path
            if path != "all-in-one.conf":
                assert copies[path][2] == content, path
        sources = copy_home(template, index) / "sources"
        assert stat.S_IMODE(sources.stat().st_mode) == 0o600
        assert sources.stat().st_uid == (template.apphome / "sources").stat().st_uid
        assert sources.stat().st_gid == (template.apphome / "sources").stat().st_gid
    pyramid_ini = (copy_home(template, 2) / "pyramid.ini").read_text()
    assert "cubicweb.session.secret" in pyramid_ini
    assert pyramid_ini == (template.apphome / "pyramid.ini").read_text()


def test_copies_differ_in_port_pid_and_log(template):
    split(template, "--processes", "2", "--base-port", "9101")

    for index in (1, 2):
        name = f"{TEMPLATE}-{index}"
        home = copy_home(template, index)
        assert read_port(home) == 9100 + index
        assert differing_lines(template.conf, home / "all-in-one.conf") == [
            f"log-file={template.root / f'{name}.log'}",
            f"pid-file={template.root / 'run' / f'{name}.pid'}",
            f"port={9100 + index}",
        ]
        assert json.loads((home / MARKER).read_text()) == {"template": TEMPLATE, "index": index}
    assert read_port(template.apphome) is None


def test_paths_without_template_name_get_index(template):
    template.configure({"log-file": "/var/log/cubicweb/all.log", "pid-file": "/run/cw/server.pid"})

    split(template, "--processes", "2", "--base-port", "9101")

    lines = config_lines(copy_home(template, 2) / "all-in-one.conf")
    assert "log-file=/var/log/cubicweb/all-2.log" in lines
    assert "pid-file=/run/cw/server-2.pid" in lines


def test_default_processes_and_port(template, monkeypatch):
    monkeypatch.setenv("CW_INSTANCES_DIR", template.env["CW_INSTANCES_DIR"])
    cpus = len(os.sched_getaffinity(0))

    result = split(template)

    assert result.stdout.count(": created") == cpus
    copies = find_copies(TEMPLATE)
    assert [copy.index for copy in copies] == list(range(1, cpus + 1))
    assert [copy.port for copy in copies] == [DEFAULT_PORT + index for index in range(1, cpus + 1)]


def test_default_port_follows_template(template):
    template.configure({"port": "9000"})

    split(template, "--processes", "2")

    assert read_port(copy_home(template, 1)) == 9001
    assert read_port(copy_home(template, 2)) == 9002


def test_find_copies_lists_copies_with_ports(root, template, monkeypatch):
    monkeypatch.setenv("CW_INSTANCES_DIR", template.env["CW_INSTANCES_DIR"])
    new_instance(root, f"{TEMPLATE}-9")

    split(template, "--processes", "2", "--base-port", "9101")

    assert find_copies(TEMPLATE) == [
        ProcessCopy(f"{TEMPLATE}-1", 1, 9101, str(copy_home(template, 1))),
        ProcessCopy(f"{TEMPLATE}-2", 2, 9102, str(copy_home(template, 2))),
    ]


# Running again ##############################################################


def test_second_run_changes_nothing(template):
    split(template, "--processes", "2", "--base-port", "9101")
    before = tree_state(template.root / "etc")

    result = split(template, "--processes", "2", "--base-port", "9101")

    assert tree_state(template.root / "etc") == before
    assert f"{TEMPLATE}-1 (port 9101): unchanged" in result.stdout
    assert f"{TEMPLATE}-2 (port 9102): unchanged" in result.stdout
    assert f"Nothing changed: {TEMPLATE}-1, {TEMPLATE}-2 already match {TEMPLATE}." in result.stdout


def test_plain_second_run_keeps_count_and_ports(template):
    split(template, "--processes", "1", "--base-port", "9201")
    before = tree_state(template.root / "etc")

    result = split(template)

    assert tree_state(template.root / "etc") == before
    assert f"{TEMPLATE}-1 (port 9201): unchanged" in result.stdout
    assert not copy_home(template, 2).exists()


def test_second_run_propagates_changes(template):
    (template.apphome / "urlmapping.py").write_text("MAPPING = {}\n")
    (template.apphome / "migration").mkdir()
    (template.apphome / "migration" / "postcreate.py").write_text("pass\n")
    split(template, "--processes", "2", "--base-port", "9101")
    (template.apphome / "urlmapping.py").unlink()
    shutil.rmtree(template.apphome / "migration")
    (template.apphome / "logging.conf").write_text("[loggers]\nkeys=root\n")
    os.chmod(template.apphome / "pyramid.ini", 0o600)
    template.configure({"haops-image-max-age": "60"})

    result = split(template, "--processes", "2", "--base-port", "9101")

    for index in (1, 2):
        home = copy_home(template, index)
        assert f"{TEMPLATE}-{index} (port {9100 + index}): updated" in result.stdout
        assert "haops-image-max-age=60" in config_lines(home / "all-in-one.conf")
        assert read_port(home) == 9100 + index
        assert (home / "logging.conf").read_text() == "[loggers]\nkeys=root\n"
        assert stat.S_IMODE((home / "pyramid.ini").stat().st_mode) == 0o600
        assert not (home / "urlmapping.py").exists()
        assert not (home / "migration").exists()
        assert len(differing_lines(template.conf, home / "all-in-one.conf")) == 3
    lines = result.stdout.splitlines()
    assert "  all-in-one.conf: updated (options haops-image-max-age)" in lines
    assert "  logging.conf: created" in lines
    assert "  pyramid.ini: updated (mode 0644 -> 0600)" in lines
    assert f"  urlmapping.py: removed, {TEMPLATE} no longer has it" in lines
    assert f"  migration/: removed, {TEMPLATE} no longer has it" in lines
    assert f"  migration/postcreate.py: removed, {TEMPLATE} no longer has it" in lines
    assert "Nothing changed" not in result.stdout


def test_second_run_moves_ports(template):
    split(template, "--processes", "2", "--base-port", "9101")

    result = split(template, "--processes", "2", "--base-port", "9201")

    assert "  all-in-one.conf: updated (options port)" in result.stdout.splitlines()
    assert read_port(copy_home(template, 1)) == 9201
    assert read_port(copy_home(template, 2)) == 9202


def test_second_run_restores_edited_copy(template):
    split(template, "--processes", "1", "--base-port", "9101")
    copy_conf = copy_home(template, 1) / "all-in-one.conf"
    expected = copy_conf.read_text()
    copy_conf.write_text(expected.replace("haops-image-max-age=3600", "haops-image-max-age=5"))
    (copy_home(template, 1) / "notes.txt").write_text("local edit\n")

    result = split(template, "--processes", "1", "--base-port", "9101")

    assert copy_conf.read_text() == expected
    assert not (copy_home(template, 1) / "notes.txt").exists()
    assert "  all-in-one.conf: updated (options haops-image-max-age)" in result.stdout.splitlines()


def test_fewer_processes_report_extra_copies(template):
    split(template, "--processes", "3", "--base-port", "9101")

    result = split(template, "--processes", "1", "--base-port", "9101")

    for index in (2, 3):
        name = f"{TEMPLATE}-{index}"
        assert copy_home(template, index).is_dir()
        assert f"{name} (port {9100 + index}): not needed with --processes 1" in result.stdout
        assert f"`cubicweb-ctl delete {name}`" in result.stdout
    assert "answer n when that command offers to delete the database" in result.stdout
    assert f"Nothing changed: {TEMPLATE}-1 already matches {TEMPLATE}." in result.stdout


def test_runtime_leftovers_not_copied(template):
    (template.apphome / ".pyramid-reload-files.list").write_text("/some/file\n")
    (template.apphome / "__pycache__").mkdir()

    split(template, "--processes", "1", "--base-port", "9101")

    assert not (copy_home(template, 1) / ".pyramid-reload-files.list").exists()
    assert not (copy_home(template, 1) / "__pycache__").exists()


# Rejected requests ##########################################################


def make_copy_of_other(root, template):
    other = new_instance(root, f"{TEMPLATE}-2")
    (other.apphome / MARKER).write_text(json.dumps({"template": "other", "index": 2}))


def make_split_copy(root, template):
    split(template, "--processes", "1", "--base-port", "9101")


REJECTIONS = [
    # (name, instance argument, options, preparation, message)
    ("missing instance", "nosuch", (), None, "no such instance 'nosuch'"),
    (
        "copy as template",
        f"{TEMPLATE}-1",
        (),
        make_split_copy,
        f"instance {TEMPLATE}-1 is a copy made by haops-split",
    ),
    ("zero processes", TEMPLATE, ("--processes", "0"), None, "--processes 0 is below 1"),
    ("negative processes", TEMPLATE, ("-n", "-2"), None, "--processes -2 is below 1"),
    (
        "processes not integer",
        TEMPLATE,
        ("--processes", "two"),
        None,
        "--processes 'two' is not an integer",
    ),
    ("port not integer", TEMPLATE, ("--base-port", "80a"), None, "--base-port '80a' is not an integer"),
    ("port zero", TEMPLATE, ("--base-port", "0"), None, "--base-port 0 is outside 1..65535"),
    ("port too high", TEMPLATE, ("--base-port", "65536"), None, "--base-port 65536 is outside"),
    (
        "last port too high",
        TEMPLATE,
        ("--base-port", "65535", "--processes", "2"),
        None,
        "ends at port 65536, above 65535",
    ),
    (
        "default port too high",
        TEMPLATE,
        ("--processes", "1"),
        lambda root, template: template.configure({"port": "65535"}),
        f"base port 65536 ({TEMPLATE}'s port + 1) is outside 1..65535",
    ),
    (
        "port of template",
        TEMPLATE,
        ("--base-port", "9099", "--processes", "2"),
        lambda root, template: template.configure({"port": "9100"}),
        f"port 9100 is configured for instance {TEMPLATE}",
    ),
    (
        "port of other instance",
        TEMPLATE,
        ("--base-port", "9101", "--processes", "3"),
        lambda root, template: new_instance(root, "other", {"port": "9103"}),
        "port 9103 is configured for instance other",
    ),
    (
        "default port of other instance",
        TEMPLATE,
        ("--base-port", "8079", "--processes", "3"),
        lambda root, template: (template.configure({"port": "9000"}), new_instance(root, "other")),
        "port 8080 is configured for instance other",
    ),
    (
        "unrelated instance in the way",
        TEMPLATE,
        ("--base-port", "9101", "--processes", "3"),
        lambda root, template: new_instance(root, f"{TEMPLATE}-2"),
        f"instance {TEMPLATE}-2 exists and is not a copy of {TEMPLATE} (it has no {MARKER})",
    ),
    (
        "copy of other template in the way",
        TEMPLATE,
        ("--base-port", "9101", "--processes", "3"),
        make_copy_of_other,
        f"instance {TEMPLATE}-2 is a copy of 'other', not of {TEMPLATE}",
    ),
    (
        "template without pyramid.ini",
        TEMPLATE,
        ("--base-port", "9101"),
        lambda root, template: (template.apphome / "pyramid.ini").unlink(),
        f"pyramid.ini is missing: run `cubicweb-ctl start {TEMPLATE}` once",
    ),
]


@pytest.mark.parametrize(
    "instance, options, prepare, message",
    [rejection[1:] for rejection in REJECTIONS],
    ids=[rejection[0] for rejection in REJECTIONS],
)
def test_split_rejects(root, template, instance, options, prepare, message):
    if prepare is not None:
        prepare(root, template)
    before = tree_state(root)

    result = template.ctl("haops-split", instance, *options, check=False)

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("command failed: ")
    assert message in result.stdout
    assert len(result.stdout.strip().splitlines()) == 1
    assert tree_state(root) == before


def test_rejects_before_writing_any_copy(root, template):
    """A conflict found at the last copy leaves the first ones unwritten."""
    new_instance(root, f"{TEMPLATE}-3")
    before = tree_state(root)

    result = split(template, "--processes", "3", "--base-port", "9101", check=False)

    assert result.returncode == 1
    assert tree_state(root) == before
    assert not copy_home(template, 1).exists()


# Serving a copy #############################################################


def test_copy_serves_on_own_port(root):
    template = Instance(root, TEMPLATE, "haops")
    template.create()
    base_port = free_port()
    split(template, "--processes", "2", "--base-port", str(base_port))
    copy = Instance(root, f"{TEMPLATE}-1", "haops")
    copy.port = base_port

    try:
        copy.launch(command="haops-start")
        with urllib.request.urlopen(f"{copy.url}{HOSTNAME_URL}", timeout=30) as response:
            status, body = response.status, response.read().decode("utf-8")
    finally:
        copy.stop()

    assert status == 200, copy.output()
    assert body.splitlines()[1] == f"instance: {TEMPLATE}-1"


def test_delete_advice_keeps_database(root):
    template = Instance(root, TEMPLATE, "haops")
    template.create()
    split(template, "--processes", "2", "--base-port", "9101")
    result = split(template, "--processes", "1", "--base-port", "9101")
    assert f"`cubicweb-ctl delete {TEMPLATE}-2`" in result.stdout

    template.ctl("delete", f"{TEMPLATE}-2", input="n\n" * 5)

    assert not copy_home(template, 2).exists()
    assert template.sqlite_path.exists()
    assert template.sql("SELECT COUNT(*) FROM cw_CWUser")[0][0] >= 1

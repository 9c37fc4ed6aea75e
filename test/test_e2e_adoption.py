"""Operators adopt the cube on an existing instance: add_cube() in the shell,
then a restart, or cubicweb-ctl upgrade after installing a newer version."""

import hashlib

import pytest

from harness.http import fetch
from harness.instance import Instance
from images import image_bytes

from cubicweb_haops.__pkginfo__ import version as HAOPS_VERSION


@pytest.fixture
def plain_instance(instance_root, request):
    """An instance created with cubicweb-web only, before haops existed."""
    name = request.node.name.removeprefix("test_").replace("_", "-")
    instance = Instance(instance_root, name, "web")
    instance.create()
    yield instance
    instance.stop()


def recorded_version(instance, name):
    rows = instance.sql(
        "SELECT cw_value FROM cw_CWProperty WHERE cw_pkey = ?", (f"system.version.{name}",)
    )
    return rows[0][0] if rows else None


def test_add_cube_in_shell_then_restart(plain_instance):
    plain_instance.start()
    before = fetch(f"{plain_instance.url}/view?vid=monitor_pool")
    plain_instance.stop()
    assert not before.text.startswith("Service")
    assert recorded_version(plain_instance, "haops") is None

    plain_instance.shell("add_cube('haops')\n")
    plain_instance.start()

    assert recorded_version(plain_instance, "haops") == HAOPS_VERSION
    version = fetch(f"{plain_instance.url}/view?vid=monitor_version")
    assert version.status == 200, version.text
    assert f"\nhaops: {HAOPS_VERSION}\n" in version.text
    pool = fetch(f"{plain_instance.url}/view?vid=monitor_pool")
    assert pool.status == 200
    assert pool.text.startswith("ServiceOK : ")


def table_exists(instance, table):
    rows = instance.sql("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    return bool(rows)


def test_add_cube_brings_schema(plain_instance):
    assert not table_exists(plain_instance, "cw_File")

    plain_instance.shell("add_cube('haops')\n")

    assert recorded_version(plain_instance, "file") is not None
    assert table_exists(plain_instance, "cw_File")
    assert table_exists(plain_instance, "cw_FileReplacement")


def test_upgrade_from_first_release(plain_instance):
    # The first release (0.1.0) added no schema and did not depend on
    # cubicweb-file: its instances are web instances that record the cube.
    # The hooks would reject a version property for a cube the instance
    # does not use yet.
    plain_instance.shell(
        "with cnx.deny_all_hooks_but('metadata'):\n"
        "    cnx.create_entity('CWProperty', pkey='system.version.haops', value='0.1.0')\n"
        "commit()\n"
    )
    assert recorded_version(plain_instance, "haops") == "0.1.0"

    plain_instance.ctl("upgrade", "--force", "--verbosity=0", "--backup-db=n", plain_instance.name)

    assert recorded_version(plain_instance, "haops") == HAOPS_VERSION
    assert recorded_version(plain_instance, "file") is not None
    assert table_exists(plain_instance, "cw_FileReplacement")
    plain_instance.start()
    upgraded = fetch(f"{plain_instance.url}/view?vid=monitor_version")
    assert upgraded.status == 200, upgraded.text
    assert f"\nhaops: {HAOPS_VERSION}\n" in upgraded.text


HASHLESS_IMAGE_SCRIPT = """
from cubicweb import Binary
cnx.create_entity("File", data=Binary({data!r}), data_name="old.png", data_format="image/png")
commit()
"""


def test_add_cube_hashes_existing_files(instance_root):
    # An instance with cubicweb-file but not haops keeps no content hash
    # while compute-hash is off.
    instance = Instance(instance_root, "filesite", "web,file")
    instance.create()
    data = image_bytes()
    instance.shell(HASHLESS_IMAGE_SCRIPT.format(data=data))
    assert instance.sql("SELECT cw_data_hash FROM cw_File") == [(None,)]

    instance.shell("add_cube('haops')\n")

    ((stored,),) = instance.sql("SELECT cw_data_hash FROM cw_File")
    assert stored == "{sha256}" + hashlib.sha256(data).hexdigest()

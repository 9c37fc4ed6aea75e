"""Operators adopt the cube on an existing instance: add_cube() in the shell,
then a restart, or cubicweb-ctl upgrade after installing a newer version."""

import pytest

from harness.http import fetch
from harness.instance import Instance

from cubicweb_haops.__pkginfo__ import version as HAOPS_VERSION


@pytest.fixture
def plain_instance(instance_root):
    """An instance created with cubicweb-web only, before haops existed."""
    instance = Instance(instance_root, "plainsite", "web")
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


def test_upgrade_records_new_version(instance_root):
    instance = Instance(instance_root, "upgradesite", "haops")
    instance.create()
    # An instance created with an older release of the cube.
    instance.sql(
        "UPDATE cw_CWProperty SET cw_value = '0.0.1' WHERE cw_pkey = 'system.version.haops'"
    )
    # CubicWeb itself refuses to start until the upgrade has run.
    instance.ctl("upgrade", "--force", "--verbosity=0", "--backup-db=n", instance.name)

    assert recorded_version(instance, "haops") == HAOPS_VERSION
    instance.start()
    try:
        upgraded = fetch(f"{instance.url}/view?vid=monitor_version")
    finally:
        instance.stop()
    assert upgraded.status == 200, upgraded.text

"""Fixtures that start real components: PostgreSQL and instance processes."""

import os
import shutil
import tempfile

import pytest

from harness.instance import Instance
from harness.postgres import PostgresCluster

# Make CubicWeb look up instances in user directories, never in /etc/cubicweb.d.
os.environ.setdefault("CW_MODE", "user")


def _scratch_dir(prefix):
    # Under /tmp with the default mode, so the unprivileged PostgreSQL user
    # can reach its data directory; pytest's own tmp dirs are private to root.
    path = tempfile.mkdtemp(prefix=prefix)
    os.chmod(path, 0o755)
    return path


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL cluster on 127.0.0.1, started for the whole session."""
    cluster = PostgresCluster(os.path.join(_scratch_dir("haops-pg-"), "cluster"))
    cluster.init()
    cluster.start()
    yield cluster
    cluster.destroy()
    shutil.rmtree(os.path.dirname(cluster.basedir), ignore_errors=True)


@pytest.fixture(scope="module")
def instance_root():
    root = _scratch_dir("haops-instances-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def run_instance(
    root, name, cubes, database="sqlite", options=None, database_sessions=False, threads=8
):
    """Create and start an instance serving with *threads* threads; the caller stops it."""
    instance = Instance(root, name, cubes, database)
    instance.create(options)
    if database_sessions:
        instance.use_database_sessions()
    instance.start(threads=threads)
    return instance

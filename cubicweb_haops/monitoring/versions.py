"""Compare the versions installed on disk with those recorded in the database.

CubicWeb records the version of itself and of each cube as ``CWProperty``
entities keyed ``system.version.<name>``. ``Repository.get_versions()`` caches
them for the life of the process, so this check reads the table directly.
"""

from dataclasses import dataclass

from cubicweb import CW_MIGRATION_MAP
from cubicweb.server.sqlutils import SQL_PREFIX
from logilab.common.changelog import Version

from cubicweb_haops.monitoring.database import ProbeError, log_probe_failure, run_probe
from cubicweb_haops.monitoring.status import CheckResult, Metric, State

VERSION_KEY_PREFIX = "system.version."

RECORDED_VERSIONS_SQL = (
    f"SELECT {SQL_PREFIX}pkey, {SQL_PREFIX}value FROM {SQL_PREFIX}CWProperty "
    f"WHERE {SQL_PREFIX}pkey LIKE '{VERSION_KEY_PREFIX}%'"
)


@dataclass(frozen=True)
class Comparison:
    """The installed and recorded version of one component; None when absent."""

    name: str
    installed: str
    recorded: str | None

    @property
    def matches(self):
        return self.recorded is not None and Version(self.recorded) == Version(self.installed)

    def describe(self):
        if self.recorded is None:
            return f"{self.name}: {self.installed} installed, no version recorded in the database"
        if self.matches:
            return f"{self.name}: {self.installed}"
        return f"{self.name}: {self.installed} installed, {self.recorded} recorded in the database"


def installed_versions(config):
    """Return ``{name: version}`` for CubicWeb and every cube of the instance."""
    versions = {"cubicweb": str(config.cubicweb_version())}
    for cube in config.cubes():
        versions[cube] = str(config.cube_version(cube))
    return versions


def recorded_versions(rows):
    """Return ``{name: version}`` from ``(pkey, value)`` rows of CWProperty."""
    versions = {}
    for key, value in rows:
        name = key[len(VERSION_KEY_PREFIX):]
        versions[CW_MIGRATION_MAP.get(name, name)] = value
    return versions


def compare_versions(installed, recorded):
    """Return a Comparison per installed component, CubicWeb first."""
    return [
        Comparison(name, version, recorded.get(name))
        for name, version in installed.items()
    ]


def judge_versions(comparisons):
    mismatches = [comparison for comparison in comparisons if not comparison.matches]
    metric = Metric("mismatches", len(mismatches), critical=0, minimum=0)
    details = tuple(comparison.describe() for comparison in comparisons)
    if not mismatches:
        return CheckResult(
            State.OK,
            f"code and database versions match for {len(comparisons)} components",
            (metric,),
            details,
        )
    summary = "; ".join(mismatch.describe() for mismatch in mismatches)
    return CheckResult(
        State.KO,
        f"{len(mismatches)} version mismatch(es), run cubicweb-ctl upgrade: {summary}",
        (metric,),
        details,
    )


def check_versions(config, dbhelper, timeout):
    """Read the recorded versions live and compare them with the installed ones."""
    try:
        result = run_probe(dbhelper, RECORDED_VERSIONS_SQL, timeout)
    except ProbeError as error:
        log_probe_failure("monitor_version", error)
        return CheckResult(State.UNKNOWN, f"cannot read the recorded versions: {error}")
    comparisons = compare_versions(installed_versions(config), recorded_versions(result.rows))
    return judge_versions(comparisons)

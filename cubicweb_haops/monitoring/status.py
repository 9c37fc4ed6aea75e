"""Check states, performance data and the status line of the monitoring views.

The first line of a check's output reads ``Service<STATE> : <message> |
<perfdata>`` so that ``check_http -s ServiceOK`` and Nagios performance data
parsers both understand it.
"""

import enum
import math
from dataclasses import dataclass, field


class State(enum.Enum):
    """Outcome of a check, with its Nagios exit code and HTTP status."""

    OK = ("OK", 0, 200)
    WARNING = ("WARNING", 1, 200)
    KO = ("KO", 2, 503)
    UNKNOWN = ("UNKNOWN", 3, 503)

    def __init__(self, label, nagios_code, http_status):
        self.label = label
        self.nagios_code = nagios_code
        self.http_status = http_status


def format_number(value):
    """Format *value* in the plain decimal notation that perfdata requires."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"perfdata value must be a number, not {value!r}")
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        raise ValueError(f"perfdata value must be finite, not {value!r}")
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _optional_number(value):
    return "" if value is None else format_number(value)


def one_line(text):
    """Return *text* on one line and without ``|``, which starts perfdata."""
    return " ".join(str(text).split()).replace("|", "/")


@dataclass(frozen=True)
class Metric:
    """One performance value in the Monitoring Plugins format.

    ``uom`` is the unit of measurement (``s``, ``%``, ``B`` or ``c``), empty
    for a plain count. ``warning`` and ``critical`` are upper bounds, written
    as the plain-number threshold ranges of the guidelines.
    """

    label: str
    value: float
    uom: str = ""
    warning: float | None = None
    critical: float | None = None
    minimum: float | None = None
    maximum: float | None = None

    def perfdata(self):
        """Return ``'label'=value[UOM];[warn];[crit];[min];[max]``."""
        label = one_line(self.label).replace("=", "_").replace("'", "''")
        fields = [
            format_number(self.value) + self.uom,
            _optional_number(self.warning),
            _optional_number(self.critical),
            _optional_number(self.minimum),
            _optional_number(self.maximum),
        ]
        return f"'{label}'=" + ";".join(fields).rstrip(";")


@dataclass(frozen=True)
class CheckResult:
    """Result of a check: a state, a one-line message, metrics and details.

    ``details`` are extra lines printed after the status line, one item each.
    """

    state: State
    message: str
    metrics: tuple[Metric, ...] = ()
    details: tuple[str, ...] = field(default=())

    def status_line(self):
        """Return the first line, with perfdata when there is any."""
        line = f"Service{self.state.label} : {one_line(self.message)}"
        if self.metrics:
            line += " | " + " ".join(metric.perfdata() for metric in self.metrics)
        return line

    def render(self):
        """Return the whole plain-text body, ending with a newline."""
        lines = [self.status_line()]
        lines.extend(one_line(detail) for detail in self.details)
        return "\n".join(lines) + "\n"

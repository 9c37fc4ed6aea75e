"""Warning and critical thresholds in percent, from options or from a request."""

import math
from dataclasses import dataclass

PERCENT_RANGE = "a number from 0 to 100"


class InvalidThreshold(ValueError):
    """A threshold that is not a percentage, or a warning above the critical."""


@dataclass(frozen=True)
class PercentThresholds:
    """Upper bounds in percent: a value above ``warning`` warns, above
    ``critical`` is critical, as the Nagios range ``N`` means ``0..N``."""

    warning: float
    critical: float

    def __post_init__(self):
        if self.warning > self.critical:
            raise InvalidThreshold(
                f"invalid thresholds: warning={format_percent(self.warning)} is above "
                f"critical={format_percent(self.critical)}; give a warning at most "
                "equal to the critical threshold"
            )


def format_percent(value):
    return f"{value:g}"


def parse_percent(name, raw):
    """Return *raw* as a float in 0..100, or raise InvalidThreshold naming *name*."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= 100:
        raise InvalidThreshold(f"invalid {name}={raw!s}: expected {PERCENT_RANGE}")
    return value


def thresholds_from_options(config, warning_option, critical_option):
    """Read and check the thresholds that the instance configuration sets."""
    warning = parse_percent(warning_option, config[warning_option])
    critical = parse_percent(critical_option, config[critical_option])
    try:
        return PercentThresholds(warning, critical)
    except InvalidThreshold:
        raise InvalidThreshold(
            f"invalid options: {warning_option}={format_percent(warning)} is above "
            f"{critical_option}={format_percent(critical)}; fix the instance "
            "configuration"
        ) from None


def _single_value(form, name):
    value = form.get(name)
    if isinstance(value, (list, tuple)):
        raise InvalidThreshold(
            f"invalid {name}: given {len(value)} times; give it once, as {PERCENT_RANGE}"
        )
    return value


class ThresholdFormValidator:
    """Form validator, for ``req.get_cleaned_form()``, that overrides the
    *defaults* thresholds with the ``warning`` and ``critical`` parameters."""

    def __init__(self, defaults):
        self.defaults = defaults

    def validate(self, form):
        """Return the PercentThresholds that *form* requests."""
        warning, critical = self.defaults.warning, self.defaults.critical
        raw_warning = _single_value(form, "warning")
        raw_critical = _single_value(form, "critical")
        if raw_warning is not None:
            warning = parse_percent("warning", raw_warning)
        if raw_critical is not None:
            critical = parse_percent("critical", raw_critical)
        return PercentThresholds(warning, critical)

"""Status lines and performance data of the checks."""

import pytest

from cubicweb_haops.monitoring.status import CheckResult, Metric, State, format_number


@pytest.mark.parametrize(
    "value, text",
    [(0, "0"), (12, "12"), (0.5, "0.5"), (1e-05, "0.00001"), (2.0, "2"), (-0.0, "0"), (66.6666666, "66.666667")],
)
def test_format_number_plain_decimal(value, text):
    assert format_number(value) == text


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_format_number_rejects_non_finite(value):
    with pytest.raises(ValueError, match="finite"):
        format_number(value)


def test_format_number_rejects_bool():
    with pytest.raises(TypeError):
        format_number(True)


def test_perfdata_full_and_trimmed():
    full = Metric("pool_usage", 50.0, "%", warning=80, critical=95, minimum=0, maximum=100)
    assert full.perfdata() == "'pool_usage'=50%;80;95;0;100"
    assert Metric("time", 0.25, "s", critical=3, minimum=0).perfdata() == "'time'=0.25s;;3;0"
    assert Metric("count", 3).perfdata() == "'count'=3"


def test_perfdata_label_escaped():
    assert Metric("it's=a|b", 1).perfdata() == "'it''s_a/b'=1"


def test_status_line_without_perfdata():
    assert CheckResult(State.OK, "fine").render() == "ServiceOK : fine\n"


def test_pipe_only_before_perfdata():
    result = CheckResult(
        State.WARNING,
        "a | b\nc",
        (Metric("x", 1),),
        ("detail | with pipe", "two\nlines"),
    )
    assert result.render() == "ServiceWARNING : a / b c | 'x'=1\ndetail / with pipe\ntwo lines\n"


def test_states_http_and_nagios_codes():
    assert [(state.label, state.nagios_code, state.http_status) for state in State] == [
        ("OK", 0, 200),
        ("WARNING", 1, 200),
        ("KO", 2, 503),
        ("UNKNOWN", 3, 503),
    ]

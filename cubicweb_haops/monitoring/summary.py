"""One JSON document for machines: the state of every check.

Load balancers and orchestrators read the HTTP status (200 when every check
is OK or WARNING, 503 otherwise); dashboards read the document.
"""

import json

from cubicweb_haops.monitoring.status import State

# The overall state is the worst one, in this order.
SEVERITY = (State.OK, State.WARNING, State.UNKNOWN, State.KO)


def overall_state(states):
    return max(states, key=SEVERITY.index, default=State.UNKNOWN)


def metric_document(metric):
    document = {"label": metric.label, "value": metric.value, "unit": metric.uom}
    for name in ("warning", "critical", "minimum", "maximum"):
        value = getattr(metric, name)
        if value is not None:
            document[name] = value
    return document


def summary_document(results):
    """Return the JSON text and the overall state for *results*, a mapping of check names to CheckResult."""
    state = overall_state(result.state for result in results.values())
    document = {
        "state": state.label,
        "checks": {
            name: {
                "state": result.state.label,
                "message": result.message,
                "perfdata": [metric_document(metric) for metric in result.metrics],
            }
            for name, result in results.items()
        },
    }
    return json.dumps(document, indent=2) + "\n", state

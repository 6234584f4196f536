"""Process metrics in the Prometheus text format, for `GET /metrics`: counters, gauges, histograms."""

from __future__ import annotations

import threading
from collections import defaultdict

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
HELP = {
    "slo_bot_evaluations_total": ("counter", "SLO evaluations, by outcome"),
    "slo_bot_evaluation_failures_total": ("counter", "SLO evaluations that failed, by kind"),
    "slo_bot_slos_failing": ("gauge", "SLOs whose last evaluation failed, by kind"),
    "slo_bot_last_evaluation_completed_timestamp_seconds": (
        "gauge",
        "Unix time at which the last evaluation of every SLO completed",
    ),
    "slo_bot_source_errors_total": ("counter", "Source queries that failed, by kind"),
    "slo_bot_slack_errors_total": ("counter", "Slack calls that failed, by reason"),
    "slo_bot_outbox_pending": ("gauge", "Outbox entries waiting for delivery, by destination"),
    "slo_bot_incident_calls_total": ("counter", "Calls the incident tools took, by outcome"),
    "slo_bot_incident_errors_total": ("counter", "Incident tool calls that failed, by reason"),
    "slo_bot_webhooks_total": ("counter", "Webhooks received from incident tools, by path and status"),
    "slo_bot_evaluation_seconds": ("histogram", "Duration of one evaluation of every SLO"),
    "slo_bot_slack_request_seconds": ("histogram", "Time to answer a request from Slack"),
}

Labels = tuple[tuple[str, str], ...]


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._histograms: dict[str, dict[Labels, list[float]]] = defaultdict(dict)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[name][key] = self._values[name].get(key, 0.0) + amount

    def gauge(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[name][tuple(sorted(labels.items()))] = value

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            counts = self._histograms[name].setdefault(key, [0.0] * (len(BUCKETS) + 2))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            counts[-2] += 1  # count
            counts[-1] += seconds  # sum

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name in sorted(set(self._values) | set(self._histograms)):
                kind, text = HELP.get(name, ("untyped", name))
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
                for key, value in sorted(self._values.get(name, {}).items()):
                    lines.append(f"{name}{_labels(key)} {_number(value)}")
                for key, counts in sorted(self._histograms.get(name, {}).items()):
                    for bound, count in zip(BUCKETS, counts, strict=False):
                        lines.append(f"{name}_bucket{_labels(key, le=f'{bound:g}')} {_number(count)}")
                    lines.append(f"{name}_bucket{_labels(key, le='+Inf')} {_number(counts[-2])}")
                    lines.append(f"{name}_count{_labels(key)} {_number(counts[-2])}")
                    lines.append(f"{name}_sum{_labels(key)} {_number(counts[-1])}")
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    """Every digit: `:g` keeps six, so a Unix time or a counter past a million came out rounded."""
    value = float(value)  # gauges may be set from ints
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _labels(key: Labels, **extra: str) -> str:
    items = list(key) + list(extra.items())
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in items) + "}"


METRICS = Metrics()

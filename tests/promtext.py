"""Read `/metrics` as Prometheus does: with prometheus-client's parser of the text format."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def sample(text: str | bytes, name: str, **labels: str) -> float | None:
    """The value of the sample `name` with exactly `labels`, or None when there is none."""
    if isinstance(text, bytes):
        text = text.decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None


def samples(text: str | bytes, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample `name`: its labels and value."""
    if isinstance(text, bytes):
        text = text.decode()
    return [
        (dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]

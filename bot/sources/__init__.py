"""Monitoring sources: the registry maps a DataSource `spec.type` to its implementation."""

from __future__ import annotations

from bot.sources.base import KNOWN_SOURCE_TYPES, BadQuery, Source, SourceError, SourceUnavailable
from bot.sources.prometheus import PrometheusSource
from bot.sources.simulated import SimulatedSource

# Sources that speak HTTP take an httpx.Client built by the composition root (`bot.service`).
HTTP_SOURCES: dict[str, type[PrometheusSource]] = {
    "Prometheus": PrometheusSource,
    "Thanos": PrometheusSource,
    "Mimir": PrometheusSource,
    "VictoriaMetrics": PrometheusSource,
}
LOCAL_SOURCES: dict[str, type[SimulatedSource]] = {
    "Simulated": SimulatedSource,
}

assert set(HTTP_SOURCES) | set(LOCAL_SOURCES) == KNOWN_SOURCE_TYPES

__all__ = [
    "HTTP_SOURCES",
    "KNOWN_SOURCE_TYPES",
    "LOCAL_SOURCES",
    "BadQuery",
    "Source",
    "SourceError",
    "SourceUnavailable",
]

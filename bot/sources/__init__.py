"""Monitoring sources: the registry maps a DataSource `spec.type` to its implementation."""

from __future__ import annotations

from bot.sources.base import (
    KNOWN_SOURCE_TYPES,
    BadQuery,
    HttpSourceType,
    Source,
    SourceError,
    SourceUnavailable,
)
from bot.sources.datadog import DatadogSource
from bot.sources.prometheus import PrometheusSource
from bot.sources.simulated import SimulatedSource

# Sources that speak HTTP take an httpx.Client built by the composition root (`bot.service`).
HTTP_SOURCES: dict[str, HttpSourceType] = {
    "Prometheus": PrometheusSource,
    "Thanos": PrometheusSource,
    "Mimir": PrometheusSource,
    "VictoriaMetrics": PrometheusSource,
    "Datadog": DatadogSource,
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
    "HttpSourceType",
    "Source",
    "SourceError",
    "SourceUnavailable",
]

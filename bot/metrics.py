"""slo-bot's numbers for `GET /metrics`, with prometheus-client: one registry of its own (not the
library's global one), the process metrics, and a small typed helper for each thing counted.

Per-SLO gauges hold what the last evaluation of each SLO (and of a composite's parts) found; an SLO's
series go when it is removed.
Outbox depth and age are read from the database when `/metrics` is scraped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlmodel import Session

from bot.budget import Status
from bot.durations import format_duration
from bot.store import outbox

log = logging.getLogger(__name__)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_PLAIN_0_0_4  # what `generate_latest` writes
RENDER_CHUNK = 2000  # per-SLO series rendered at a time (`Metrics.render`)

# a `_created` series beside every counter and histogram doubles the series and says nothing graphed
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """Every metric slo-bot exports, in `registry`. Tests build their own; the bot uses `METRICS`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self._evaluations = Counter(
            "slo_bot_evaluations_total", "SLO evaluations, by outcome", ["outcome"], registry=r
        )
        self._failures = Counter(
            "slo_bot_evaluation_failures_total", "SLO evaluations that failed, by kind", ["kind"], registry=r
        )
        self._failing = Gauge(
            "slo_bot_slos_failing", "SLOs whose last evaluation failed, by kind", ["kind"], registry=r
        )
        self._completed = Gauge(
            "slo_bot_last_evaluation_completed_timestamp_seconds",
            "Unix time at which the last evaluation of every SLO completed",
            registry=r,
        )
        self._source_errors = Counter(
            "slo_bot_source_errors_total", "Source queries that failed, by kind", ["kind"], registry=r
        )
        self._source_seconds = Histogram(
            "slo_bot_source_query_seconds",
            "Time of one source query, by DataSource name",
            ["datasource"],
            buckets=BUCKETS,
            registry=r,
        )
        self._slack_errors = Counter(
            "slo_bot_slack_errors_total", "Slack calls that failed, by reason", ["reason"], registry=r
        )
        self._incident_calls = Counter(
            "slo_bot_incident_calls_total",
            "Calls the incident tools took, by outcome",
            ["outcome"],
            registry=r,
        )
        self._incident_errors = Counter(
            "slo_bot_incident_errors_total",
            "Incident tool calls that failed, by reason",
            ["reason"],
            registry=r,
        )
        self._webhooks = Counter(
            "slo_bot_webhooks_total",
            "Webhooks received from incident tools, by path and status",
            ["path", "status"],
            registry=r,
        )
        self._evaluation_seconds = Histogram(
            "slo_bot_evaluation_seconds",
            "Duration of one evaluation of every SLO",
            buckets=BUCKETS,
            registry=r,
        )
        self._slack_seconds = Histogram(
            "slo_bot_slack_request_seconds",
            "Time to answer a request from Slack",
            buckets=BUCKETS,
            registry=r,
        )
        self._leases = Gauge(
            "slo_bot_leases_held",
            "SLOs this replica took (leased) in its current or last tick; the fleet's sum is every SLO",
            registry=r,
        )
        self._leases_lost = Counter(
            "slo_bot_leases_lost_total",
            "Evaluations dropped because their lease expired and another replica took the SLO",
            registry=r,
        )
        self.slos = SLOGauges()  # not in the registry: `render` writes them some series at a time
        self.outbox = OutboxCollector()
        r.register(self.outbox)

    # evaluations
    def evaluated(self, outcome: str) -> None:
        """One SLO evaluated: `ok`, or the kind of its failure."""
        self._evaluations.labels(outcome=outcome).inc()

    def evaluation_failed(self, kind: str) -> None:
        self._failures.labels(kind=kind).inc()

    def source_failed(self, kind: str) -> None:
        self._source_errors.labels(kind=kind).inc()

    def source_query_took(self, datasource: str, seconds: float) -> None:
        self._source_seconds.labels(datasource=datasource).observe(seconds)

    def evaluation_took(self, seconds: float) -> None:
        self._evaluation_seconds.observe(seconds)

    def evaluation_completed(self, at: float) -> None:
        """Unix time `at` the last evaluation of every SLO completed."""
        self._completed.set(at)

    def leases_held(self, count: int) -> None:
        self._leases.set(count)

    def lease_lost(self) -> None:
        self._leases_lost.inc()

    def failing(self, counts: Mapping[str, int]) -> None:
        """SLOs whose last evaluation failed, by kind (give every kind: a recovery is a series at 0)."""
        for kind, count in counts.items():
            self._failing.labels(kind=kind).set(count)

    # Slack, incident tools, webhooks
    def slack_failed(self, reason: str) -> None:
        self._slack_errors.labels(reason=reason).inc()

    def slack_request_took(self, seconds: float) -> None:
        self._slack_seconds.observe(seconds)

    def incident_call(self, outcome: str) -> None:
        self._incident_calls.labels(outcome=outcome).inc()

    def incident_failed(self, reason: str) -> None:
        self._incident_errors.labels(reason=reason).inc()

    def webhook(self, path: str, status: int) -> None:
        self._webhooks.labels(path=path, status=str(status)).inc()

    def render(self, chunk: int = RENDER_CHUNK) -> bytes:
        """The exposition in the Prometheus text format (`CONTENT_TYPE`): the registry's metrics, then
        the per-SLO gauges `chunk` series at a time. A replica's thousands of SLOs are tens of
        thousands of series: rendered at once, all their samples and lines were held together (12 MB
        a scrape at 4,400 SLOs). A family's `# HELP` and `# TYPE` lines come once, before its first
        series (`generate_latest` writes them first, one line each: dropped from the other chunks)."""
        parts = [generate_latest(self.registry)]
        for first, family in self.slos.families(chunk):
            text = generate_latest(_Family(family))
            parts.append(text if first else text.split(b"\n", 2)[2])
        return b"".join(parts)


_Series = tuple[str, tuple[tuple[str, str], ...]]  # a gauge's key and its labels, (name, value) pairs

# the per-SLO gauges: key -> (name, help)
_SLO_GAUGES = {
    "sli": ("slo_bot_slo_sli", "The SLO's SLI over its period at the last evaluation (a ratio)"),
    "budget": (
        "slo_bot_slo_budget_remaining",
        "Share of the SLO's error budget left at the last evaluation (a ratio; below 0 overspent)",
    ),
    "burn": (
        "slo_bot_slo_burn_rate",
        "The SLO's burn rate over each window of its alert policy at the last evaluation",
    ),
    "breach": (
        "slo_bot_slo_breach",
        "1 while a breach of the SLO of this kind and (headline) severity is open",
    ),
}


class _Family(Collector):
    """One metric family, for `generate_latest` (which renders any collector)."""

    def __init__(self, family: Metric) -> None:
        self.family = family

    def collect(self) -> Iterable[Metric]:
        return [self.family]


class SLOGauges:
    """Per SLO, from its last evaluation: SLI, budget remaining, burn rate per window, open breaches
    (labels `slo`, `service`; `window`; `kind`, `severity`).

    A composite SLO's parts have an SLI, budget and burn rates of their own, each under its part's
    name (`checkout-journey[pay]`) with a `composite` label naming the composite (the label is
    absent from other SLOs' series: `{composite=""}` selects those); a part has no breach, the
    composite alone alerts. Each SLO's series (a composite's with its parts') are replaced whole
    by its next evaluation, so what it no longer has (a window dropped, a breach resolved, the
    service renamed, a part gone, the SLO removed) is gone rather than kept forever."""

    def __init__(self) -> None:
        self._held: dict[str, dict[_Series, float]] = {}
        self._ticks: dict[str, int] = {}  # each SLO's last replica tick that took it (`ticked`)
        self._tick = 0
        self._lock = threading.Lock()

    def evaluated(
        self,
        slo: str,
        service: str,
        status: Status,
        breaches: Iterable[tuple[str, str]],
        parts: Iterable[tuple[str, Status]] = (),
    ) -> None:
        """Publish one evaluation: its status, the open breaches as (kind, severity), and a
        composite's parts' own statuses as (name, status)."""
        values = _status_series((("slo", slo), ("service", service)), status)
        for kind, severity in breaches:
            labels = (("slo", slo), ("service", service), ("kind", kind), ("severity", severity))
            values["breach", labels] = 1
        for name, own in parts:
            values |= _status_series((("slo", name), ("service", service), ("composite", slo)), own)
        with self._lock:
            self._held[slo] = values

    def forget(self, slo: str) -> None:
        """Remove the SLO's series (it was removed), a composite's parts' with them."""
        with self._lock:
            self._held.pop(slo, None)

    def keep_only(self, slos: Iterable[str]) -> None:
        """Remove the series of every SLO not in `slos` (the SLOs stored now)."""
        keep = set(slos)
        with self._lock:
            for slo in [s for s in self._held if s not in keep]:
                del self._held[slo]

    def ticked(self, slos: Iterable[str]) -> None:
        """A replica's tick of a fleet ended, having taken `slos` (evaluated or failed). Kept: the
        series of the SLOs it took in this tick or the one before. An SLO another replica took
        over goes after one tick of overlap, when its new holder shows it (a fleet's replicas
        each show their own share, not every SLO with the values of whenever each last had it)."""
        with self._lock:
            self._tick += 1
            for slo in slos:
                self._ticks[slo] = self._tick
            for slo in [s for s in self._held if self._ticks.get(s, 0) < self._tick - 1]:
                del self._held[slo]
            for slo in [s for s, at in self._ticks.items() if at < self._tick - 1]:
                del self._ticks[slo]

    def families(self, chunk: int) -> Iterator[tuple[bool, Metric]]:
        """Each gauge's series, `chunk` at a time, each run as a family of its own, built as it is
        asked for (`Metrics.render`); True with a gauge's first run (which may hold none)."""
        with self._lock:
            held = list(self._held.values())  # each SLO's series are replaced whole, never changed
        for key, (name, text) in _SLO_GAUGES.items():
            family, first = GaugeMetricFamily(name, text), True
            for values in held:
                for (of, labels), value in values.items():
                    if of != key:
                        continue
                    if len(family.samples) >= chunk:
                        yield first, family
                        family, first = GaugeMetricFamily(name, text), False
                    family.add_sample(name, dict(labels), value)
            yield first, family


def _status_series(labels: tuple[tuple[str, str], ...], status: Status) -> dict[_Series, float]:
    """The SLI, budget and burn-rate series of one status (what it knows) under `labels`."""
    values: dict[_Series, float] = {}
    if status.sli is not None:
        values["sli", labels] = status.sli
    if status.remaining_ratio is not None:
        values["budget", labels] = status.remaining_ratio
    for window, burn in status.burn_rates.items():
        if burn is not None:
            values["burn", (*labels, ("window", format_duration(window)))] = burn
    return values


@dataclass(frozen=True)
class _Watched:
    engine: Engine
    kinds: tuple[str, ...]
    clock: Callable[[], datetime]
    owner: object


class OutboxCollector(Collector):
    """`slo_bot_outbox_pending` and `slo_bot_outbox_oldest_pending_age_seconds` by destination, read
    from the outbox table when `/metrics` is scraped. Each delivery worker watches its destination
    while it runs. A database that does not answer leaves the destination out (and is logged)."""

    def __init__(self) -> None:
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.Lock()

    def watch(
        self,
        destination: str,
        engine: Engine,
        kinds: Sequence[str],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        owner: object = None,
    ) -> None:
        with self._lock:
            self._watched[destination] = _Watched(engine, tuple(kinds), clock, owner)

    def unwatch(self, destination: str, owner: object = None) -> None:
        """Stop reading the destination (only if `owner` still watches it)."""
        with self._lock:
            watched = self._watched.get(destination)
            if watched is not None and watched.owner is owner:
                del self._watched[destination]

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        pending, age = self._families()
        with self._lock:
            watched = sorted(self._watched.items())
        for destination, w in watched:
            try:
                with Session(w.engine) as session:
                    count, oldest = outbox.pending_summary(session=session, kinds=w.kinds)
            except Exception as err:
                log.warning("reading the %s outbox for /metrics failed: %s", destination, err)
                continue
            pending.add_metric([destination], count)
            age.add_metric([destination], 0 if oldest is None else (w.clock() - oldest).total_seconds())
        return [pending, age]

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "slo_bot_outbox_pending",
                "Outbox entries waiting for delivery, by destination",
                labels=["destination"],
            ),
            GaugeMetricFamily(
                "slo_bot_outbox_oldest_pending_age_seconds",
                "Age of the oldest outbox entry waiting for delivery, by destination (0 when none waits)",
                labels=["destination"],
            ),
        )


METRICS = Metrics()

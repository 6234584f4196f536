"""`/metrics` as a Prometheus reads it (prometheus-client's own parser): per-SLO gauges after an
evaluation, source query latency, outbox depth and age by destination, process metrics, escaping."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlmodel import Session

from bot import cli, jobs
from bot.budget import Status
from bot.durations import format_duration
from bot.metrics import METRICS, Metrics
from bot.sources.pool import SourcePool
from bot.store import outbox, repo
from tests.promtext import sample, samples

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
# 5% of requests fail against a 99.9% objective: a burn rate of about 50 on every window
CATALOGUE = """
apiVersion: openslo/v1
kind: DataSource
metadata: {name: sim-burning}
spec:
  type: Simulated
  connectionDetails: {seed: 7, requests_per_minute: 200, error_ratio: 0.05}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: metrics-burning}
spec:
  service: checkout
  indicator:
    metadata: {name: metrics-burning-requests}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {metricSourceRef: sim-burning, spec: {query: good}}}
        total: {metricSource: {metricSourceRef: sim-burning, spec: {query: total}}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.999}]
"""


def _evaluate(engine: Engine, now: datetime) -> list[jobs.Outcome]:
    sources = SourcePool(max_connections=2)
    try:
        return jobs.evaluate_all(engine, now=now, sources=sources, concurrency=2)
    finally:
        sources.close()


def test_an_evaluation_of_a_burning_slo_is_graphable(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    path = tmp_path / "slos.yaml"
    path.write_text(CATALOGUE)
    monkeypatch.setenv("DATABASE_URL", database_url)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(["apply", str(path)]) == 0

    (outcome,) = _evaluate(engine, NOW)
    assert outcome.status is not None and outcome.status.sli is not None
    text = METRICS.render()
    slo = {"slo": "metrics-burning", "service": "checkout"}
    assert sample(text, "slo_bot_slo_sli", **slo) == outcome.status.sli
    assert outcome.status.sli < 0.99
    assert sample(text, "slo_bot_slo_budget_remaining", **slo) == outcome.status.remaining_ratio
    burns = {
        labels["window"]: value
        for labels, value in samples(text, "slo_bot_slo_burn_rate")
        if labels["slo"] == slo["slo"]
    }
    assert set(burns) >= {"5m", "1h", "6h", "3d"}, burns
    assert all(40 < burn < 60 for burn in burns.values()), burns
    breaches = [
        (labels, value)
        for labels, value in samples(text, "slo_bot_slo_breach")
        if labels["slo"] == slo["slo"]
    ]
    assert outcome.alerts, "a burn of 50 opens a breach"
    assert breaches == [({**slo, "kind": "burn", "severity": outcome.alerts[0]["severity"] or ""}, 1.0)], (
        breaches
    )
    queries = sample(text, "slo_bot_source_query_seconds_count", datasource="sim-burning")
    assert queries is not None and queries >= 2  # good and total
    assert (sample(text, "slo_bot_evaluations_total", outcome="ok") or 0) >= 1

    with Session(engine) as session:  # `apply --prune` from another process
        repo.delete_slos_except(session=session, keep=[])
        session.commit()
    _evaluate(engine, NOW + timedelta(minutes=1))
    text = METRICS.render()
    for name in (
        "slo_bot_slo_sli",
        "slo_bot_slo_budget_remaining",
        "slo_bot_slo_burn_rate",
        "slo_bot_slo_breach",
    ):
        assert not [labels for labels, _ in samples(text, name) if labels["slo"] == slo["slo"]], name


def _status(sli: float, burns: dict[timedelta, float | None]) -> Status:
    return Status(
        evaluated_at=NOW,
        sli=sli,
        good=sli * 1000,
        total=1000,
        consumed_ratio=0.25,
        remaining_ratio=0.75,
        burn_rates=burns,
        exhaustion_at=None,
        state="ok",
        coverage_ratio=1.0,
    )


def test_label_values_are_escaped_and_parse_back_equal() -> None:
    metrics = Metrics(CollectorRegistry())
    name, service = 'we"ird\\slo\nname', 'team "a"\\b'
    metrics.slos.evaluated(name, service, _status(0.998, {timedelta(hours=1): 2.0}), [("burn", "page")])
    metrics.webhook('/webhooks/"x"\n', 401)
    text = metrics.render()
    assert sample(text, "slo_bot_slo_sli", slo=name, service=service) == 0.998
    assert sample(text, "slo_bot_slo_burn_rate", slo=name, service=service, window="1h") == 2.0
    assert sample(text, "slo_bot_slo_breach", slo=name, service=service, kind="burn", severity="page") == 1
    assert sample(text, "slo_bot_webhooks_total", path='/webhooks/"x"\n', status="401") == 1


def test_an_slos_series_follow_its_last_evaluation() -> None:
    metrics = Metrics(CollectorRegistry())
    hour, day = timedelta(hours=1), timedelta(days=1)
    metrics.slos.evaluated("a", "api", _status(0.99, {hour: 10.0, day: 3.0}), [("burn", "page")])
    metrics.slos.evaluated("b", "api", _status(0.999, {hour: 1.0}), [])
    metrics.slos.evaluated("a", "web", _status(0.995, {hour: 5.0, day: None}), [("burn", "ticket")])
    text = metrics.render()
    assert [labels for labels, _ in samples(text, "slo_bot_slo_burn_rate") if labels["slo"] == "a"] == [
        {"slo": "a", "service": "web", "window": "1h"}
    ]
    assert samples(text, "slo_bot_slo_breach") == [
        ({"slo": "a", "service": "web", "kind": "burn", "severity": "ticket"}, 1.0)
    ]
    metrics.slos.keep_only(["b"])
    text = metrics.render()
    assert {labels["slo"] for labels, _ in samples(text, "slo_bot_slo_sli")} == {"b"}
    assert {labels["slo"] for labels, _ in samples(text, "slo_bot_slo_burn_rate")} == {"b"}


def test_many_slos_render_in_chunks_as_one_family_per_gauge() -> None:
    """A replica's thousands of SLOs are rendered some series at a time (memory): Prometheus still
    reads each gauge as one family, its HELP and TYPE once, every series in it."""
    metrics = Metrics(CollectorRegistry())
    hour, day = timedelta(hours=1), timedelta(days=1)
    for n in range(25):
        breaches = [("burn", "page")] if n % 3 == 0 else []
        metrics.slos.evaluated(f"slo-{n}", "api", _status(0.99, {hour: float(n), day: 1.0}), breaches)

    def gauges(text: bytes) -> list[str]:
        return [line for line in text.decode().splitlines() if "slo_bot_slo_" in line]

    whole, chunked = metrics.render(chunk=10**9), metrics.render(chunk=4)
    assert gauges(chunked) == gauges(whole)
    families = [f.name for f in text_string_to_metric_families(chunked.decode())]
    for name, count in (
        ("slo_bot_slo_sli", 25),
        ("slo_bot_slo_budget_remaining", 25),
        ("slo_bot_slo_burn_rate", 50),
        ("slo_bot_slo_breach", 9),
    ):
        assert families.count(name) == 1
        assert chunked.count(f"# TYPE {name} gauge".encode()) == 1
        assert len(samples(chunked, name)) == count
    assert sample(chunked, "slo_bot_slo_burn_rate", slo="slo-24", service="api", window="1h") == 24.0


def test_process_metrics_and_large_numbers_keep_every_digit() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.evaluation_completed(1796540412.25)
    for _ in range(3):
        metrics.evaluated("ok")
    text = metrics.render()
    assert sample(text, "slo_bot_last_evaluation_completed_timestamp_seconds") == 1796540412.25
    assert sample(text, "slo_bot_evaluations_total", outcome="ok") == 3
    assert (sample(text, "process_resident_memory_bytes") or 0) > 0
    assert (sample(text, "process_cpu_seconds_total") or -1) >= 0
    assert samples(text, "python_info")


def test_outbox_depth_and_age_by_destination(engine: Engine) -> None:
    metrics = Metrics(CollectorRegistry())
    now = NOW
    with Session(engine) as session:
        for minutes, kind in (
            (30, "alert_message"),
            (10, "thread_note"),
            (1, "alert_message"),
            (5, "incident"),
        ):
            outbox.enqueue(session=session, kind=kind, now=now - timedelta(minutes=minutes), channel="C1")
        done = outbox.enqueue(session=session, kind="alert_message", now=now - timedelta(hours=2))
        done.status = "done"
        session.commit()
    metrics.outbox.watch("slack", engine, ("alert_message", "thread_note"), clock=lambda: now)
    metrics.outbox.watch("incidents", engine, ("incident",), clock=lambda: now)
    text = metrics.render()
    assert sample(text, "slo_bot_outbox_pending", destination="slack") == 3
    assert sample(text, "slo_bot_outbox_pending", destination="incidents") == 1
    assert sample(text, "slo_bot_outbox_oldest_pending_age_seconds", destination="slack") == 30 * 60
    assert sample(text, "slo_bot_outbox_oldest_pending_age_seconds", destination="incidents") == 5 * 60
    metrics.outbox.unwatch("incidents", owner=object())  # another's: kept
    metrics.outbox.unwatch("slack")
    text = metrics.render()
    assert sample(text, "slo_bot_outbox_pending", destination="slack") is None
    assert sample(text, "slo_bot_outbox_pending", destination="incidents") == 1


# a journey of two parts: `front` fails 5 % against 99.9 % (burn about 50), `back` about 0.1 % of
# fewer requests against 99 % (burn about 0.1, noisier), weighing 1 and 3
JOURNEY = """
apiVersion: openslo/v1
kind: DataSource
metadata: {name: sim-front}
spec:
  type: Simulated
  connectionDetails: {seed: 7, requests_per_minute: 200, error_ratio: 0.05}
---
apiVersion: openslo/v1
kind: DataSource
metadata: {name: sim-back}
spec:
  type: Simulated
  connectionDetails: {seed: 8, requests_per_minute: 100, error_ratio: 0.001}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: metrics-journey}
spec:
  service: shop
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  objectives:
""" + "".join(
    f"""    - displayName: {name}
      target: {target}
      compositeWeight: {weight}
      indicator:
        metadata: {{name: journey-{name}-requests}}
        spec:
          ratioMetric:
            counter: true
            good: {{metricSource: {{metricSourceRef: sim-{name}, spec: {{query: good}}}}}}
            total: {{metricSource: {{metricSourceRef: sim-{name}, spec: {{query: total}}}}}}
"""
    for name, target, weight in (("front", 0.999, 1), ("back", 0.99, 3))
)


def test_the_parts_of_a_composite_slo_have_series_of_their_own_labelled_with_it(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    path = tmp_path / "journey.yaml"
    path.write_text(JOURNEY)
    monkeypatch.setenv("DATABASE_URL", database_url)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(["apply", str(path)]) == 0
    (outcome,) = _evaluate(engine, NOW)
    assert outcome.name == "metrics-journey" and outcome.alerts
    text = METRICS.render()
    with Session(engine) as session:  # each part's own evaluation, as `slo-bot status` shows it
        stored = {r.name: repo.status_of(s) for r, s in repo.latest_snapshots(session=session)}
    for label, (low, high) in (("front", (40.0, 60.0)), ("back", (0.0, 1.0))):
        part = {"slo": f"metrics-journey[{label}]", "service": "shop", "composite": "metrics-journey"}
        own = stored[part["slo"]]
        assert own is not None and own.sli is not None
        assert sample(text, "slo_bot_slo_sli", **part) == own.sli
        assert sample(text, "slo_bot_slo_budget_remaining", **part) == own.remaining_ratio
        burns = {
            labels["window"]: value
            for labels, value in samples(text, "slo_bot_slo_burn_rate")
            if labels["slo"] == part["slo"]
        }
        assert burns == {format_duration(w): b for w, b in own.burn_rates.items()}
        assert set(burns) >= {"5m", "1h", "6h", "3d"}, burns
        assert all(low < b < high for b in burns.values()), (label, burns)
        # the composite alone alerts: a part has no breach of its own
        assert not [
            labels for labels, _ in samples(text, "slo_bot_slo_breach") if labels["slo"] == part["slo"]
        ]
    # the composite's series are as any SLO's, its breach with them
    composite = {"slo": "metrics-journey", "service": "shop"}
    assert outcome.status is not None
    assert sample(text, "slo_bot_slo_budget_remaining", **composite) == outcome.status.remaining_ratio
    assert [
        labels for labels, _ in samples(text, "slo_bot_slo_breach") if labels["slo"] == "metrics-journey"
    ] == [{**composite, "kind": "burn", "severity": outcome.alerts[0]["severity"] or ""}]

    # the composite removed (`apply --prune` elsewhere): its parts' series go with its own
    with Session(engine) as session:
        repo.delete_slos_except(session=session, keep=[])
        session.commit()
    _evaluate(engine, NOW + timedelta(minutes=1))
    text = METRICS.render()
    for name in ("slo_bot_slo_sli", "slo_bot_slo_budget_remaining", "slo_bot_slo_burn_rate"):
        assert not [labels for labels, _ in samples(text, name) if "metrics-journey" in labels["slo"]], name

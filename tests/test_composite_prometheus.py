"""A composite SLO over two parts on a real Prometheus: its budget is the hand-computed weighted one.

Both parts read the generated history (tests/promharness.py): `live` as it is, against 99.9 %,
`yesterday` the same traffic a day earlier (`offset 1d`) against 99 %, weighing 3. Each part's and
the composite's figures are computed here from the history's true counts.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from bot import jobs
from bot.sources.pool import SourcePool
from bot.store import db
from bot.store.models import BreachRecord, BucketRecord, SLORecord
from tests.promharness import DAY, MINUTE, History
from tests.test_cli_prometheus import Cli

CATALOGUE = """
apiVersion: openslo/v1
kind: DataSource
metadata: {name: prom}
spec:
  type: Prometheus
  connectionDetails: {url: "${PROMETHEUS_URL}", timeout: 5s}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: checkout-journey}
spec:
  service: shop
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  objectives:
    - displayName: live
      target: 0.999
      compositeWeight: 1
      indicator:
        metadata: {name: live-requests}
        spec:
          ratioMetric:
            counter: true
            good: {metricSource: {metricSourceRef: prom, spec: {query: 'GOOD'}}}
            total: {metricSource: {metricSourceRef: prom, spec: {query: 'TOTAL'}}}
    - displayName: yesterday
      target: 0.99
      compositeWeight: 3
      indicatorRef: yesterday-requests
---
apiVersion: openslo/v1
kind: SLI
metadata: {name: yesterday-requests}
spec:
  ratioMetric:
    counter: true
    bad:
      metricSource: {metricSourceRef: prom, spec: {query: 'sum(increase(BAD[{{window}}] offset 1d))'}}
    total:
      metricSource: {metricSourceRef: prom, spec: {query: 'sum(increase(TOTAL[{{window}}] offset 1d))'}}
"""
WINDOWS = {"5m": 5, "30m": 30, "1h": 60, "2h": 120, "6h": 360, "1d": 1440, "3d": 4320}
PARTS = {"live": (0.999, 1.0, timedelta(0)), "yesterday": (0.99, 3.0, DAY)}  # target, weight, offset


def error_ratio(history: History, start: datetime, end: datetime, offset: timedelta) -> float:
    return history.bad(start - offset, end - offset) / history.total(start - offset, end - offset)


def composite_burn(history: History, start: datetime, end: datetime) -> float:
    """sum_i w_i * (bad_i / total_i) / (1 - o_i) / sum_i w_i, from the true counts."""
    burns = [w * error_ratio(history, start, end, off) / (1 - o) for o, w, off in PARTS.values()]
    return sum(burns) / sum(w for _, w, _ in PARTS.values())


@pytest.fixture
def catalogue(tmp_path: Path, prom_history_fixed: History) -> Path:
    history = prom_history_fixed
    text = (
        CATALOGUE.replace("GOOD", history.good_selector)
        .replace("TOTAL", history.total_selector)
        .replace("BAD", history.bad_selector)
    )
    path = tmp_path / "journey.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str) -> Cli:
    return Cli(monkeypatch, capsys, database_url)


def _assert_weighted(row: dict[str, Any], history: History, at: datetime) -> None:
    """A composite's row of `check --json` / `status --json` against the hand computation."""
    # the composite's objective: 1 - (1 x 0.1 % + 3 x 1 %) / 4
    assert row["objective"] == pytest.approx(0.99225)
    consumed = composite_burn(history, at - 30 * DAY, at)
    assert row["budget"]["consumed"] == pytest.approx(consumed, rel=0.01)
    assert row["budget"]["remaining"] == pytest.approx(1 - consumed, rel=0.01, abs=0.01)
    assert row["sli"] == pytest.approx(1 - consumed * (1 - 0.99225), abs=1e-5)
    for name, minutes in WINDOWS.items():
        expected = composite_burn(history, at - minutes * MINUTE, at)
        assert row["burn_rates"][name] == pytest.approx(expected, rel=0.01, abs=1e-3), name
    # the ongoing incident (5 % errors for 20 minutes) burns `live` 50x over 5 minutes; yesterday's
    # traffic at that time burnt its 99 % budget 30 times slower: the composite burns about a quarter
    live_5m = error_ratio(history, at - 5 * MINUTE, at, timedelta(0)) / 0.001
    assert live_5m > 14.4
    assert live_5m / 4 <= row["burn_rates"]["5m"] < live_5m / 3


def test_composite_budget_equals_the_hand_computed_weighted_budget(
    run: Cli, catalogue: Path, prometheus_fixed: str, prom_history_fixed: History, database_url: str
) -> None:
    history = prom_history_fixed
    at = history.end
    assert run("validate", str(catalogue), prometheus=prometheus_fixed)[0] == 0
    assert run("apply", str(catalogue), prometheus=prometheus_fixed)[0] == 0
    # `check --at`: read-only, from the source
    rows = run.check(at, prometheus_fixed)
    assert list(rows) == ["checkout-journey"]  # the parts are no SLOs of their own
    _assert_weighted(rows["checkout-journey"], history, at)

    # the live evaluation (what `run` does each tick) stores each part's buckets and the composite's
    # status; `status` shows the composite with each part's own SLI and budget under it
    engine = db.make_engine(database_url)
    sources = SourcePool(max_connections=4)
    try:
        outcomes = jobs.evaluate_all(engine, now=at, sources=sources, concurrency=4)
    finally:
        sources.close()
        engine.dispose()
    assert [(o.name, o.error) for o in outcomes] == [("checkout-journey", None)]
    code, out, err = run("status", "--json")
    assert code == 0, err
    shown = {r["slo"]: r for r in json.loads(out)}
    assert list(shown) == ["checkout-journey", "checkout-journey[live]", "checkout-journey[yesterday]"]
    _assert_weighted(shown["checkout-journey"], history, at)
    for label, (target, _, offset) in PARTS.items():
        part = shown[f"checkout-journey[{label}]"]
        start = at - 30 * DAY
        good = history.good(start - offset, at - offset)
        total = history.total(start - offset, at - offset)
        assert part["objective"] == target
        assert part["sli"] == pytest.approx(good / total, abs=1e-5)
        assert part["budget"]["consumed"] == pytest.approx((1 - good / total) / (1 - target), rel=0.01)
        assert part["alerts"] == []  # the composite alone alerts


def test_the_composite_alone_pages_and_opens_a_breach(
    run: Cli, tmp_path: Path, prometheus_fixed: str, prom_history_fixed: History, database_url: str
) -> None:
    # both parts read today's traffic: 99.9 % and 99.95 %, weighing 1 each, burn 1.5x the first's
    history = prom_history_fixed
    text = (
        CATALOGUE.replace(" offset 1d", "")
        .replace("target: 0.99\n      compositeWeight: 3", "target: 0.9995\n      compositeWeight: 1")
        .replace("GOOD", history.good_selector)
        .replace("TOTAL", history.total_selector)
        .replace("BAD", history.bad_selector)
    )
    path = tmp_path / "journey.yaml"
    path.write_text(text)
    assert run("apply", str(path), prometheus=prometheus_fixed)[0] == 0
    at = history.end
    burns = {m: 1.5 * error_ratio(history, at - m * MINUTE, at, timedelta(0)) / 0.001 for m in (5, 60)}
    assert burns[5] > 14.4 and burns[60] > 14.4  # the ongoing incident: the fast page's two windows
    engine = db.make_engine(database_url)
    sources = SourcePool(max_connections=4)
    try:
        (outcome,) = jobs.evaluate_all(engine, now=at, sources=sources, concurrency=4)
        with Session(engine) as session:
            opened = session.exec(
                select(SLORecord.name, BreachRecord.severity).join(
                    BreachRecord, col(BreachRecord.slo_id) == SLORecord.id
                )
            ).all()
    finally:
        sources.close()
        engine.dispose()
    assert outcome.status is not None
    assert outcome.status.burn_rates[timedelta(minutes=5)] == pytest.approx(burns[5], rel=0.01)
    assert outcome.status.burn_rates[timedelta(hours=1)] == pytest.approx(burns[60], rel=0.01)
    assert [a["severity"] for a in outcome.alerts] == ["page"]
    assert list(opened) == [("checkout-journey", "page")]  # its own breach; none of a part

    # `replay` pages at the first minute the hand-computed composite burns cross a page tier
    def burn(end: datetime, minutes: int) -> float:
        return 1.5 * error_ratio(history, end - minutes * MINUTE, end, timedelta(0)) / 0.001

    start = at - 40 * MINUTE
    minutes = [start + i * MINUTE for i in range(41)]
    pages = [t for t in minutes if (burn(t, 5) > 14.4 < burn(t, 60)) or (burn(t, 30) > 6 < burn(t, 360))]
    assert pages and pages[0] > start
    code, out, err = run("replay", "--from", start.isoformat(), "--to", at.isoformat(), "--json")
    assert code == 0, err
    fired = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    fired = [t for t in fired if t["severity"] == "page" and t["event"] == "firing"]
    assert fired and fired[0]["slo"] == "checkout-journey"
    assert fired[0]["at"] == pages[0].isoformat().replace("+00:00", "Z")
    assert fired[0]["burn_rates"]["5m"] == pytest.approx(burn(pages[0], 5), rel=0.01)
    # a part named replays its composite (the part raises no alert of its own) and says so
    code, by_part, err = run(
        "replay",
        "--from",
        start.isoformat(),
        "--to",
        at.isoformat(),
        "--slo",
        "checkout-journey[live]",
        "--json",
    )
    assert code == 0, err
    assert "slo-bot: checkout-journey[live] is a part of the composite SLO checkout-journey" in err
    assert by_part == out


def test_a_part_whose_source_fails_fails_the_composite_tick_and_stores_nothing(
    run: Cli, tmp_path: Path, prometheus_fixed: str, prom_history_fixed: History, database_url: str
) -> None:
    history = prom_history_fixed
    # the `yesterday` part reads a Prometheus nobody listens on
    text = (
        CATALOGUE.replace("GOOD", history.good_selector)
        .replace("TOTAL", history.total_selector)
        .replace("BAD", history.bad_selector)
        .replace("metricSourceRef: prom, spec: {query: 'sum", "metricSourceRef: down, spec: {query: 'sum")
        + "---\napiVersion: openslo/v1\nkind: DataSource\nmetadata: {name: down}\n"
        "spec: {type: Prometheus, connectionDetails: {url: 'http://127.0.0.1:9', timeout: 2s}}\n"
    )
    path = tmp_path / "journey.yaml"
    path.write_text(text)
    assert run("apply", str(path), prometheus=prometheus_fixed)[0] == 0
    engine = db.make_engine(database_url)
    sources = SourcePool(max_connections=4)
    try:
        (outcome,) = jobs.evaluate_all(engine, now=history.end, sources=sources, concurrency=4)
        with Session(engine) as session:
            stored = session.exec(select(BucketRecord)).all()
            record = session.exec(select(SLORecord).where(SLORecord.name == "checkout-journey")).one()
    finally:
        sources.close()
        engine.dispose()
    assert outcome.error_kind == "source_unavailable" and "127.0.0.1:9" in (outcome.error or "")
    assert stored == []  # not the reachable part's buckets either: the parts move together
    assert record.failing_since is not None and record.covered_to is None


def test_check_of_a_part_checks_its_composite_and_shows_both(
    run: Cli, catalogue: Path, prometheus_fixed: str, prom_history_fixed: History
) -> None:
    history = prom_history_fixed
    at = history.end
    assert run("apply", str(catalogue), prometheus=prometheus_fixed)[0] == 0
    note = (
        "slo-bot: checkout-journey[yesterday] is a part of the composite SLO checkout-journey: "
        "checked checkout-journey, whose parts are evaluated together"
    )
    # as of a past moment: the composite's weighted figures and the part's own, from the true counts
    code, out, err = run(
        "check",
        "--at",
        at.isoformat(),
        "--slo",
        "checkout-journey[yesterday]",
        "--json",
        prometheus=prometheus_fixed,
    )
    assert code == 0, err
    assert note in err.splitlines()
    rows = {r["slo"]: r for r in json.loads(out)}
    assert list(rows) == ["checkout-journey", "checkout-journey[yesterday]"]
    _assert_weighted(rows["checkout-journey"], history, at)
    part = rows["checkout-journey[yesterday]"]
    good, total = history.good(at - 31 * DAY, at - DAY), history.total(at - 31 * DAY, at - DAY)
    assert part["objective"] == 0.99
    assert part["sli"] == pytest.approx(good / total, abs=1e-5)
    assert part["budget"]["consumed"] == pytest.approx((1 - good / total) / 0.01, rel=0.01)
    burn_1h = error_ratio(history, at - 60 * MINUTE, at, DAY) / 0.01
    assert part["burn_rates"]["1h"] == pytest.approx(burn_1h, rel=0.01, abs=1e-3)
    assert part["alerts"] == []  # the composite alone alerts

    # now: the composite is evaluated and stored with its parts; what is printed is what was stored
    code, out, err = run(
        "check", "--slo", "checkout-journey[yesterday]", "--json", prometheus=prometheus_fixed
    )
    assert code == 0, err
    assert note in err.splitlines()
    checked = {r["slo"]: r for r in json.loads(out)}
    assert list(checked) == ["checkout-journey", "checkout-journey[yesterday]"]
    code, out, err = run("status", "--json")
    assert code == 0, err
    shown = {r["slo"]: r for r in json.loads(out)}
    for name, row in checked.items():
        assert (row["evaluated_at"], row["sli"], row["budget"]) == (
            shown[name]["evaluated_at"],
            shown[name]["sli"],
            shown[name]["budget"],
        ), name
    # and as a table, both lines
    code, out, _ = run("check", "--slo", "checkout-journey[yesterday]", prometheus=prometheus_fixed)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:3]] == [
        "checkout-journey",
        "checkout-journey[yesterday]",
    ]

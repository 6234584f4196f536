"""Fault: `check --at` on a live database gave rolled-up numbers, moved live alerts and became status.

A past moment older than the 1-minute tier was summed from hourly rollups (a bucket cut by the
window's start or end counted whole), its evaluation resolved the live page, and `status` then
showed the past. Now `check --at` gives the numbers a fresh database gives, and changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import jobs
from bot.sources.pool import SourcePool
from bot.store import db
from tests.faults import catalogues as faults
from tests.promharness import DAY, History

HOUR = timedelta(hours=1)


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("SLO_BOT_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=300
    )


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    return dict(row)


def _alerts(url: str) -> list[tuple[Any, ...]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT key, state, fired_at, resolved_at FROM alert ORDER BY id")
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def _moments(h: History) -> list[datetime]:
    """Past moments whose windows meet the tier edges (history ending at conftest's FIXED_END, so
    every run meets the same ones, whatever the time of day)."""
    return [
        # in the gap two days ago (1-minute tier; the counter reset in the 5-minute tier), off the hour
        h.end - 2 * DAY + timedelta(minutes=17),
        # a day after the past incident (its 30 days start in the hourly tier), off the hour: the
        # gap is in the 5-minute tier and ends inside a 5-minute step
        h.past_incident[1] + DAY + timedelta(minutes=31),
        # the 1-minute tier starts inside the gap
        h.gap[0] + 7 * HOUR + timedelta(minutes=15),
        # on the hour: no window start cuts a bucket
        h.past_incident[1] + DAY + timedelta(minutes=15),
    ]


def test_check_at_a_past_moment_is_exact_and_changes_nothing(
    tmp_path: Path, database_url: str, prometheus_fixed: str, prom_history_fixed: History
) -> None:
    h, prometheus = prom_history_fixed, prometheus_fixed
    assert h.gap[1].minute % 5, "the gap must end inside a 5-minute step"
    moments = _moments(h)
    assert moments[3].minute == 0 and moments[2] - 7 * HOUR < h.gap[1]
    catalogue = tmp_path / "slos.yaml"
    catalogue.write_text(
        faults.catalogue(
            faults.datasource("prom", prometheus),
            faults.ratio_slo("api-availability", "prom", h.good_selector, h.total_selector),
        )
    )
    fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    for url in (database_url, fresh_url):
        assert _cli(url, "apply", str(catalogue)).returncode == 0
    # the live database: the scheduler's evaluation at the end of the history (in process, at that
    # instant, as `slo-bot run` evaluated then): buckets rolled up, a page open for the ongoing incident
    engine = db.make_engine(database_url)
    sources = SourcePool(max_connections=4)
    try:
        (live,) = jobs.evaluate_all(engine, now=h.end, sources=sources, concurrency=4)
    finally:
        sources.close()
        engine.dispose()
    assert [a["severity"] for a in live.alerts] == ["page"]
    status_before = _cli(database_url, "status", "--json").stdout
    alerts_before = _alerts(database_url)

    for at in moments:
        stamp = at.isoformat()
        on_live = _json(_cli(database_url, "check", "--at", stamp, "--json"))
        on_fresh = _json(_cli(fresh_url, "check", "--at", stamp, "--json"))
        for key in ("sli", "good", "total", "budget", "burn_rates", "state", "evaluated_at"):
            assert on_live[key] == on_fresh[key], (at, key)
        good, total = h.good(at - 30 * DAY, at), h.total(at - 30 * DAY, at)
        assert on_live["total"] == pytest.approx(total, rel=1e-6)
        assert on_live["sli"] == pytest.approx(good / total, abs=1e-6)
        assert on_live["alerts"] == on_fresh["alerts"]
        assert "page" not in [a["severity"] for a in on_live["alerts"]]  # nothing burned fast then

    # the live page and what status shows are untouched
    assert _alerts(database_url) == alerts_before
    assert _cli(database_url, "status", "--json").stdout == status_before
    assert json.loads(status_before)[0]["evaluated_at"] == h.end.isoformat().replace("+00:00", "Z")


def test_a_fresh_evaluation_at_a_past_moment_is_exact(
    tmp_path: Path, prometheus_fixed: str, prom_history_fixed: History
) -> None:
    """The live path (fetch, store, sum in the database) at the same moments as `check --at`.

    Its period starts at a minute inside an hourly bucket, which counts in proportion (README: the
    live store keeps the SLO period's oldest hour as one bucket); every other event counts exactly."""
    h = prom_history_fixed
    catalogue = tmp_path / "slos.yaml"
    catalogue.write_text(
        faults.catalogue(
            faults.datasource("prom", prometheus_fixed),
            faults.ratio_slo("api-availability", "prom", h.good_selector, h.total_selector),
        )
    )
    for i, at in enumerate(_moments(h)):
        url = f"sqlite:///{tmp_path / f'fresh-{i}.db'}"
        assert _cli(url, "apply", str(catalogue)).returncode == 0
        engine = db.make_engine(url)
        sources = SourcePool(max_connections=4)
        try:
            (outcome,) = jobs.evaluate_all(engine, now=at, sources=sources, concurrency=4)
        finally:
            sources.close()
            engine.dispose()
        assert outcome.status is not None, outcome.error
        start = at - 30 * DAY
        hour = start.replace(minute=0)
        share = (hour + HOUR - start) / HOUR
        for counted, truth in ((outcome.status.total, h.total), (outcome.status.good, h.good)):
            expected = (
                truth(start, at) if share == 1 else truth(hour + HOUR, at) + share * truth(hour, hour + HOUR)
            )
            assert counted == pytest.approx(expected, rel=1e-9), at

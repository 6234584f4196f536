"""Session fixtures shared by the test suite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.promharness import (
    DAY,
    History,
    PrometheusServer,
    build_tsdb,
    tools_problem,
)


@pytest.fixture(scope="session")
def prom_history() -> History:
    """36 days of per-minute true counts ending a few minutes before now (tests/promharness.py)."""
    return History.generate(days=36)


# A fixed end whose minute is off the 5-minute grid: the scrape gap (end - 2 days, 30 minutes) then
# ends inside a 5-minute step and crosses an hour, the tier edges a history ending "now" hits only at
# some times of day. Retention counts back from the newest block, so a fixed past end is served whole.
FIXED_END = datetime(2026, 11, 30, 15, 48, tzinfo=UTC)


@pytest.fixture(scope="session")
def prom_history_fixed() -> History:
    """36 days of per-minute true counts ending at FIXED_END: tests that must not depend on the clock."""
    return History.generate(end=FIXED_END, days=36)


def _serve(
    history: History,
    factory: pytest.TempPathFactory,
    name: str,
    *,
    since: datetime | None = None,
    retention: str = "3650d",
) -> Iterator[str]:
    problem = tools_problem()
    if problem:  # fail, not skip: CI installs prometheus, so a missing one must be seen
        pytest.fail(problem, pytrace=False)
    root = factory.mktemp(name)
    data = build_tsdb(history, root / "data", since=since)
    server = PrometheusServer(data, retention=retention)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def prometheus(prom_history: History, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Prometheus serving the whole `prom_history`."""
    yield from _serve(prom_history, tmp_path_factory, "prometheus")


@pytest.fixture(scope="session")
def prometheus_short(prom_history: History, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Prometheus holding only the last 2 days of `prom_history`, retention 2d."""
    yield from _serve(
        prom_history,
        tmp_path_factory,
        "prometheus-short",
        since=prom_history.end - 2 * DAY,
        retention="2d",
    )


@pytest.fixture(scope="session")
def prometheus_fixed(prom_history_fixed: History, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Prometheus serving the whole `prom_history_fixed`."""
    yield from _serve(prom_history_fixed, tmp_path_factory, "prometheus-fixed")

"""Fixtures for the Slack tests: a fake Slack workspace, the bot as a process, its database, and a
Prometheus whose history ends in an incident going on now."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fakeslack import FakeSlack
from tests.promharness import History, PrometheusServer, build_tsdb
from tests.slack.harness import ALERTS, RESPONDER, SECOND, BotProcess, Store


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """A fake workspace: #alerts (the responder and a second member) and #search."""
    with FakeSlack() as fake:
        fake.add_channel(ALERTS, "alerts", [RESPONDER, SECOND])
        fake.add_channel("C0SEARCH", "search", [SECOND])
        yield fake


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    found = Store(database_url)
    yield found
    found.close()


BotFactory = Callable[..., BotProcess]


@pytest.fixture
def start_bot(tmp_path: Path, database_url: str, slack: FakeSlack) -> Iterator[BotFactory]:
    """`start_bot(catalogue_text, env=..., name=...)`: a started `slo-bot run`; stopped at the end."""
    started: list[BotProcess] = []

    def start(catalogue_text: str | None = None, **options: Any) -> BotProcess:
        bot = BotProcess(tmp_path, database_url, slack, catalogue_text, **options)
        started.append(bot)
        return bot.start()

    yield start
    for bot in started:
        bot.close()
        print(f"--- {bot.log_path.name}\n{bot.log()}")  # shown when the test fails


@pytest.fixture
def live_prometheus(tmp_path: Path) -> Iterator[tuple[str, History]]:
    # samples run 15 minutes past now, so the incident (the history's last 20 minutes) is on now
    end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=15)
    history = History.generate(end=end, days=2)
    with PrometheusServer(build_tsdb(history, tmp_path / "tsdb")) as server:
        yield server.url, history

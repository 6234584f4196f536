"""A composite SLO is one SLO wherever SLOs are counted or listed (its parts are rows of their own in
the store): the fleet's count in `/healthz`, and the weekly digest of a channel. Store on SQLite and
PostgreSQL."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from bot import cli, health, jobs
from bot.slack import digests as slack_digests
from bot.sources.pool import SourcePool
from bot.store import digests, repo
from bot.store import groups as group_store
from bot.store.models import OutboxRecord
from tests.test_digest import BERLIN_MONDAY_9, MONDAY_DUE, SET_AT
from tests.test_metrics import JOURNEY


def _evaluated(tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any) -> None:
    """The two-part journey of tests.test_metrics applied and evaluated an hour before the digest is due."""
    path = tmp_path / "journey.yaml"
    path.write_text(JOURNEY)
    monkeypatch.setenv("DATABASE_URL", database_url)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(["apply", str(path)]) == 0
    sources = SourcePool()
    try:
        (outcome,) = jobs.evaluate_all(
            engine, now=MONDAY_DUE - timedelta(hours=1), sources=sources, concurrency=2
        )
    finally:
        sources.close()
    assert outcome.name == "metrics-journey" and len(outcome.parts) == 2


def test_the_fleet_counts_a_composite_once_and_each_member_of_a_grouped_slo(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    _evaluated(tmp_path, database_url, engine, monkeypatch)
    with Session(engine) as session:  # and a grouped SLO with two routes
        repo.upsert_slo(
            session=session,
            name="routes",
            service="shop",
            documents=[{"kind": "SLO", "metadata": {"name": "routes"}}],
            data_checksum="d",
            now=SET_AT,
            group_by=["route"],
        )
        session.flush()
        grouped = repo.get_slo(session=session, name="routes")
        assert grouped is not None
        for route in ("/cart", "/pay"):
            group_store.add_member(
                session=session, definition=grouped, name=f"routes[{route}]", key=[route], now=SET_AT
            )
        session.commit()
    # what `/healthz` says: the journey, /cart and /pay
    total, failing = health.probe_database(engine)
    assert (total, failing) == (3, {})


def test_a_weekly_digest_lists_a_composite_as_one_slo(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    _evaluated(tmp_path, database_url, engine, monkeypatch)
    with Session(engine) as session:
        digests.set_schedule(
            session=session,
            channel="C0DIGEST",
            schedule=BERLIN_MONDAY_9.text(),
            origin=digests.SLACK,
            by="U1",
            now=SET_AT,
        )
        session.commit()
    sent = slack_digests.send_due(
        engine, MONDAY_DUE + timedelta(seconds=30), "a", "C0DIGEST", slack_digests.queue
    )
    assert sent == ["C0DIGEST"]
    with Session(engine) as session:
        posts = {r.kind: r for r in session.exec(select(OutboxRecord))}
        journey = repo.get_slo(session=session, name="metrics-journey")
    text = posts["channel_post"].payload
    assert "`metrics-journey`" in text and "metrics-journey[" not in text
    spec = json.loads(posts["chart"].payload)
    assert journey is not None and spec["digest"] == [journey.id]
    assert spec["title"] == "Budget left this week: 1 SLO(s)"

"""Refunds against a real Prometheus holding a history with known true counts: the past incident
(45 minutes of 20 % errors) opens a page breach that resolves; refunded, the SLO gets back exactly
what the breach spent (within 1 % of the true counts without its span), and undone, exactly what it
had before."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot import episodes
from bot.catalogue.stored import slo_of
from bot.store import db, repo
from bot.store import refunds as refund_store
from bot.store.models import BreachRecord
from tests.promharness import DAY, MINUTE, History
from tests.test_cli_prometheus import Cli, catalogue, run  # noqa: F401  (fixtures)
from tests.test_maintenance_prometheus import TARGET, _evaluate

HOUR = 60 * MINUTE


def _breach(url: str) -> BreachRecord:
    engine = db.make_engine(url)
    try:
        with Session(engine) as session:
            record = repo.get_slo(session=session, name="api-availability")
            assert record is not None
            (breach,) = session.exec(select(BreachRecord).where(BreachRecord.slo_id == record.id)).all()
            session.expunge(breach)
            return breach
    finally:
        engine.dispose()


def _remaining(history: History, at: datetime, span: tuple[datetime, datetime] | None) -> float:
    start = at - 30 * DAY
    good, total = history.good(start, at), history.total(start, at)
    if span is not None:
        good -= history.good(*span)
        total -= history.total(*span)
    return 1 - ((total - good) / total) / (1 - TARGET)


def test_a_refund_gives_back_exactly_what_the_breach_spent_and_is_undone_exactly(
    run: Cli,  # noqa: F811
    catalogue: Path,  # noqa: F811
    prometheus: str,
    prom_history: History,
) -> None:
    assert run("apply", str(catalogue), prometheus=prometheus)[0] == 0
    first, last = prom_history.past_incident
    at = first + 30 * MINUTE
    assert "page" in [a["severity"] for a in _evaluate(run.database_url, at).alerts]
    while _breach(run.database_url).state == "firing":  # evaluated every 5 minutes until it ends
        at += 5 * MINUTE
        assert at < last + 6 * HOUR, "the page never resolved"
        _evaluate(run.database_url, at)
    breach = _breach(run.database_url)
    assert breach.spent_ratio is not None and breach.spent_ratio > 0
    at += 10 * MINUTE
    before = _evaluate(run.database_url, at).status
    assert before is not None and before.remaining_ratio is not None
    assert before.remaining_ratio == pytest.approx(_remaining(prom_history, at, None), rel=0.01)

    engine = db.make_engine(run.database_url)
    with Session(engine) as session:
        record = repo.get_slo(session=session, name="api-availability")
        assert record is not None
        stored = session.get(BreachRecord, breach.id)
        assert stored is not None
        span = episodes.episode_span(slo_of(record), stored)
        assert refund_store.refund(session=session, breach=stored, span=span, by="U1", why="probe", now=at)
        session.commit()
    refunded = _evaluate(run.database_url, at).status
    assert refunded is not None and refunded.remaining_ratio is not None
    # what the breach spent comes back, measured on the true counts without its span
    assert refunded.remaining_ratio == pytest.approx(_remaining(prom_history, at, span), rel=0.01)
    # exactly its span's events leave the budget: its failures, measured as its cost was
    assert before.total - refunded.total == pytest.approx(prom_history.total(*span), rel=0.01)
    bad_back = (before.total - before.good) - (refunded.total - refunded.good)
    assert bad_back == pytest.approx(prom_history.bad(*span), rel=0.01)
    assert bad_back / ((1 - TARGET) * before.total) == pytest.approx(breach.spent_ratio, rel=0.01)
    assert refunded.remaining_ratio > before.remaining_ratio
    assert _evaluate(run.database_url, at).alerts == []  # a refund opens nothing

    with Session(engine) as session:
        assert breach.id is not None
        assert refund_store.undo(session=session, breach_id=breach.id, by="U2", now=at) is not None
        session.commit()
    engine.dispose()
    undone = _evaluate(run.database_url, at).status
    assert undone is not None
    assert undone.remaining_ratio == pytest.approx(before.remaining_ratio, rel=1e-9, abs=1e-12)
    assert (undone.good, undone.total) == (before.good, before.total)

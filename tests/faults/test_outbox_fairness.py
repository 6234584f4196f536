"""The outbox never blocks on one destination: entries are taken by due time, so a pile of entries
that wait (a silenced SLO, a tool's Retry-After, a backoff) never holds back a due one elsewhere.

On SQLite and PostgreSQL, with the real delivery workers; only the call to Slack or to the tool is
replaced by a recorder.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from slack_sdk import WebClient
from sqlalchemy import Engine, insert, text
from sqlmodel import Session, col, select

from bot.incidents.delivery import IncidentDelivery
from bot.slack.delivery import SlackDelivery
from bot.store import outbox, repo
from bot.store.models import BreachRecord, OutboxRecord

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PILE = 1_000


class RecordingSlack(SlackDelivery):
    """Slack's worker, delivering by noting the entry down."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, WebClient(token="xoxb-unused"), clock=lambda: NOW)
        self.sent: list[int] = []

    def _deliver(self, entry_id: int) -> bool:
        return _settle(self.engine, entry_id, self.sent)


class RecordingTools(IncidentDelivery):
    """The incident tools' worker, delivering by noting the entry down."""

    def __init__(self, engine: Engine, client: httpx.Client) -> None:
        super().__init__(engine, client, clock=lambda: NOW)
        self.sent: list[int] = []

    def _deliver(self, entry_id: int) -> bool:
        return _settle(self.engine, entry_id, self.sent)


def _settle(engine: Engine, entry_id: int, sent: list[int]) -> bool:
    with Session(engine) as session:
        entry = session.get(OutboxRecord, entry_id)
        assert entry is not None and entry.status == "pending"
        entry.status, entry.done_at = "done", NOW
        session.add(entry)
        session.commit()
    sent.append(entry_id)
    return True


def _breach(session: Session, slo: str) -> int:
    """A firing page breach of a new SLO `slo`: what one message and one incident are about."""
    repo.upsert_slo(
        session=session,
        name=slo,
        service="svc",
        documents=[{"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": slo}}],
        data_checksum="d",
        now=NOW,
    )
    record = repo.get_slo(session=session, name=slo)
    assert record is not None
    breach = BreachRecord(
        slo_id=record.id or 0,
        kind="burn",
        severity="page",
        peak="page",
        state="firing",
        opened_at=NOW,
        burn_rates=json.dumps({"1h": 20.0}),
        reason="burning",
    )
    session.add(breach)
    session.flush()
    return breach.id or 0


def _pile(engine: Engine, rows: list[dict[str, Any]]) -> None:
    base = {"payload": "{}", "status": "pending", "attempts": 0, "in_flight": False, "created_at": NOW}
    with Session(engine) as session:
        session.execute(insert(OutboxRecord), [{**base, **row} for row in rows])
        session.commit()


def _queue(engine: Engine, **fields: Any) -> int:
    with Session(engine) as session:
        entry = outbox.enqueue(session=session, now=NOW, **fields)
        session.commit()
        return entry.id or 0


def test_a_due_page_goes_out_in_the_first_pass_behind_a_thousand_deferred_posts(engine: Engine) -> None:
    """A silenced SLO's posts wait for the silence's end (and a backed-off one for its retry):
    a page for another channel, queued after them, still goes out at once."""
    with Session(engine) as session:
        quiet, loud = _breach(session, "quiet"), _breach(session, "loud")
        session.commit()
    later = NOW + timedelta(hours=2)
    _pile(
        engine,
        [{"kind": "alert_message", "breach_id": None, "channel": "C0QUIET", "next_attempt_at": later}]
        * (PILE // 2)
        # one breach's own order: its first post waits, so the ones queued behind it wait too
        + [{"kind": "alert_message", "breach_id": quiet, "channel": "C0QUIET", "next_attempt_at": later}]
        + [{"kind": "thread_note", "breach_id": quiet, "channel": "C0QUIET", "next_attempt_at": NOW}]
        * (PILE // 2 - 1),
    )
    page = _queue(engine, kind="alert_message", breach_id=loud, channel="C0PAGES")
    note = _queue(engine, kind="thread_note", breach_id=loud, channel="C0PAGES")

    worker = RecordingSlack(engine)
    assert worker.deliver_due() == 2
    assert worker.sent == [page, note]  # in their order, in one pass
    with Session(engine) as session:
        assert outbox.next_due_at(session=session, kinds=("alert_message", "thread_note")) == later
        assert outbox.pending_count(session=session, kinds=("alert_message", "thread_note")) == PILE


def test_a_tool_asking_to_wait_holds_back_only_its_own_calls(engine: Engine) -> None:
    """PagerDuty answered 429 with Retry-After: its thousand queued calls wait, Opsgenie's go now."""
    with Session(engine) as session:
        breach = _breach(session, "checkout")
        session.commit()
    _pile(engine, [{"kind": "incident", "breach_id": None, "channel": "pd", "next_attempt_at": NOW}] * PILE)
    genie = _queue(engine, kind="incident", breach_id=breach, channel="genie")

    with httpx.Client() as client:
        worker = RecordingTools(engine, client)
        worker.paused_targets["pd"] = NOW + timedelta(seconds=30)
        assert worker.deliver_due() == 1
        assert worker.sent == [genie]
        worker.paused_targets.clear()  # the Retry-After has passed
        assert worker.deliver_due() == PILE


def test_the_due_query_is_served_by_the_index(engine: Engine) -> None:
    """`status = pending AND next_attempt_at <= now`, in due order, reads `ix_outbox_due`."""
    query = (
        select(OutboxRecord.id)
        .where(OutboxRecord.status == "pending", col(OutboxRecord.next_attempt_at) <= NOW)
        .order_by(col(OutboxRecord.next_attempt_at))
    )
    with engine.connect() as conn:
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        if engine.dialect.name == "sqlite":
            plan = " ".join(str(row) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
        else:
            conn.execute(text("SET enable_seqscan = off"))  # a tiny table is read whole otherwise
            plan = " ".join(str(row) for row in conn.execute(text(f"EXPLAIN {compiled}")))
    assert "ix_outbox_due" in plan, plan

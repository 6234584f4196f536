"""Opsgenie's webhook deliveries act once each, by Opsgenie's own identifiers (the alert's id, the
action and when Opsgenie updated the alert for it), like PagerDuty's event id: a retry or a replay
is ignored, two different events on the same alert are both shown, and a delivery older than the
replay window is ignored even after its id is forgotten."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from bot.incidents.inbound import Webhooks
from tests.incidents.harness import T0, Bot, fake, make_bot

__all__ = ["fake", "make_bot"]  # the incident flow's fixtures
TOKEN = "genie-webhook-token"
HEADERS = {"x-slo-bot-token": TOKEN}


def _delivery(
    action: str,
    *,
    updated_ns: int | None,
    note: str | None = None,
    key: str = "slo-bot/checkout-availability/1",
    **alert: Any,
) -> bytes:
    """An Opsgenie webhook delivery about the alert whose alias is `key` (a breach's dedup key)."""
    body: dict[str, Any] = {
        "action": action,
        "alert": {
            "alertId": "70413a06-38d6-4c85-92b8-5ebc900d42e2",
            "alias": key,
            "tinyId": "1791",
            "message": "PAGE: checkout-availability (checkout)",
            "username": "ana@example.com",
            "createdAt": int(T0.timestamp() * 1000),
            **({"updatedAt": updated_ns} if updated_ns is not None else {}),
            **({"note": note} if note is not None else {}),
            **alert,
        },
        "source": {"name": "", "type": "web"},
        "integrationName": "slo-bot",
        "integrationType": "Webhook",
    }
    return json.dumps(body).encode()


def _fired(make_bot: Any) -> tuple[Bot, Webhooks]:
    bot: Bot = make_bot(targets="genie")
    bot.tick(T0)
    bot.run_until(T0 + timedelta(minutes=3))
    assert bot.alert().state == "firing" and bot.breach().state == "firing"
    return bot, Webhooks(
        bot.engine, clock=lambda: bot.now, conversation=bot.conversation, opsgenie_token=TOKEN
    )


def _ns(at: Any) -> int:
    return int(at.timestamp()) * 1_000_000_000


def test_opsgenie_events_act_once_each_by_their_own_identifiers(make_bot: Any) -> None:
    bot, hooks = _fired(make_bot)
    key = bot.key()
    # two notes on the same alert, in deliveries without updatedAt: two events, both shown
    first = _delivery("AddNote", updated_ns=None, note="rolling back", key=key)
    second = _delivery("AddNote", updated_ns=None, note="rollback done", key=key)
    assert hooks.opsgenie(HEADERS, first) == (200, "applied: note")
    assert hooks.opsgenie(HEADERS, second) == (200, "applied: note")
    assert hooks.opsgenie(HEADERS, first) == (200, "ignored: already handled")  # a retry of one
    notes = [n for n in bot.notes() if n.startswith("Note in Opsgenie")]
    assert notes == [
        "Note in Opsgenie by ana@example.com: rolling back",
        "Note in Opsgenie by ana@example.com: rollback done",
    ]

    # an acknowledgement Opsgenie made two days ago, delivered (replayed) now: ignored
    old = _delivery("Acknowledge", updated_ns=_ns(bot.now - timedelta(days=2)), key=key)
    assert hooks.opsgenie(HEADERS, old) == (200, "ignored: older than the replay window")
    assert bot.breach().acknowledged_by is None
    fresh = _delivery("Acknowledge", updated_ns=_ns(bot.now), key=key)
    assert hooks.opsgenie(HEADERS, fresh) == (200, "applied: acknowledged")
    assert hooks.opsgenie(HEADERS, fresh) == (200, "ignored: already handled")
    assert bot.breach().acknowledged_by == "ana@example.com (Opsgenie)"


def test_an_infinite_or_huge_opsgenie_time_is_refused_at_once() -> None:
    """JSON's `Infinity` (Python reads it) once looped forever dividing by 1,000, holding a web worker;
    an integer past any float ended in a 500. Both are ignored as times: the delivery is judged by its
    body alone, at once."""
    import threading

    from bot.incidents.inbound import parse_opsgenie

    for raw in (b"Infinity", b"1e999", b"-Infinity", str(10**400).encode()):
        body = _delivery("AddNote", updated_ns=0, note="hello").replace(
            b'"updatedAt": 0', b'"updatedAt": ' + raw
        )
        assert raw in body
        result: list[Any] = []
        worker = threading.Thread(
            target=lambda b=body, out=result: out.append(parse_opsgenie(b)), daemon=True
        )
        worker.start()
        worker.join(timeout=5)
        assert not worker.is_alive(), raw  # it returned
        assert result and result[0].occurred_at is None, raw

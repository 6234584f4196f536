"""The tools' webhooks back into slo-bot: verified, applied once, and shown in the breach's thread."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import Session

from bot.incidents.inbound import Webhooks, pagerduty_signature
from bot.incidents.sync import incident_line
from bot.store.models import BreachRecord
from tests.fakeincidents import FakeIncidents
from tests.incidents.harness import T0, Bot

SECRET = "pd-webhook-secret"
TOKEN = "genie-webhook-token"


def pd_event(
    event_type: str, event_id: str, *, key: str, at: Any = None, who: str | None = "Jane Doe", **data: Any
) -> bytes:
    """A PagerDuty v3 webhook body, as PagerDuty documents it; `key`: the breach's dedup key."""
    incident = {
        "id": "Q1P3AHC",
        "type": "incident",
        "self": "https://api.pagerduty.com/incidents/Q1P3AHC",
        "html_url": "https://acme.pagerduty.com/incidents/Q1P3AHC",
        "number": 42,
        "status": event_type.removeprefix("incident."),
        "incident_key": key,
        "title": "PAGE: checkout-availability (checkout)",
        "assignees": [{"id": "PUSER1", "type": "user_reference", "summary": "Ravi Kumar"}],
        **data,
    }
    agent = {"id": "PAGENT1", "type": "user_reference", "summary": who} if who else None
    return json.dumps(
        {
            "event": {
                "id": event_id,
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": (at or T0).isoformat().replace("+00:00", "Z"),
                "agent": agent,
                "client": None,
                "data": incident,
            }
        }
    ).encode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"x-pagerduty-signature": pagerduty_signature(secret, body), "content-type": "application/json"}


def fired(make_bot: Any, targets: str = "pd, genie") -> tuple[Bot, Webhooks]:
    bot: Bot = make_bot(targets=targets)
    bot.tick(T0)
    bot.run_until(T0 + timedelta(minutes=3))
    assert bot.alert().state == "firing" and bot.breach().severity == "page"
    hooks = Webhooks(
        bot.engine,
        clock=lambda: bot.now,
        conversation=bot.conversation,
        pagerduty_secret=SECRET,
        opsgenie_token=TOKEN,
    )
    return bot, hooks


def test_an_acknowledgement_in_pagerduty_shows_in_slack_and_reaches_the_other_tools(
    make_bot: Any, fake: FakeIncidents
) -> None:
    bot, hooks = fired(make_bot)
    key = bot.key()
    status, text = hooks.pagerduty(signed(body := pd_event("incident.triggered", "E1", key=key)), body)
    assert (status, text) == (200, "applied: triggered")
    assert bot.incidents()[0].url == "https://acme.pagerduty.com/incidents/Q1P3AHC"
    assert bot.incidents()[0].number == "42"

    body = pd_event("incident.acknowledged", "E2", key=key)
    assert hooks.pagerduty(signed(body), body) == (200, "applied: acknowledged")
    assert bot.breach().acknowledged_by == "Jane Doe (PagerDuty)"
    assert "Acknowledged in PagerDuty by Jane Doe." in bot.notes()
    bot.deliver()
    genie = fake.incident("opsgenie", key)
    assert genie is not None and genie.status == "acknowledged"  # the other tool follows
    assert "acknowledge" not in [c.json["event_action"] for c in fake.calls_of("pagerduty")]  # not echoed

    # the same delivery again (PagerDuty retries; an attacker replays): nothing more happens
    entries = len(bot.outbox())
    assert hooks.pagerduty(signed(body), body) == (200, "ignored: already handled")
    assert len(bot.outbox()) == entries

    # reassigned, then resolved in PagerDuty while the burn goes on
    body = pd_event("incident.reassigned", "E3", key=key)
    assert hooks.pagerduty(signed(body), body)[0] == 200
    assert "Reassigned in PagerDuty to Ravi Kumar by Jane Doe." in bot.notes()
    body = pd_event("incident.resolved", "E4", key=key)
    assert hooks.pagerduty(signed(body), body) == (200, "applied: resolved")
    assert any(n.startswith("Resolved in PagerDuty by Jane Doe.") for n in bot.notes())
    assert [i.state for i in bot.incidents()] == ["resolved", "acknowledged"]
    assert bot.breach().state == "firing"  # the SLO decides when the breach ends


def test_a_forged_stale_or_garbled_webhook_changes_nothing(make_bot: Any, fake: FakeIncidents) -> None:
    bot, hooks = fired(make_bot)
    key = bot.key()
    before = (bot.breach().acknowledged_by, len(bot.outbox()), [i.state for i in bot.incidents()])
    body = pd_event("incident.acknowledged", "F1", key=key)
    assert hooks.pagerduty(signed(body, "not-the-secret"), body) == (401, "bad signature")
    assert hooks.pagerduty({}, body) == (401, "bad signature")
    tampered = body.replace(b"Jane Doe", b"Mallory")
    assert hooks.pagerduty(signed(body), tampered) == (401, "bad signature")
    old = pd_event("incident.acknowledged", "F2", key=key, at=T0 - timedelta(days=2))
    assert hooks.pagerduty(signed(old), old) == (200, "ignored: older than the replay window")
    garbage = b"{not json"
    assert hooks.pagerduty(signed(garbage), garbage)[0] == 400
    other = pd_event("incident.acknowledged", "F3", key="somebody-elses-key", id="QOTHER")
    assert hooks.pagerduty(signed(other), other) == (200, "ignored: not an incident slo-bot opened")
    after = (bot.breach().acknowledged_by, len(bot.outbox()), [i.state for i in bot.incidents()])
    assert after == before
    # during a secret rotation PagerDuty signs with both: one valid signature is enough
    both = {"x-pagerduty-signature": "v1=" + "0" * 64 + ", " + pagerduty_signature(SECRET, body)}
    assert hooks.pagerduty(both, body) == (200, "applied: acknowledged")


def test_an_unacknowledgement_in_pagerduty_takes_the_slack_acknowledgement_back(make_bot: Any) -> None:
    bot, hooks = fired(make_bot, targets="pd")
    key = bot.key()
    body = pd_event("incident.acknowledged", "U1", key=key)
    hooks.pagerduty(signed(body), body)
    assert bot.breach().acknowledged_by
    body = pd_event("incident.unacknowledged", "U2", key=key, who=None)  # its acknowledgement timed out
    assert hooks.pagerduty(signed(body), body) == (200, "applied: unacknowledged")
    assert bot.breach().acknowledged_by is None
    assert "Unacknowledged in PagerDuty (its acknowledgement timed out)." in bot.notes()


def test_opsgenie_webhooks_need_the_token_and_act_once(make_bot: Any, fake: FakeIncidents) -> None:
    bot, hooks = fired(make_bot)
    key = bot.key()
    body = json.dumps(
        {
            "action": "Acknowledge",
            "alert": {
                "alertId": "70413a06-38d6-4c85-92b8-5ebc900d42e2",
                "alias": key,
                "tinyId": "1791",
                "message": "PAGE: checkout-availability (checkout)",
                "username": "ana@example.com",
                "updatedAt": int(T0.timestamp()) * 1_000_000_000 + 123_000_000,  # ns, as Opsgenie sends
            },
            "source": {"name": "", "type": "mobile"},
            "integrationName": "slo-bot",
            "integrationType": "Webhook",
        }
    ).encode()
    assert hooks.opsgenie({"x-slo-bot-token": "wrong"}, body) == (401, "bad token")
    assert bot.breach().acknowledged_by is None
    assert hooks.opsgenie({"x-slo-bot-token": TOKEN}, body) == (200, "applied: acknowledged")
    assert bot.breach().acknowledged_by == "ana@example.com (Opsgenie)"
    assert hooks.opsgenie({"x-slo-bot-token": TOKEN}, body) == (200, "ignored: already handled")
    bot.deliver()
    pd = fake.incident("pagerduty", key)
    assert pd is not None and pd.status == "acknowledged"  # PagerDuty follows Opsgenie


def test_webhooks_are_off_until_their_secret_is_set(make_bot: Any) -> None:
    bot, _ = fired(make_bot, targets="pd")
    off = Webhooks(bot.engine, clock=lambda: bot.now, conversation=bot.conversation)
    body = pd_event("incident.acknowledged", "O1", key=bot.key())
    assert off.pagerduty(signed(body), body)[0] == 404
    assert off.opsgenie({"x-slo-bot-token": ""}, b"{}")[0] == 404


def test_a_webhook_that_lands_while_slo_bots_own_call_is_in_flight_is_not_overwritten(
    make_bot: Any, fake: FakeIncidents
) -> None:
    """Acknowledged in Slack; while slo-bot tells PagerDuty, someone resolves it there and PagerDuty's
    webhook lands before slo-bot has written down its own call's answer. The tool's word is the newer."""
    bot, hooks = fired(make_bot, targets="pd")
    key = bot.key()
    with Session(bot.engine) as session:
        breach = session.get(BreachRecord, bot.breach().id)
        assert breach is not None
        assert bot.conversation.acknowledge(session, breach, "U0ANA", bot.now, on=True)
        session.commit()
    landed: list[tuple[int, str]] = []

    def resolved_meanwhile(response: httpx.Response) -> None:
        if not landed and b'"acknowledge"' in response.request.content:
            body = pd_event("incident.resolved", "R1", key=key)
            landed.append(hooks.pagerduty(signed(body), body))

    bot.client.event_hooks = {"response": [resolved_meanwhile]}
    bot.deliver()
    assert landed == [(200, "applied: resolved")]
    acked = fake.incident("pagerduty", key)
    assert acked is not None and acked.status == "acknowledged"  # our call did reach PagerDuty
    [incident] = bot.incidents()
    assert (incident.state, incident.changed_by) == ("resolved", "Jane Doe")
    assert incident_line(incident).startswith("PagerDuty `pd`: resolved by Jane Doe")


def test_the_tools_incident_id_from_a_webhook_during_the_trigger_call_is_kept(
    make_bot: Any, fake: FakeIncidents
) -> None:
    """PagerDuty's webhook for the new incident lands before slo-bot has written down its trigger
    call's answer (the dedup key): the incident keeps PagerDuty's own id, and events that name only
    that id still find it."""
    bot: Bot = make_bot(targets="pd")
    hooks = Webhooks(
        bot.engine, clock=lambda: bot.now, conversation=bot.conversation, pagerduty_secret=SECRET
    )
    landed: list[tuple[int, str]] = []

    def triggered_meanwhile(response: httpx.Response) -> None:
        if not landed and b'"trigger"' in response.request.content:
            body = pd_event("incident.triggered", "T1", key=bot.key())
            landed.append(hooks.pagerduty(signed(body), body))

    bot.client.event_hooks = {"response": [triggered_meanwhile]}
    bot.tick(T0)
    bot.run_until(T0 + timedelta(minutes=3))
    assert landed == [(200, "applied: triggered")]
    [incident] = bot.incidents()
    assert incident.external_id == "Q1P3AHC"  # PagerDuty's id, not the dedup key its answer gave
    body = pd_event("incident.acknowledged", "A1", key="not-ours")  # found by the id alone
    assert hooks.pagerduty(signed(body), body) == (200, "applied: acknowledged")
    [incident] = bot.incidents()
    assert (incident.state, incident.changed_by) == ("acknowledged", "Jane Doe")

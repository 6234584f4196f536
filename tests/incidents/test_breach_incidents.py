"""One incident per breach and target, whatever happens to the breach: a ticket that becomes a page is the
same incident raised in place; two breaches of one SLO are two incidents whose webhooks never cross; one
acknowledgement of the breach reaches every tool.

In-process bot over a real database (SQLite and PostgreSQL), on the test's clock, against the fake tools.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from slack_sdk import WebClient

from bot.incidents.inbound import Webhooks, pagerduty_signature
from bot.slack.commands import Invocation, answer
from bot.slack.deps import SlackDeps
from bot.slack.permissions import Responders
from bot.store import db
from bot.store.incidents import dedup_key
from tests.fakeincidents import FakeIncidents
from tests.faults import catalogues
from tests.incidents.harness import CHANNEL, SLO, T0, Bot, apply

SECRET = "pd-webhook-secret"
RESPONDER = "U0ANA"

# Flat traffic (600 requests a minute), failing as `incidents` says. Pages at 14.4x over 1h (and 5m),
# tickets (when `tickets`) at 3x over 2h (and 10m); both to every tool; no budget notices.
CATALOGUE = """
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: sim}}
spec:
  type: Simulated
  connectionDetails:
    seed: 7
    requests_per_minute: 600
    night_ratio: 1.0
    error_ratio: 0.0
    incidents: {incidents}
{targets_documents}{policies_documents}---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-availability
  annotations:
    slo-bot/channel: {channel}
    slo-bot/escalate-after: 2h
    slo-bot/budget-alerts: ""
spec:
  service: checkout
  indicator:
    metadata: {{name: checkout-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: sim, spec: {{query: good}}}}}}
        total: {{metricSource: {{metricSourceRef: sim, spec: {{query: total}}}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.999}}]
  alertPolicies: {policies}
"""


def outage(start: timedelta, minutes: int, error_ratio: float = 1.0) -> dict[str, Any]:
    at = (T0 + start).isoformat().replace("+00:00", "Z")
    return {"start": at, "duration": f"{minutes}m", "error_ratio": error_ratio}


@pytest.fixture
def fake() -> Iterator[FakeIncidents]:
    with FakeIncidents() as server:
        yield server


@pytest.fixture
def breach_bot(
    database_url: str, tmp_path: Path, fake: FakeIncidents, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Bot]]:
    bots: list[Bot] = []

    def make(
        incidents: list[dict[str, Any]], *, tickets: bool, targets: tuple[str, ...] = ("pd", "genie")
    ) -> Bot:
        path = tmp_path / "slos.yaml"
        policies = ["{alertPolicyRef: pages}"] + (["{alertPolicyRef: tickets}"] if tickets else [])
        path.write_text(
            CATALOGUE.format(
                incidents=json.dumps(incidents),
                targets_documents=fake.target_documents("pd", "genie", "squad", "hook"),
                channel=CHANNEL,
                policies_documents=catalogues.page_and_ticket_policies(targets),
                policies="[" + ", ".join(policies) + "]",
            )
        )
        apply(database_url, path, monkeypatch)
        bot = Bot(db.make_engine(database_url), fake)
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        bot.close()


def actions(bot: Bot, breach_id: int | None = None) -> dict[str, list[str]]:
    """The incident calls queued, per target, in order (of one breach, or of all)."""
    found: dict[str, list[str]] = {}
    for entry in bot.outbox("incident"):
        if breach_id is None or entry.breach_id == breach_id:
            found.setdefault(entry.channel or "", []).append(json.loads(entry.payload)["action"])
    return found


def slow_then_fast(breach_bot: Callable[..., Bot], targets: tuple[str, ...] = ("pd", "genie")) -> Bot:
    """A slow burn (5x for the 3 hours before T0: a ticket at once), then a full outage from T0 + 10m (a
    page within two minutes). Ticks every minute to T0 + 15m."""
    bot = breach_bot(
        [outage(-timedelta(hours=3), 190, error_ratio=0.005), outage(timedelta(minutes=10), 20)],
        tickets=True,
        targets=targets,
    )
    bot.tick(T0)
    bot.deliver()
    bot.run_until(T0 + timedelta(minutes=5))
    ticket = bot.breach()
    assert (ticket.state, ticket.severity) == ("firing", "ticket")
    bot.run_until(T0 + timedelta(minutes=15))
    return bot


def test_a_ticket_that_becomes_a_page_is_one_incident_per_tool_raised_in_place(
    breach_bot: Callable[..., Bot], fake: FakeIncidents
) -> None:
    bot = slow_then_fast(breach_bot)
    (breach,) = bot.breaches()  # one breach: the ticket raised to a page
    assert breach.id is not None
    assert (breach.kind, breach.state, breach.severity, breach.peak) == ("burn", "firing", "page", "page")
    key = dedup_key(SLO, breach.id)
    incidents = bot.incidents()
    assert [(i.target, i.breach_id, i.dedup_key, i.severity, i.state) for i in incidents] == [
        ("pd", breach.id, key, "page", "triggered"),
        ("genie", breach.id, key, "page", "triggered"),
    ]
    assert actions(bot) == {"pd": ["trigger", "raise"], "genie": ["trigger", "raise"]}
    assert all(e.status == "done" for e in bot.outbox("incident"))

    # PagerDuty: a second trigger under the same dedup key, now critical; one incident
    events = [c.json for c in fake.calls_of("pagerduty", ok_only=True)]
    assert [(e["event_action"], e["dedup_key"], e["payload"]["severity"]) for e in events] == [
        ("trigger", key, "warning"),
        ("trigger", key, "critical"),
    ]
    assert events[1]["payload"]["summary"].startswith("PAGE: checkout-availability (checkout)")
    assert events[1]["payload"]["custom_details"]["note"] == "Raised to PAGE"
    assert list(fake.incidents("pagerduty")) == [key]
    pd = fake.incident("pagerduty", key)
    assert pd is not None and (pd.status, pd.severity, pd.triggers) == ("triggered", "critical", 2)

    # Opsgenie: created at the ticket's priority, then its priority raised by alias; one alert
    calls = fake.calls_of("opsgenie", ok_only=True)
    assert [(c.method, c.path) for c in calls] == [
        ("POST", "/opsgenie/v2/alerts"),
        ("PUT", f"/opsgenie/v2/alerts/{quote(key, safe='')}/priority"),
    ]
    assert calls[0].json["alias"] == key and calls[0].json["priority"] == "P3"
    assert calls[1].json == {"priority": "P1"}
    assert list(fake.incidents("opsgenie")) == [key]
    genie = fake.incident("opsgenie", key)
    assert genie is not None and (genie.status, genie.priority, genie.triggers) == ("triggered", "P1", 1)
    assert fake.out_of_order == []  # the PUT named the alert by its alias, which Opsgenie found

    assert any(n.startswith("Raised to PAGE") for n in bot.notes())
    # the page goes on: nothing more for the tools until it changes again
    bot.run_until(T0 + timedelta(minutes=25))
    assert actions(bot) == {"pd": ["trigger", "raise"], "genie": ["trigger", "raise"]}


def test_two_breaches_are_two_incidents_and_a_late_webhook_lands_on_its_own(
    breach_bot: Callable[..., Bot], fake: FakeIncidents
) -> None:
    # two 10-minute outages an hour apart; the page clears 5 minutes after each, its breach one
    # evaluation later
    bot = breach_bot(
        [outage(timedelta(0), 10), outage(timedelta(minutes=60), 10)], tickets=False, targets=("pd",)
    )
    hooks = Webhooks(
        bot.engine, clock=lambda: bot.now, conversation=bot.conversation, pagerduty_secret=SECRET
    )
    bot.tick(T0)
    bot.run_until(T0 + timedelta(minutes=3))
    first = bot.breach()
    assert first.id is not None and first.state == "firing"
    first_key = dedup_key(SLO, first.id)
    # PagerDuty tells its own id for the incident: slo-bot learns it
    body = pd_event("incident.triggered", "E1", id="QFIRST", incident_key=first_key)
    assert hooks.pagerduty(signed(body), body) == (200, "applied: triggered")
    assert bot.incidents()[0].external_id == "QFIRST"

    bot.run_until(T0 + timedelta(minutes=40))
    assert bot.breach().state == "resolved"
    bot.run_until(T0 + timedelta(minutes=64))
    earlier, second = bot.breaches()
    assert earlier.id == first.id and earlier.state == "resolved"
    assert second.id is not None and second.id != first.id and second.state == "firing"
    second_key = dedup_key(SLO, second.id)
    assert second_key != first_key
    assert sorted(fake.incidents("pagerduty")) == sorted([first_key, second_key])
    upstream_first, upstream_second = (
        fake.incident("pagerduty", first_key),
        fake.incident("pagerduty", second_key),
    )
    assert upstream_first is not None and upstream_first.status == "resolved"
    assert upstream_second is not None and upstream_second.status == "triggered"
    assert actions(bot, first.id) == {"pd": ["trigger", "resolve"]}
    assert actions(bot, second.id) == {"pd": ["trigger"]}
    outbox_before = {e.id for e in bot.outbox()}

    # late news of the FIRST incident, by PagerDuty's id alone (no incident_key) ...
    body = pd_event("incident.acknowledged", "E2", id="QFIRST", who="Jane Doe")
    assert hooks.pagerduty(signed(body), body) == (200, "applied: acknowledged")
    # ... and by our dedup key alone (no id PagerDuty told before)
    body = pd_event("incident.resolved", "E3", incident_key=first_key, who="Ravi Kumar")
    assert hooks.pagerduty(signed(body), body) == (200, "applied: resolved")
    body = pd_event("incident.annotated", "E4", incident_key=first_key, content="root cause: a bad deploy")
    assert hooks.pagerduty(signed(body), body) == (200, "applied: note")

    earlier, now_second = bot.breaches()
    assert now_second.id == second.id and now_second.state == "firing"
    assert now_second.acknowledged_by is None and now_second.acknowledged_at is None
    by_breach = {i.breach_id: i for i in bot.incidents()}
    assert by_breach[first.id].changed_by == "Ravi Kumar" and by_breach[first.id].state == "resolved"
    assert (by_breach[second.id].state, by_breach[second.id].changed_by) == ("triggered", None)
    assert by_breach[second.id].external_id != "QFIRST"
    new = [e for e in bot.outbox() if e.id not in outbox_before]
    assert new and {e.breach_id for e in new} == {first.id}  # said in the first breach's thread only
    notes = [json.loads(e.payload)["text"] for e in new if e.kind == "thread_note"]
    assert "Note in PagerDuty by Jane Doe: root cause: a bad deploy" in notes
    assert any(n.startswith("Resolved in PagerDuty by Ravi Kumar.") for n in notes)
    bot.deliver()
    still = fake.incident("pagerduty", second_key)
    assert still is not None and still.status == "triggered"  # the open incident is not touched
    assert fake.out_of_order == []


def test_one_acknowledgement_of_the_breach_reaches_every_tool(
    breach_bot: Callable[..., Bot], fake: FakeIncidents
) -> None:
    bot = slow_then_fast(breach_bot, targets=("pd", "genie", "squad", "hook"))
    (breach,) = bot.breaches()
    assert breach.id is not None and breach.severity == "page"
    key = dedup_key(SLO, breach.id)
    assert {i.target for i in bot.incidents()} == {"pd", "genie", "squad", "hook"}
    assert {i.dedup_key for i in bot.incidents()} == {key}

    deps = SlackDeps(
        bot.engine,
        lambda: bot.now,
        Responders(WebClient(token="unused"), allowed=[RESPONDER]),
        lambda: None,
        bot.conversation,
    )
    said = json.dumps(answer(deps, Invocation(RESPONDER, CHANNEL, ("ack", str(breach.id)))))
    assert f"Acknowledged breach #{breach.id} (PAGE) of `checkout-availability`." in said
    again = json.dumps(answer(deps, Invocation(RESPONDER, CHANNEL, ("ack", "checkout-availability"))))
    assert "Already acknowledged." in again  # one acknowledgement: a second one changes nothing
    bot.deliver()

    acked = bot.breach()
    assert acked.acknowledged_by == RESPONDER
    assert actions(bot) == {
        "pd": ["trigger", "raise", "acknowledge"],
        "genie": ["trigger", "raise", "acknowledge"],
        "squad": ["trigger", "raise", "acknowledge"],
        "hook": ["trigger", "raise", "acknowledge"],
    }
    for vendor in ("pagerduty", "opsgenie", "hook"):
        upstream = fake.incident(vendor, key)
        assert upstream is not None and upstream.status == "acknowledged", vendor
        assert upstream.actions.count("acknowledge") == 1, (vendor, upstream.actions)
        assert list(fake.incidents(vendor)) == [key], vendor
    squad = fake.incident("squadcast", key)
    assert squad is not None and squad.status == "triggered"  # Squadcast's webhook has no acknowledge
    assert [c.json["status"] for c in fake.calls_of("squadcast")] == ["trigger", "trigger"]
    hook = fake.calls_of("hook")[-1].json
    assert hook["action"] == "acknowledge" and hook["actor"] == f"{RESPONDER} (Slack)"
    assert all(e.status == "done" for e in bot.outbox("incident"))
    assert fake.out_of_order == []

    # acknowledged: no escalation later, in any tool
    bot.run_until(T0 + timedelta(hours=2, minutes=30), step=timedelta(minutes=5))
    assert bot.breach().escalated_at is None
    assert all("escalate" not in a for a in actions(bot).values())


def pd_event(
    event_type: str, event_id: str, *, who: str = "Jane Doe", content: str = "", **incident: Any
) -> bytes:
    """A PagerDuty v3 webhook about the incident `incident` names (its `id`, its `incident_key`)."""
    data: dict[str, Any] = {"type": "incident", "status": event_type.removeprefix("incident."), **incident}
    if content:
        data = {"id": "PNOTE1", "type": "incident_note", "content": content, "incident": data}
    return json.dumps(
        {
            "event": {
                "id": event_id,
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": T0.isoformat().replace("+00:00", "Z"),
                "agent": {"id": "PAGENT1", "type": "user_reference", "summary": who},
                "data": data,
            }
        }
    ).encode()


def signed(body: bytes) -> dict[str, str]:
    return {"x-pagerduty-signature": pagerduty_signature(SECRET, body), "content-type": "application/json"}

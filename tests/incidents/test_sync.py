"""From an evaluation to the incident tools and back into the alert's Slack thread, on a real database:
incidents opened, acknowledged, escalated and resolved in order; the budget an episode cost."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from slack_sdk import WebClient
from sqlmodel import Session

from bot.domain import DataSource
from bot.slack.commands import Invocation, answer
from bot.slack.deps import SlackDeps
from bot.slack.notify import set_acknowledged
from bot.slack.permissions import Responders
from bot.sources.simulated import SimulatedSource
from bot.store.incidents import dedup_key
from bot.store.models import AlertRecord
from tests.fakeincidents import FakeIncidents
from tests.incidents.harness import CHANNEL, ONCALL, T0, Bot

KEY = dedup_key("checkout-availability", "page")


def truth_cost(start_s: int, end_s: int, window_end_s: int) -> float:
    """The budget share the simulated failures in [start, end) used, counted minute by minute."""
    source = SimulatedSource(
        DataSource(
            "sim",
            "Simulated",
            {
                "seed": 7,
                "requests_per_minute": 600,
                "night_ratio": 1.0,
                "error_ratio": 0.0,
                "incidents": [{"start": T0.isoformat(), "duration": "30m", "error_ratio": 1.0}],
            },
        )
    )
    bad = total = 0
    for minute in range(window_end_s // 60 - 30 * 24 * 60, window_end_s // 60):
        counts = source.minute(minute)
        assert counts is not None
        total += counts[1]
        if start_s // 60 <= minute < end_s // 60:
            bad += counts[1] - counts[0]
    return bad / (0.001 * total)


def test_a_page_opens_escalates_and_resolves_upstream_and_tells_its_cost(
    make_bot, fake: FakeIncidents
) -> None:
    bot: Bot = make_bot()
    bot.tick(T0)  # backfills 30 days: all good so far
    assert bot.outbox("incident") == []

    bot.run_until(T0 + timedelta(minutes=3))
    page = bot.alert("page")
    assert page.state == "firing"
    opened = fake.incident("pagerduty", KEY)
    assert opened is not None and opened.status == "triggered"
    sent = fake.calls_of("pagerduty", ok_only=True)[0].json
    assert sent["event_action"] == "trigger" and sent["dedup_key"] == KEY
    assert sent["payload"]["severity"] == "critical"
    assert sent["payload"]["summary"].startswith("PAGE: checkout-availability (checkout)")
    assert "burn_rates" in sent["payload"]["custom_details"]
    assert [i.state for i in bot.incidents()] == ["triggered"]

    # unacknowledged for 10 minutes (its `slo-bot/escalate-after`): the on-call group is called
    bot.run_until(T0 + timedelta(minutes=10))
    assert not any(ONCALL in n for n in bot.notes())
    bot.run_until(T0 + timedelta(minutes=13))
    escalations = [n for n in bot.notes() if f"<!subteam^{ONCALL}>" in n]
    assert len(escalations) == 1 and "unacknowledged for 10 min" in escalations[0]
    assert bot.alert("page").escalated_at is not None
    upstream = fake.incident("pagerduty", KEY)
    assert upstream is not None and upstream.severity == "critical" and upstream.triggers >= 2
    bot.run_until(T0 + timedelta(minutes=25))
    assert len([n for n in bot.notes() if ONCALL in n]) == 1  # once

    # the outage ends at T0 + 30m; the page resolves when its windows cool down
    bot.run_until(T0 + timedelta(hours=3))
    page = bot.alert("page")
    assert page.state == "resolved"
    resolved = fake.incident("pagerduty", KEY)
    assert resolved is not None and resolved.status == "resolved"
    assert fake.out_of_order == []
    actions = [c.json["event_action"] for c in fake.calls_of("pagerduty", ok_only=True)]
    assert actions[0] == "trigger" and actions[-1] == "resolve"
    assert all(e.status == "done" for e in bot.outbox("incident"))

    impact = [n for n in bot.notes() if n.startswith("Budget impact")]
    assert len(impact) == 1
    found = re.search(r"consumed ([\d.]+) % of the 30-day budget \(([\d.]+) of 43.2 minutes\)", impact[0])
    assert found, impact[0]
    assert page.fired_at is not None and page.resolved_at is not None
    start = page.fired_at - timedelta(minutes=5)
    expected = truth_cost(
        int(start.timestamp()), int(page.resolved_at.timestamp()), int(page.resolved_at.timestamp())
    )
    # a 30-minute full outage of flat traffic: 30 of 43.2 minutes, about 69 %
    assert abs(float(found.group(1)) / 100 - expected) < 0.01
    assert abs(float(found.group(2)) - expected * 43.2) < 0.5
    assert 0.6 < expected < 0.75

    # `/slo show` lists the episode with the same cost
    deps = SlackDeps(bot.engine, lambda: bot.now, Responders(WebClient(token="unused")), lambda: None)
    shown = json.dumps(answer(deps, Invocation("U0ANA", CHANNEL, ("show", "checkout-availability"))))
    # the page; the budget-50 alert its outage caused (31 % of the budget is left); the ticket the
    # page held back (a slow burn over 1 day) until it resolved
    assert "Episodes in the 30-day window:* 3" in shown
    line = re.search(r"PAGE at <!date\^(\d+)\^[^>]*>, for (\d+) min: consumed ([\d.]+) %", shown)
    assert line and int(line.group(1)) == int(page.fired_at.timestamp())
    assert line.group(3) == found.group(1)
    assert "BUDGET 50 at" in shown and "TICKET at" in shown and "still firing" in shown


def test_acknowledging_stops_the_escalation_and_reaches_every_tool(make_bot, fake: FakeIncidents) -> None:
    bot: Bot = make_bot(targets="pd, genie")
    bot.tick(T0)
    bot.run_until(T0 + timedelta(minutes=3))
    assert fake.incident("pagerduty", KEY) is not None
    assert fake.incident("opsgenie", KEY) is not None
    with Session(bot.engine) as session:
        alert = session.get(AlertRecord, bot.alert().id)
        assert alert is not None
        assert set_acknowledged(session, alert, "U0ANA", bot.now, on=True)
        session.commit()
    bot.deliver()
    acked = fake.incident("pagerduty", KEY)
    assert acked is not None and acked.status == "acknowledged"
    genie = fake.incident("opsgenie", KEY)
    assert genie is not None and genie.status == "acknowledged"
    bot.run_until(T0 + timedelta(minutes=25))
    assert not any(ONCALL in n for n in bot.notes())
    assert bot.alert().escalated_at is None
    pd = fake.incident("pagerduty", KEY)
    assert pd is not None and pd.severity == "critical" and pd.triggers == 1  # never re-triggered
    assert fake.out_of_order == []


def test_an_outage_of_the_tool_delays_but_loses_nothing_and_keeps_the_order(
    make_bot, fake: FakeIncidents
) -> None:
    bot: Bot = make_bot()
    bot.tick(T0)
    fake.fail("pagerduty", status=500)  # PagerDuty is down from before the page fires...
    bot.run_until(T0 + timedelta(minutes=3))
    with Session(bot.engine) as session:
        alert = session.get(AlertRecord, bot.alert().id)
        assert alert is not None
        set_acknowledged(session, alert, "U0ANA", bot.now, on=True)
        session.commit()
    bot.run_until(T0 + timedelta(minutes=8))
    assert fake.calls_of("pagerduty") and not fake.calls_of("pagerduty", ok_only=True)
    pending = [e for e in bot.outbox("incident") if e.status == "pending"]
    assert [json.loads(e.payload)["action"] for e in pending] == ["trigger", "acknowledge"]
    assert all(e.attempts >= 1 and "500" in (e.last_error or "") for e in pending[:1])
    fake.heal()
    fake.fail("pagerduty", status=429, times=1, retry_after=30)  # ...then rate-limits once
    bot.run_until(T0 + timedelta(minutes=10))
    assert [c.json["event_action"] for c in fake.calls_of("pagerduty", ok_only=True)] == [
        "trigger",
        "acknowledge",
    ]
    state = fake.incident("pagerduty", KEY)
    assert state is not None and state.status == "acknowledged"
    assert fake.out_of_order == []
    assert all(e.status == "done" for e in bot.outbox("incident"))


def test_a_refused_call_is_said_in_the_thread_and_does_not_block_the_rest(
    make_bot, fake: FakeIncidents
) -> None:
    bot: Bot = make_bot(routing_key="f" * 32)  # a key PagerDuty does not know
    bot.tick(T0)
    bot.run_until(T0 + timedelta(minutes=3))
    refused = [e for e in bot.outbox("incident") if e.status == "failed"]
    assert len(refused) == 1 and json.loads(refused[0].payload)["action"] == "trigger"
    notes = [n for n in bot.notes() if "refused the trigger" in n]
    assert len(notes) == 1 and notes[0].startswith("PagerDuty (`pd`) refused the trigger")
    assert "f" * 32 not in notes[0]  # the key is never shown
    assert bot.incidents()[0].last_error

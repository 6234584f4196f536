"""From an evaluation to the incident tools and back into the breach's Slack thread, on a real database:
one incident per breach, opened, acknowledged, escalated and resolved in order; the budget it cost."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from slack_sdk import WebClient
from sqlalchemy import text
from sqlmodel import Session

from bot import jobs
from bot.domain import DataSource
from bot.slack.commands import Invocation, answer
from bot.slack.deps import SlackDeps
from bot.slack.permissions import Responders
from bot.sources.simulated import SimulatedSource
from bot.store.models import BreachRecord
from bot.store.repo import utc
from tests.fakeincidents import FakeIncidents
from tests.incidents.harness import CHANNEL, ONCALL, T0, Bot


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
    breach = bot.breach()
    assert breach.state == "firing" and breach.severity == "page"
    key = bot.key()
    assert key == f"slo-bot/checkout-availability/{breach.id}"  # one per breach
    opened = fake.incident("pagerduty", key)
    assert opened is not None and opened.status == "triggered"
    sent = fake.calls_of("pagerduty", ok_only=True)[0].json
    assert sent["event_action"] == "trigger" and sent["dedup_key"] == key
    assert sent["payload"]["severity"] == "critical"
    assert sent["payload"]["summary"].startswith("PAGE: checkout-availability (checkout)")
    assert "burn_rates" in sent["payload"]["custom_details"]
    assert sent["payload"]["custom_details"]["breach"] == breach.id
    assert [(i.breach_id, i.state) for i in bot.incidents()] == [(breach.id, "triggered")]

    # unacknowledged for 10 minutes (its `slo-bot/escalate-after`): the on-call group is called
    bot.run_until(T0 + timedelta(minutes=10))
    assert not any(ONCALL in n for n in bot.notes())
    bot.run_until(T0 + timedelta(minutes=13))
    escalations = [n for n in bot.notes() if f"<!subteam^{ONCALL}>" in n]
    assert len(escalations) == 1 and "unacknowledged for 10 min" in escalations[0]
    assert bot.breach().escalated_at is not None
    upstream = fake.incident("pagerduty", key)
    assert upstream is not None and upstream.severity == "critical" and upstream.triggers >= 2
    bot.run_until(T0 + timedelta(minutes=25))
    assert len([n for n in bot.notes() if ONCALL in n]) == 1  # once

    # the outage ends at T0 + 30m; the page clears when its windows cool down, but the slow burn
    # (a ticket) goes on: the same breach, lowered, its incident still open
    bot.run_until(T0 + timedelta(hours=3))
    page = bot.alert("page")
    assert page.state == "resolved"
    assert bot.alert("ticket").state == "firing" and bot.alert("ticket").breach_id == breach.id
    lowered = bot.breach()
    assert (lowered.id, lowered.state, lowered.severity, lowered.peak) == (
        breach.id,
        "firing",
        "ticket",
        "page",
    )
    still = fake.incident("pagerduty", key)
    assert still is not None and still.status == "triggered"
    assert "PAGE cleared; TICKET still firing." in bot.notes()

    # the breach ends one evaluation after its last signal cleared; its incident resolves with it
    bot.run_until(T0 + timedelta(hours=8), step=timedelta(minutes=10))
    ended = bot.breach()
    assert ended.id == breach.id and ended.state == "resolved" and ended.resolved_at is not None
    assert len(bot.breaches()) == 1  # the budget thresholds crossed were notes in its thread
    resolved = fake.incident("pagerduty", key)
    assert resolved is not None and resolved.status == "resolved"
    assert list(fake.incidents("pagerduty")) == [key]  # one incident for the whole episode
    assert fake.out_of_order == []
    actions = [c.json["event_action"] for c in fake.calls_of("pagerduty", ok_only=True)]
    assert actions[0] == "trigger" and actions[-1] == "resolve" and actions.count("resolve") == 1
    assert all(e.status == "done" for e in bot.outbox("incident"))

    impact = [n for n in bot.notes() if "Budget impact" in n]
    assert len(impact) == 1 and impact[0].startswith("Resolved. Budget impact: this breach consumed")
    found = re.search(r"consumed ([\d.]+) % of the 30-day budget \(([\d.]+) of 43.2 minutes\)", impact[0])
    assert found, impact[0]
    assert page.fired_at is not None and ended.resolved_at is not None
    opened_at, resolved_at = utc(breach.opened_at), utc(ended.resolved_at)
    assert opened_at is not None and resolved_at is not None
    start = opened_at - timedelta(minutes=5)  # a page's failures count from its 5-minute window
    end = int(resolved_at.timestamp())
    expected = truth_cost(int(start.timestamp()), end, end)
    # a 30-minute full outage of flat traffic: 30 of 43.2 minutes, about 69 %
    assert abs(float(found.group(1)) / 100 - expected) < 0.01
    assert abs(float(found.group(2)) - expected * 43.2) < 0.5
    assert 0.6 < expected < 0.75

    # `/slo show` lists the episode with the same cost
    deps = SlackDeps(
        bot.engine, lambda: bot.now, Responders(WebClient(token="unused")), lambda: None, bot.conversation
    )
    shown = json.dumps(answer(deps, Invocation("U0ANA", CHANNEL, ("show", "checkout-availability"))))
    # one breach: the page, the budget-50 notice its outage caused and the slow burn after it
    assert "Breaches in the 30-day window:* 1" in shown, shown
    line = re.search(
        rf"#{breach.id} PAGE at <!date\^(\d+)\^[^>]*>, for 6 h \d+ min, [^:]*: consumed ([\d.]+) %", shown
    )
    assert line, shown
    assert int(line.group(1)) == int(opened_at.timestamp())
    assert line.group(2) == found.group(1)
    assert "BUDGET 50" not in shown and "TICKET at" not in shown and "still open" not in shown


def test_acknowledging_stops_the_escalation_and_reaches_every_tool(make_bot, fake: FakeIncidents) -> None:
    bot: Bot = make_bot(targets="pd, genie")
    bot.tick(T0)
    bot.run_until(T0 + timedelta(minutes=3))
    key = bot.key()
    assert fake.incident("pagerduty", key) is not None
    assert fake.incident("opsgenie", key) is not None
    with Session(bot.engine) as session:
        breach = session.get(BreachRecord, bot.breach().id)
        assert breach is not None
        assert bot.conversation.acknowledge(session, breach, "U0ANA", bot.now, on=True)
        session.commit()
    bot.deliver()
    acked = fake.incident("pagerduty", key)
    assert acked is not None and acked.status == "acknowledged"
    genie = fake.incident("opsgenie", key)
    assert genie is not None and genie.status == "acknowledged"
    bot.run_until(T0 + timedelta(minutes=25))
    assert not any(ONCALL in n for n in bot.notes())
    assert bot.breach().escalated_at is None
    pd = fake.incident("pagerduty", key)
    assert pd is not None and pd.severity == "critical" and pd.triggers == 1  # never re-triggered
    assert fake.out_of_order == []


def test_an_outage_of_the_tool_delays_but_loses_nothing_and_keeps_the_order(
    make_bot, fake: FakeIncidents
) -> None:
    bot: Bot = make_bot()
    bot.tick(T0)
    fake.fail("pagerduty", status=500)  # PagerDuty is down from before the page fires...
    bot.run_until(T0 + timedelta(minutes=3))
    key = bot.key()
    with Session(bot.engine) as session:
        breach = session.get(BreachRecord, bot.breach().id)
        assert breach is not None
        bot.conversation.acknowledge(session, breach, "U0ANA", bot.now, on=True)
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
    state = fake.incident("pagerduty", key)
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


# PostgreSQL only: there a person's acknowledgement commits while a tick runs. SQLite has one writer,
# so the acknowledgement waits for the tick, and the tick reads it before it decides.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_acknowledgement_committed_during_the_tick_stops_its_escalation(
    make_bot, fake: FakeIncidents
) -> None:
    bot: Bot = make_bot(targets="pd")
    bot.tick(T0)
    bot.run_until(T0 + timedelta(minutes=3))
    breach_id = bot.breach().id

    def acknowledged_meanwhile(session: Session, tick: jobs.Tick) -> None:
        """Ana clicks Acknowledge after the tick read the breach, before it decides to escalate."""
        with Session(bot.engine) as other:
            other.execute(text("SET LOCAL lock_timeout = '5s'"))
            breach = other.get(BreachRecord, breach_id)
            assert breach is not None and breach.acknowledged_by is None
            assert bot.conversation.acknowledge(other, breach, "U0ANA", tick.now, on=True)
            other.commit()

    bot.now = T0 + timedelta(minutes=14)  # the page is due to escalate
    jobs.evaluate_all(
        bot.engine,
        now=bot.now,
        sources=bot.sources,
        concurrency=2,
        hooks=[acknowledged_meanwhile, bot.conversation],
    )
    bot.deliver()
    assert not any(ONCALL in n for n in bot.notes())
    assert bot.breach().escalated_at is None and bot.breach().acknowledged_by == "U0ANA"
    actions = [c.json.get("event_action") for c in fake.calls_of("pagerduty", ok_only=True)]
    assert actions == ["trigger", "acknowledge"]  # acknowledged upstream, never escalated

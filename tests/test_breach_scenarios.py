"""One breach, one conversation, end to end: a real Prometheus holding the scenarios of
tests/scenarios.py, the scheduler's evaluations minute by minute, Slack through the outbox to the fake
Slack Web API, and PagerDuty through the outbox to the fake Events API.

Counts what an on-call engineer would count: top-level messages in the channel, replies in the
thread, incidents (dedup keys) upstream, clicks needed.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from slack_sdk import WebClient
from sqlmodel import Session, select

from bot import cli, jobs
from bot.conversation import Conversation
from bot.incidents.delivery import IncidentDelivery
from bot.incidents.inbound import Webhooks, pagerduty_signature
from bot.incidents.sync import IncidentDestination
from bot.slack.delivery import SlackDelivery
from bot.slack.notify import SlackDestination
from bot.sources.pool import SourcePool
from bot.store import db
from bot.store.incidents import incidents_of
from bot.store.models import BreachRecord
from tests.fakeincidents import FakeIncidents
from tests.fakeslack import FakeSlack
from tests.faults import budgetdata, catalogues
from tests.promharness import HOUR, tools_problem
from tests.scenarios import (
    MINUTE,
    Scenario,
    catalogue,
    generate,
    policy_transitions,
    serve,
    stepping_instants,
)

CHANNEL = "C0ALERTS"
ONCALL = "U0ONCALL"
SECRET = "pd-webhook-secret"


@pytest.fixture(scope="module")
def scenarios() -> dict[str, Scenario]:
    return {s.name: s for s in generate()}


@pytest.fixture(scope="module")
def prometheus(scenarios: dict[str, Scenario], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    problem = tools_problem()
    if problem:  # fail, not skip: CI installs prometheus
        pytest.fail(problem, pytrace=False)
    with serve([scenarios["outage"], scenarios["slow-burn"]], tmp_path_factory.mktemp("breaches")) as url:
        yield url


class Pipeline:
    """What `slo-bot run` builds, driven one evaluation at a time at chosen instants."""

    def __init__(self, tmp: Path, slack: FakeSlack, incidents: FakeIncidents) -> None:
        self.url = f"sqlite:///{tmp / 'slo-bot.db'}"
        self.engine = db.make_engine(self.url)
        db.upgrade(self.engine)
        self.slack, self.incidents = slack, incidents
        client = WebClient(token=slack.token, base_url=slack.api_url, retry_handlers=[])
        self.clock_now = datetime.now().astimezone()
        self.conversation = Conversation([SlackDestination(CHANNEL), IncidentDestination()])
        self.slack_delivery = SlackDelivery(
            self.engine, client, clock=lambda: self.clock_now, conversation=self.conversation
        )
        self.http = httpx.Client(timeout=10)
        self.incident_delivery = IncidentDelivery(
            self.engine, self.http, clock=lambda: self.clock_now, conversation=self.conversation
        )
        self.hooks = [self.conversation]
        self.sources = SourcePool(max_connections=2)

    def apply(self, text: str, tmp: Path) -> None:
        path = tmp / "slos.yaml"
        path.write_text(text)
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DATABASE_URL", self.url)
            patch.delenv("SLO_BOT_CONFIG", raising=False)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                assert cli.main(["apply", str(path)]) == 0, err.getvalue()

    def evaluate(self, at: datetime) -> jobs.Outcome:
        self.clock_now = at
        (outcome,) = jobs.evaluate_all(
            self.engine, now=at, sources=self.sources, concurrency=1, hooks=self.hooks
        )
        assert outcome.error is None, outcome.error
        self.deliver()
        return outcome

    def deliver(self) -> None:
        for _ in range(20):
            if not (self.incident_delivery.deliver_due() + self.slack_delivery.deliver_due()):
                return

    def close(self) -> None:
        self.sources.close()
        self.http.close()
        self.engine.dispose()

    # --- what the on-call engineer sees -------------------------------------------------------

    def top_level(self) -> list[dict[str, object]]:
        return [m for m in self.slack.messages(CHANNEL) if m.get("thread_ts", m["ts"]) == m["ts"]]

    def replies(self) -> list[str]:
        return [
            str(m.get("text")) for m in self.slack.messages(CHANNEL) if m.get("thread_ts", m["ts"]) != m["ts"]
        ]

    def breaches(self) -> list[BreachRecord]:
        with Session(self.engine) as session:
            return list(session.exec(select(BreachRecord).order_by(BreachRecord.id)))  # type: ignore[arg-type]


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    with FakeSlack() as slack, FakeIncidents() as incidents:
        slack.add_channel(CHANNEL, "alerts", members=[ONCALL])
        made = Pipeline(tmp_path, slack, incidents)
        try:
            yield made
        finally:
            made.close()


def _catalogue(scenario: Scenario, url: str, pipeline: Pipeline, budget_alerts: str) -> str:
    notes = (
        f'slo-bot/channel: {CHANNEL}, slo-bot/budget-alerts: "{budget_alerts}", slo-bot/incident-targets: pd'
    )
    return catalogue(scenario, url, annotations=notes) + pipeline.incidents.target_documents("pd")


def _instants(scenario: Scenario, start: datetime, end: datetime) -> list[datetime]:
    expected = policy_transitions(scenario, start, end)
    return [
        t
        for t in stepping_instants(scenario, expected, around=5 * MINUTE, every=timedelta(hours=1))
        if start <= t <= end
    ]


def test_an_outage_that_crosses_budget_thresholds_is_one_message_one_incident_one_click(
    scenarios: dict[str, Scenario], prometheus: str, pipeline: Pipeline, tmp_path: Path
) -> None:
    outage = scenarios["outage"]
    # the 10-minute full outage spends about 23 % of the 30-day budget: 85 % and 80 % are crossed
    # during the page, so they are notices in its thread
    pipeline.apply(_catalogue(outage, prometheus, pipeline, "85,80"), tmp_path)
    start, end = outage.notes["start"], outage.notes["end"]
    for at in _instants(outage, start - 10 * MINUTE, end + 40 * MINUTE):
        pipeline.evaluate(at)

    top = pipeline.top_level()
    assert len(top) == 1, [m.get("text") for m in top]
    # the page opened it; when the page cleared the 3d ticket still fired: the same breach, lowered
    assert "outage (scenarios) · breach #1" in str(top[0]["text"])
    assert [(b.kind, b.peak) for b in pipeline.breaches()] == [("burn", "page")]
    assert any(r.startswith("PAGE cleared; TICKET still firing") for r in pipeline.replies())
    notices = [r for r in pipeline.replies() if r.startswith("Budget notice")]
    assert len(notices) == 2 and "85 %" in notices[0] and "80 %" in notices[1], pipeline.replies()
    keys = {c.json.get("dedup_key") for c in pipeline.incidents.calls_of("pagerduty")}
    assert keys == {"slo-bot/outage/1"}

    # one click: the breach, and PagerDuty, are acknowledged
    (breach,) = [b for b in pipeline.breaches() if b.state == "firing"]
    with Session(pipeline.engine) as session:
        record = session.get(BreachRecord, breach.id)
        assert record is not None
        assert pipeline.conversation.acknowledge(session, record, ONCALL, pipeline.clock_now, on=True)
        session.commit()
    pipeline.deliver()
    actions = [c.json.get("event_action") for c in pipeline.incidents.calls_of("pagerduty")]
    assert actions.count("acknowledge") == 1


def test_a_slow_burn_ticket_stays_one_message_while_the_budget_crosses_50(
    scenarios: dict[str, Scenario], prometheus: str, pipeline: Pipeline, tmp_path: Path
) -> None:
    slow = scenarios["slow-burn"]
    pipeline.apply(_catalogue(slow, prometheus, pipeline, "50"), tmp_path)
    start, end = slow.span
    for at in _instants(slow, start, end):
        pipeline.evaluate(at)
    top = pipeline.top_level()
    assert len(top) == 1, [m.get("text") for m in top]
    assert "TICKET" in str(top[0]["text"])
    notices = [r for r in pipeline.replies() if r.startswith("Budget notice")]
    assert len(notices) == 1, pipeline.replies()
    assert [b.kind for b in pipeline.breaches()] == ["burn"]


# --- small exact histories (tests/faults/budgetdata.py) with explicit alert policies --------------

SLOW_THEN_FAST = budgetdata._series(
    "slow-then-fast",
    [
        (budgetdata.START, 0.0),
        (budgetdata.EVENTS, 0.005),  # 5x: the 2h ticket fires after about 72 minutes
        (budgetdata.EVENTS + 3 * HOUR, 1.0),  # a 10-minute full outage: the page
        (budgetdata.EVENTS + 3 * HOUR + 10 * MINUTE, 0.005),
        (budgetdata.EVENTS + 5 * HOUR, 0.0),
    ],
)
TWO_OUTAGES = budgetdata._series(
    "two-outages",
    [
        (budgetdata.START, 0.0),
        (budgetdata.EVENTS + HOUR, 1.0),
        (budgetdata.EVENTS + HOUR + 10 * MINUTE, 0.0),
        (budgetdata.EVENTS + 2 * HOUR + 10 * MINUTE, 1.0),  # an hour after the first ended
        (budgetdata.EVENTS + 2 * HOUR + 20 * MINUTE, 0.0),
    ],
)
FAST_EXHAUST = budgetdata._series(
    "fast-exhaust",
    # 5 quiet days, then 30 minutes of full outage: several times the budget of the days stored
    [(budgetdata.START, 0.0), (budgetdata.EVENTS + HOUR, 1.0), (budgetdata.EVENTS + HOUR + 30 * MINUTE, 0.0)],
)


@pytest.fixture(scope="module")
def small_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    problem = tools_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    series = [SLOW_THEN_FAST, TWO_OUTAGES, FAST_EXHAUST, budgetdata.wobble()]
    with budgetdata.serve(series, tmp_path_factory.mktemp("small")) as url:
        yield url


def _small_catalogue(
    series: budgetdata.Series, url: str, pipeline: Pipeline, *, tickets: bool, budget_alerts: str = ""
) -> str:
    notes = f'slo-bot/channel: {CHANNEL}, slo-bot/budget-alerts: "{budget_alerts}"'
    base = budgetdata.catalogue(series, url, annotations=notes, window="30d")
    policies = ", ".join(["{alertPolicyRef: pages}", *(["{alertPolicyRef: tickets}"] if tickets else [])])
    base = base.rstrip() + f"\n  alertPolicies: [{policies}]\n"
    targets = ("pd", "genie")
    documents = catalogues.page_and_ticket_policies(targets) + pipeline.incidents.target_documents(*targets)
    return base + documents


def _every(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    at = start
    while at <= end:
        yield at
        at += step


def test_a_slow_burn_that_becomes_fast_is_one_message_and_one_incident_raised_in_place(
    small_prometheus: str, pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.apply(_small_catalogue(SLOW_THEN_FAST, small_prometheus, pipeline, tickets=True), tmp_path)
    events = budgetdata.EVENTS
    opening: dict[str, float] = {}
    for at in _every(events, events + 3 * HOUR + 30 * MINUTE, 2 * MINUTE):
        pipeline.evaluate(at)
        if not opening and pipeline.breaches():
            opening = json.loads(pipeline.breaches()[0].burn_rates)
    # the message shows its headline's burn as of the last evaluation, not as it opened
    assert set(opening) == {"2h", "10m"}
    latest = json.loads(pipeline.breaches()[0].burn_rates)
    assert set(latest) == {"2h", "10m"} and latest["2h"] > 2 * opening["2h"], (opening, latest)
    top = pipeline.top_level()
    assert len(top) == 1, [m.get("text") for m in top]
    headlines = [str(c.params.get("text", "")) for c in pipeline.slack.calls_of("chat.update")]
    assert any(h.startswith("🔴 PAGE:") for h in headlines), headlines  # the same message, upgraded
    assert any(r.startswith("Raised to PAGE") for r in pipeline.replies()), pipeline.replies()
    pd = [c.json for c in pipeline.incidents.calls_of("pagerduty")]
    assert {c["dedup_key"] for c in pd} == {f"slo-bot/{SLOW_THEN_FAST.name}/1"}
    triggers = [c["payload"]["severity"] for c in pd if c["event_action"] == "trigger"]
    assert triggers == ["warning", "critical"]  # opened as a ticket, raised in place to a page
    genie = pipeline.incidents.calls_of("opsgenie")
    assert [c.method for c in genie] == ["POST", "PUT"]  # one alert, its priority raised
    assert genie[1].json == {"priority": "P1"}

    # one Acknowledge: the breach and both tools
    (breach,) = pipeline.breaches()
    with Session(pipeline.engine) as session:
        record = session.get(BreachRecord, breach.id)
        assert record is not None
        pipeline.conversation.acknowledge(session, record, ONCALL, pipeline.clock_now, on=True)
        session.commit()
    pipeline.deliver()
    assert [c.json["event_action"] for c in pipeline.incidents.calls_of("pagerduty")][-1] == "acknowledge"
    assert pipeline.incidents.calls_of("opsgenie")[-1].path.endswith("/acknowledge")

    # it ends once the burn is over: resolved in both tools, still one message
    for at in _every(events + 3 * HOUR + 32 * MINUTE, events + 5 * HOUR + 30 * MINUTE, 4 * MINUTE):
        pipeline.evaluate(at)
    assert [b.state for b in pipeline.breaches()] == ["resolved"]
    resolved = json.dumps(pipeline.top_level()[0].get("attachments"), ensure_ascii=False)
    assert "*Budget spent*" in resolved and "*Burn rate*" not in resolved
    assert [c.json["event_action"] for c in pipeline.incidents.calls_of("pagerduty")][-1] == "resolve"
    assert len(pipeline.top_level()) == 1


def test_two_outages_an_hour_apart_are_two_breaches_and_a_late_resolve_of_the_first_spares_the_second(
    small_prometheus: str, pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.apply(_small_catalogue(TWO_OUTAGES, small_prometheus, pipeline, tickets=False), tmp_path)
    events = budgetdata.EVENTS
    for at in _every(events + 50 * MINUTE, events + 2 * HOUR + 15 * MINUTE, MINUTE):
        pipeline.evaluate(at)
    top = pipeline.top_level()
    assert len(top) == 2, [m.get("text") for m in top]
    first, second = pipeline.breaches()
    assert (first.state, second.state) == ("resolved", "firing")
    keys = [c.json["dedup_key"] for c in pipeline.incidents.calls_of("pagerduty")]
    assert sorted(set(keys)) == [f"slo-bot/two-outages/{first.id}", f"slo-bot/two-outages/{second.id}"]

    # PagerDuty tells of the first incident's resolution late, after the second breach opened
    webhooks = Webhooks(
        pipeline.engine,
        clock=lambda: pipeline.clock_now,
        conversation=pipeline.conversation,
        pagerduty_secret=SECRET,
    )
    for n, key in enumerate([f"slo-bot/two-outages/{first.id}", None]):
        body = json.dumps(
            {
                "event": {
                    "id": f"late-{n}",
                    "event_type": "incident.resolved",
                    "occurred_at": pipeline.clock_now.isoformat(),
                    "agent": {"summary": "Jane Doe"},
                    "data": {"type": "incident", "id": "PFIRST", "number": 1, "incident_key": key},
                }
            }
        ).encode()
        status, outcome = webhooks.pagerduty(
            {"x-pagerduty-signature": pagerduty_signature(SECRET, body)}, body
        )
        assert (status, outcome) == (200, "applied: resolved")
    pipeline.deliver()
    with Session(pipeline.engine) as session:
        later = session.get(BreachRecord, second.id)
        assert later is not None and later.state == "firing" and later.acknowledged_by is None
        (incident,) = [
            i for i in incidents_of(session=session, breach_id=second.id or 0) if i.kind == "pagerduty"
        ]
        assert incident.state == "triggered"
        (old,) = [i for i in incidents_of(session=session, breach_id=first.id or 0) if i.kind == "pagerduty"]
        assert old.state == "resolved" and old.external_id == "PFIRST"
    assert any("Resolved in PagerDuty by Jane Doe" in r for r in pipeline.replies())


def test_a_budget_hovering_around_50_percent_for_hours_is_one_notice(
    small_prometheus: str, pipeline: Pipeline, tmp_path: Path
) -> None:
    text = budgetdata.catalogue(
        budgetdata.wobble(),
        small_prometheus,
        # no burn breach on this 1-day SLO (its burst would ticket): the budget alone speaks
        annotations=f'slo-bot/channel: {CHANNEL}, slo-bot/budget-alerts: "50", slo-bot/min-bad-events: "1e9"',
    )
    pipeline.apply(text, tmp_path)
    for k in range(10):  # the remaining budget alternates 49.75 % / 50.25 % for 8 hours, then recovers
        pipeline.evaluate(budgetdata.WOBBLE_START + 45 * MINUTE + k * HOUR)
    top = pipeline.top_level()
    assert len(top) == 1, [m.get("text") for m in top]
    assert "BUDGET BELOW 50 % (budget notice)" in str(top[0]["text"])  # now resolved: the first post's words
    assert [(b.kind, b.state) for b in pipeline.breaches()] == [("budget", "resolved")]
    assert not [r for r in pipeline.replies() if r.startswith("Budget notice")]


def test_a_fast_outage_that_exhausts_the_budget_is_one_message_with_the_notices_in_its_thread(
    small_prometheus: str, pipeline: Pipeline, tmp_path: Path
) -> None:
    text = _small_catalogue(FAST_EXHAUST, small_prometheus, pipeline, tickets=False, budget_alerts="50,25,0")
    pipeline.apply(text, tmp_path)
    events = budgetdata.EVENTS
    for at in _every(events + 50 * MINUTE, events + HOUR + 30 * MINUTE, MINUTE):  # to the outage's end
        pipeline.evaluate(at)
    top = pipeline.top_level()
    assert len(top) == 1, [m.get("text") for m in top]  # not PAGE + BUDGET 50 + BUDGET 25 + BUDGET 0
    assert str(top[0]["text"]).startswith("🔴 PAGE: fast-exhaust (faults) · breach #1")
    notices = [r for r in pipeline.replies() if r.startswith("Budget notice")]
    said = " | ".join(notices)
    assert "below 50 %" in said and "below 25 %" in said and "is exhausted" in said, said
    assert len(notices) <= 3
    exhausted = next(n for n in notices if "is exhausted" in n)
    assert "the SLO is broken for this window" in exhausted and "freeze risky changes" in exhausted
    assert "expected" in exhausted  # when the budget comes back
    shown = json.dumps(top[0].get("attachments"), ensure_ascii=False)
    assert "*Budget notices*" in shown and "*Budget back*" in shown
    # the budget line says since when it is spent: the evaluation that found it so, as the notice did
    since = re.search(r"exhausted since <!date\^(\d+)\^", shown)
    noticed = re.search(r"exhausted at <!date\^(\d+)\^", shown)
    assert since and noticed and since.group(1) == noticed.group(1), shown
    assert "Budget runs out" not in shown
    keys = {c.json["dedup_key"] for c in pipeline.incidents.calls_of("pagerduty")}
    assert keys == {"slo-bot/fast-exhaust/1"}
    genie = {c.json.get("alias") for c in pipeline.incidents.calls_of("opsgenie") if c.method == "POST"}
    assert genie == {"slo-bot/fast-exhaust/1"}
    for at in _every(events + HOUR + 31 * MINUTE, events + HOUR + 45 * MINUTE, MINUTE):
        pipeline.evaluate(at)
    # the page ends; the spent budget was said once, in its thread: no message of its own follows
    assert [(b.kind, b.state) for b in pipeline.breaches()] == [("burn", "resolved")]
    assert len(pipeline.top_level()) == 1

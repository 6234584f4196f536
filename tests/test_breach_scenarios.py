"""One breach, one conversation, end to end: a real Prometheus holding the scenarios of
tests/scenarios.py, the scheduler's evaluations minute by minute, Slack through the outbox to the fake
Slack Web API, and PagerDuty through the outbox to the fake Events API.

Counts what an on-call engineer would count: top-level messages in the channel, replies in the
thread, incidents (dedup keys) upstream, clicks needed.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from slack_sdk import WebClient
from sqlmodel import Session, select

from bot import cli, jobs
from bot.app import SourcePool
from bot.incidents.delivery import IncidentDelivery
from bot.incidents.sync import IncidentHook
from bot.slack.delivery import SlackDelivery
from bot.slack.notify import SlackHook, set_acknowledged
from bot.store import db
from bot.store.models import BreachRecord
from tests.fakeincidents import FakeIncidents
from tests.fakeslack import FakeSlack
from tests.promharness import tools_problem
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
PD_TARGET = """
---
apiVersion: openslo/v1
kind: AlertNotificationTarget
metadata:
  name: pd
  annotations: {{slo-bot/routing-key: "{routing_key}", slo-bot/url: "{pd_url}"}}
spec: {{target: pagerduty}}
"""


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
        self.slack_delivery = SlackDelivery(self.engine, client, clock=lambda: self.clock_now)
        self.http = httpx.Client(timeout=10)
        self.incident_delivery = IncidentDelivery(self.engine, self.http, clock=lambda: self.clock_now)
        self.hooks = [SlackHook(CHANNEL), IncidentHook()]
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
    pd = PD_TARGET.format(routing_key=pipeline.incidents.routing_key, pd_url=pipeline.incidents.pagerduty_url)
    return catalogue(scenario, url, annotations=notes) + pd


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
        assert set_acknowledged(session, record, ONCALL, pipeline.clock_now, on=True)
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

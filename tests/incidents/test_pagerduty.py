"""PagerDutyTarget: the events it sends, how failures are classified, whole incidents against the fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from bot.incidents import (
    ACKNOWLEDGE,
    ESCALATE,
    RESOLVE,
    TRIGGER,
    UNACKNOWLEDGE,
    Sent,
    TargetRejected,
    TargetUnavailable,
)
from bot.incidents.base import RAISE
from bot.incidents.pagerduty import PagerDutyTarget
from tests.fakeincidents import PAGERDUTY_FROM, PAGERDUTY_TOKEN, ROUTING_KEY, FakeIncidents
from tests.incidents import event, incident, mock_client, raises, settings

KEY = "slo-bot/checkout-availability/7"  # breach #7's, whatever its severity
ACCEPTED = {"status": "success", "message": "Event processed", "dedup_key": KEY}


def accepted(request: httpx.Request) -> httpx.Response:
    return httpx.Response(202, json=ACCEPTED)


def target(client: httpx.Client, **annotations: str) -> PagerDutyTarget:
    return PagerDutyTarget(settings("pagerduty", {"routing-key": ROUTING_KEY, **annotations}), client)


@pytest.fixture
def fake() -> Iterator[FakeIncidents]:
    with FakeIncidents() as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as http:
        yield http


def on_fake(fake: FakeIncidents, client: httpx.Client, *, rest: bool = False) -> PagerDutyTarget:
    extra = {"api-url": fake.pagerduty_api_url, "api-token": PAGERDUTY_TOKEN, "from": PAGERDUTY_FROM}
    return target(client, url=fake.pagerduty_url, **(extra if rest else {}))


# --- what is sent ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("page", "critical"), ("budget-0", "error"), ("ticket", "warning"), ("budget-25", "warning"),
     ("no-data", "info")],
)  # fmt: skip
def test_trigger_is_an_events_api_v2_event_with_the_alert_in_it(severity: str, expected: str) -> None:
    seen: list[httpx.Request] = []
    with mock_client(accepted, seen) as client:
        sent = target(client).send(event(TRIGGER, severity, actor="ana (Slack)", note="declared from Slack"))
    assert sent == Sent(reference=KEY)
    (request,) = seen
    assert str(request.url) == "https://events.pagerduty.com/v2/enqueue"
    body = json.loads(request.content)
    assert body["routing_key"] == ROUTING_KEY
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == KEY
    assert body["payload"] == {
        "summary": "checkout-availability: burning error budget 14.4x too fast",
        "source": "checkout",
        "severity": expected,
        "timestamp": "2024-05-01T12:00:00Z",
        "component": "checkout-availability",
        "group": "checkout",
        "class": severity,
        "custom_details": {
            "burn_rate_1h": 14.4,
            "budget_left_ratio": 0.62,
            "actor": "ana (Slack)",
            "note": "declared from Slack",
        },
    }
    assert body["links"][0] == {
        "href": "https://example.slack.com/archives/C0ALERTS/p1714564800000100",
        "text": "Slack thread",
    }
    assert body["client"] == "slo-bot"


def test_a_long_summary_is_cut_to_what_pagerduty_takes() -> None:
    seen: list[httpx.Request] = []
    with mock_client(accepted, seen) as client:
        target(client).send(event(TRIGGER, incident=incident(summary="x" * 2000)))
    assert len(json.loads(seen[0].content)["payload"]["summary"]) == 1024


@pytest.mark.parametrize(
    ("annotations", "url"),
    [
        ({}, "https://events.pagerduty.com/v2/enqueue"),
        ({"region": "eu"}, "https://events.eu.pagerduty.com/v2/enqueue"),
        ({"region": "EU"}, "https://events.eu.pagerduty.com/v2/enqueue"),
        ({"url": "https://pd-proxy.internal/v2/enqueue"}, "https://pd-proxy.internal/v2/enqueue"),
    ],
)
def test_the_endpoint_follows_region_and_url(annotations: dict[str, str], url: str) -> None:
    seen: list[httpx.Request] = []
    with mock_client(accepted, seen) as client:
        target(client, **annotations).send(event(RESOLVE))
    assert str(seen[0].url) == url


@pytest.mark.parametrize("action", [ACKNOWLEDGE, RESOLVE])
def test_acknowledge_and_resolve_name_the_alert_by_its_key(action: str) -> None:
    seen: list[httpx.Request] = []
    with mock_client(accepted, seen) as client:
        target(client).send(event(action))
    assert json.loads(seen[0].content) == {
        "routing_key": ROUTING_KEY,
        "event_action": action,
        "dedup_key": KEY,
    }


def test_unacknowledge_is_skipped_since_the_events_api_has_none() -> None:
    seen: list[httpx.Request] = []
    with mock_client(accepted, seen) as client:
        assert target(client).send(event(UNACKNOWLEDGE)) == Sent(skipped=True)
    assert seen == []


def test_escalate_without_an_api_token_re_triggers_as_critical() -> None:
    seen: list[httpx.Request] = []
    with mock_client(accepted, seen) as client:
        target(client).send(event(ESCALATE, "ticket", note="unacknowledged for 30m"))
    body = json.loads(seen[0].content)
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == KEY  # lands on the open incident
    assert body["payload"]["severity"] == "critical"
    assert body["payload"]["summary"].startswith("Escalated: checkout-availability")
    assert body["payload"]["custom_details"]["escalated"] is True
    assert body["payload"]["custom_details"]["note"] == "unacknowledged for 30m"


# --- failures ----------------------------------------------------------------------------------------

INVALID_EVENT = {
    "status": "invalid event",
    "message": "Event object is invalid",
    "errors": [f"Invalid routing key {ROUTING_KEY}"],  # a key echoed back must not reach the log
}


@pytest.mark.parametrize(
    ("handler", "kind", "words", "retry_after"),
    [
        (raises(httpx.ReadTimeout), TargetUnavailable, "no answer within the timeout", None),
        (raises(httpx.ConnectError, "Connection refused"), TargetUnavailable, "Connection refused", None),
        (lambda r: httpx.Response(500, json={"status": "error", "message": "Internal"}), TargetUnavailable,
         "HTTP 500", None),
        (lambda r: httpx.Response(502, text="<html>Bad Gateway</html>"), TargetUnavailable, "HTTP 502", None),
        (lambda r: httpx.Response(429, headers={"Retry-After": "30"}, json={"status": "throttle event"}),
         TargetUnavailable, "HTTP 429", timedelta(seconds=30)),
        (lambda r: httpx.Response(400, json=INVALID_EVENT), TargetRejected, "Invalid routing key ***",
         None),
        (lambda r: httpx.Response(404, text="Not Found"), TargetRejected, "HTTP 404", None),
    ],
)  # fmt: skip
def test_failures_are_classified_and_never_show_the_key(
    handler: object, kind: type[Exception], words: str, retry_after: timedelta | None
) -> None:
    with mock_client(handler) as client, pytest.raises(kind) as caught:  # type: ignore[arg-type]
        target(client).send(event(TRIGGER))
    message = str(caught.value)
    assert "PagerDuty target 'oncall'" in message
    assert words in message
    assert ROUTING_KEY not in message
    if retry_after is not None:
        assert isinstance(caught.value, TargetUnavailable)
        assert caught.value.retry_after == retry_after


def test_a_long_vendor_message_is_cut_only_after_the_key_is_masked() -> None:
    echoed = httpx.Response(400, json={"message": "x" * 490 + ROUTING_KEY})
    with mock_client(lambda r: echoed) as client, pytest.raises(TargetRejected) as caught:
        target(client).send(event(TRIGGER))
    assert ROUTING_KEY[:8] not in str(caught.value)


def test_an_accepted_event_with_an_unreadable_answer_is_still_delivered() -> None:
    with mock_client(lambda r: httpx.Response(202, text="accepted")) as client:
        assert target(client).send(event(TRIGGER)) == Sent(reference=None)


@pytest.mark.parametrize(
    ("annotations", "words"),
    [
        ({"routing-key": ""}, "annotation slo-bot/routing-key is missing"),
        ({"routing-key": "R0UT1NGKEY-too-short"}, "32-character integration key"),
        ({"region": "ap"}, "slo-bot/region must be us or eu"),
        ({"url": "events.pagerduty.com/v2/enqueue"}, "slo-bot/url is not an http(s) URL"),
    ],
)
def test_bad_settings_are_refused_before_sending(annotations: dict[str, str], words: str) -> None:
    with httpx.Client() as client, pytest.raises(TargetRejected, match="oncall") as caught:
        target(client, **annotations)
    assert words in str(caught.value)
    assert "R0UT1NGKEY" not in str(caught.value)


# --- against the fake PagerDuty --------------------------------------------------------------------


def test_an_incident_lives_and_ends_in_pagerduty(fake: FakeIncidents, client: httpx.Client) -> None:
    pagerduty = on_fake(fake, client)
    assert pagerduty.send(event(TRIGGER)).reference == KEY
    upstream = fake.incident("pagerduty", KEY)
    assert upstream is not None and (upstream.status, upstream.severity) == ("triggered", "critical")

    pagerduty.send(event(ACKNOWLEDGE))
    assert fake.incident("pagerduty", KEY).status == "acknowledged"  # type: ignore[union-attr]

    pagerduty.send(event(ESCALATE, note="no answer in 15m"))
    upstream = fake.incident("pagerduty", KEY)
    assert upstream is not None
    assert upstream.triggers == 2  # folded into the same incident, not a new one
    assert upstream.last["payload"]["summary"].startswith("Escalated: ")

    pagerduty.send(event(RESOLVE))
    assert fake.incident("pagerduty", KEY).status == "resolved"  # type: ignore[union-attr]
    assert fake.out_of_order == []


def test_a_ticket_raised_to_a_page_is_the_same_incident_made_critical(
    fake: FakeIncidents, client: httpx.Client
) -> None:
    pagerduty = on_fake(fake, client)
    pagerduty.send(event(TRIGGER, "ticket"))
    assert fake.incident("pagerduty", KEY).severity == "warning"  # type: ignore[union-attr]
    pagerduty.send(event(RAISE, "page", note="Raised to PAGE"))
    upstream = fake.incident("pagerduty", KEY)
    assert upstream is not None and list(fake.incidents("pagerduty")) == [KEY]
    assert (upstream.status, upstream.severity, upstream.triggers) == ("triggered", "critical", 2)
    raised = fake.calls_of("pagerduty", ok_only=True)[-1].json
    assert raised["event_action"] == "trigger" and raised["dedup_key"] == KEY
    assert raised["payload"]["custom_details"]["note"] == "Raised to PAGE"


def test_escalate_with_the_rest_api_moves_the_incident_one_level_up(
    fake: FakeIncidents, client: httpx.Client
) -> None:
    pagerduty = on_fake(fake, client, rest=True)
    pagerduty.send(event(TRIGGER))
    pagerduty.send(event(ACKNOWLEDGE))
    first = pagerduty.send(event(ESCALATE))
    upstream = fake.incident("pagerduty", KEY)
    assert upstream is not None
    assert first.reference == upstream.id
    assert (upstream.level, upstream.status) == (2, "triggered")  # the next level is paged

    pagerduty.send(event(ESCALATE))
    assert fake.incident("pagerduty", KEY).level == 3  # type: ignore[union-attr]
    put = fake.calls_of("pagerduty-api")[-1]
    assert put.headers["from"] == PAGERDUTY_FROM
    assert put.json == {"incident": {"type": "incident_reference", "escalation_level": 3}}

    with pytest.raises(TargetRejected, match="escalation_level must be between 1 and 3"):
        pagerduty.send(event(ESCALATE))  # the fake policy has three levels


def test_escalating_a_resolved_incident_changes_nothing(fake: FakeIncidents, client: httpx.Client) -> None:
    pagerduty = on_fake(fake, client, rest=True)
    pagerduty.send(event(TRIGGER))
    pagerduty.send(event(RESOLVE))
    assert pagerduty.send(event(ESCALATE)) == Sent(skipped=True)
    assert [c.method for c in fake.calls_of("pagerduty-api")] == ["GET"]
    assert fake.incident("pagerduty", KEY).status == "resolved"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("annotations", "words"),
    [
        ({"api-token": "u+not-the-token"}, "HTTP 401"),
        ({"from": "someone@else.example"}, "From header must be the email of a user"),
    ],
)
def test_rest_api_refusals_name_what_to_fix(
    fake: FakeIncidents, client: httpx.Client, annotations: dict[str, str], words: str
) -> None:
    extra = {"api-url": fake.pagerduty_api_url, "api-token": PAGERDUTY_TOKEN, "from": PAGERDUTY_FROM}
    pagerduty = target(client, url=fake.pagerduty_url, **{**extra, **annotations})
    pagerduty.send(event(TRIGGER))
    with pytest.raises(TargetRejected, match="REST API") as caught:
        pagerduty.send(event(ESCALATE))
    assert words in str(caught.value)
    assert "u+not-the-token" not in str(caught.value)


def test_acknowledging_an_alert_never_triggered_is_noticed(fake: FakeIncidents, client: httpx.Client) -> None:
    on_fake(fake, client).send(event(ACKNOWLEDGE))
    assert fake.out_of_order == [("pagerduty", KEY, "acknowledge")]


def test_rate_limits_and_outages_are_retryable(fake: FakeIncidents, client: httpx.Client) -> None:
    pagerduty = on_fake(fake, client)
    fake.fail("pagerduty", status=429, times=1, retry_after=7)
    with pytest.raises(TargetUnavailable) as caught:
        pagerduty.send(event(TRIGGER))
    assert caught.value.retry_after == timedelta(seconds=7)
    fake.down("pagerduty", seconds=30)
    with pytest.raises(TargetUnavailable, match="cannot reach it"):
        pagerduty.send(event(TRIGGER))
    fake.heal()
    pagerduty.send(event(TRIGGER))
    assert [c.status for c in fake.calls_of("pagerduty")] == [429, 0, 202]


def test_a_slow_answer_times_out_though_pagerduty_took_the_event(fake: FakeIncidents) -> None:
    fake.hang("pagerduty", 1.0)
    with httpx.Client(timeout=0.2) as impatient, pytest.raises(TargetUnavailable, match="timeout"):
        on_fake(fake, impatient).send(event(TRIGGER))
    fake.wait_calls("pagerduty", 1)  # PagerDuty finished the work after the client left
    # the retry the outbox makes is folded into the same incident by its dedup key
    with httpx.Client(timeout=5) as client:
        on_fake(fake, client).send(event(TRIGGER))
    upstream = fake.incident("pagerduty", KEY)
    assert upstream is not None and upstream.triggers == 2 and len(fake.incidents("pagerduty")) == 1


# --- the fake holds PagerDuty's rules ---------------------------------------------------------------

GOOD = {
    "routing_key": ROUTING_KEY,
    "event_action": "trigger",
    "dedup_key": "k",
    "payload": {"summary": "s", "source": "checkout", "severity": "critical"},
}


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"routing_key": "short"}, "Length of 'routing_key' is incorrect"),
        ({"routing_key": "f" * 32}, "Invalid routing key"),
        ({"event_action": "escalate"}, "'event_action' is invalid"),
        ({"event_action": "resolve", "dedup_key": None}, "'dedup_key' is missing or blank"),
        ({"dedup_key": "k" * 256}, "at most 255 characters"),
        ({"payload": {"summary": "s", "source": "c", "severity": "page"}}, "'payload.severity' is invalid"),
        ({"payload": {"summary": "", "source": "c", "severity": "info"}}, "'payload.summary' is missing"),
        ({"payload": {"summary": "s" * 1025, "source": "c", "severity": "info"}}, "exceeds 1024"),
        ({"payload": {"summary": "s", "severity": "info"}}, "'payload.source' is missing"),
        ({"payload": {"summary": "s", "source": "c", "severity": "info", "timestamp": "yesterday"}},
         "not an ISO 8601 timestamp"),
        ({"links": [{"text": "no href"}]}, "'href'"),
    ],
)  # fmt: skip
def test_the_fake_refuses_what_pagerduty_refuses(
    fake: FakeIncidents, change: dict[str, object], error: str
) -> None:
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with httpx.Client() as client:
        answer = client.post(fake.pagerduty_url, json=body)
    assert answer.status_code == 400
    assert answer.json()["status"] == "invalid event"
    assert any(error in e for e in answer.json()["errors"])
    assert fake.incidents("pagerduty") == {}


def test_the_fake_takes_a_well_formed_event(fake: FakeIncidents) -> None:
    with httpx.Client() as client:
        answer = client.post(fake.pagerduty_url, json=GOOD)
        garbled = client.post(
            fake.pagerduty_url, content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert (answer.status_code, answer.json()) == (202, {**ACCEPTED, "dedup_key": "k"})
    assert garbled.status_code == 400 and garbled.json()["errors"] == ["JSON parse error"]

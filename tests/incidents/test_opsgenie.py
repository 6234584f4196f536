"""OpsgenieTarget: the alert requests it sends, how failures are classified, whole alerts against the fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

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
from bot.incidents.opsgenie import OpsgenieTarget
from tests.fakeincidents import OPSGENIE_KEY, FakeIncidents
from tests.incidents import event, incident, mock_client, raises, settings

KEY = "slo-bot/checkout-availability/7"  # breach #7's, whatever its severity
QUOTED = "slo-bot%2Fcheckout-availability%2F7"
REQUEST_ID = "43a29c5c-3dbf-4fa4-9c26-f4f71023e120"
ACCEPTED = {"result": "Request will be processed", "took": 0.302, "requestId": REQUEST_ID}


def accepted(request: httpx.Request) -> httpx.Response:
    return httpx.Response(202, json=ACCEPTED)


def target(client: httpx.Client, **annotations: str) -> OpsgenieTarget:
    return OpsgenieTarget(settings("opsgenie", {"api-key": OPSGENIE_KEY, **annotations}), client)


@pytest.fixture
def fake() -> Iterator[FakeIncidents]:
    with FakeIncidents() as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as http:
        yield http


# --- what is sent ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "priority"),
    [("page", "P1"), ("budget-0", "P2"), ("ticket", "P3"), ("budget-50", "P3"), ("no-data", "P3")],
)
def test_trigger_creates_an_alert_keyed_by_its_alias(severity: str, priority: str) -> None:
    seen: list[httpx.Request] = []
    with mock_client(accepted, seen) as client:
        sent = target(client, responders="sre, payments ,").send(
            event(TRIGGER, severity, actor="ana (Slack)")
        )
    assert sent == Sent(reference=REQUEST_ID)
    (request,) = seen
    assert str(request.url) == "https://api.opsgenie.com/v2/alerts"
    assert request.headers["Authorization"] == f"GenieKey {OPSGENIE_KEY}"
    body = json.loads(request.content)
    assert body["message"] == "checkout-availability: burning error budget 14.4x too fast"
    assert body["alias"] == KEY
    assert body["priority"] == priority
    assert body["responders"] == [{"type": "team", "name": "sre"}, {"type": "team", "name": "payments"}]
    assert body["entity"] == "checkout-availability"
    assert (body["source"], body["user"]) == ("slo-bot", "ana (Slack)")
    assert body["details"]["burn_rate_1h"] == "14.4"  # Opsgenie takes strings only
    assert all(isinstance(v, str) for v in body["details"].values())
    assert (
        "Slack thread: https://example.slack.com/archives/C0ALERTS/p1714564800000100" in body["description"]
    )
    assert "slo:checkout-availability" in body["tags"]


def test_long_fields_are_cut_to_opsgenie_limits() -> None:
    seen: list[httpx.Request] = []
    huge = incident(
        summary="m" * 300,
        slo="s" * 600,
        details={f"key{i}": "v" * 400 for i in range(40)},
    )
    with mock_client(accepted, seen) as client:
        target(client).send(event(TRIGGER, incident=huge, note="n" * 30_000))
    body = json.loads(seen[0].content)
    assert len(body["message"]) == 130
    assert len(body["entity"]) == 512
    assert len(body["note"]) == 25_000
    assert len(body["description"]) == 15_000
    assert all(len(tag) <= 50 for tag in body["tags"])
    assert sum(len(k) + len(v) for k, v in body["details"].items()) <= 8000


@pytest.mark.parametrize(
    ("action", "path"),
    [(ACKNOWLEDGE, "acknowledge"), (UNACKNOWLEDGE, "unacknowledge"), (RESOLVE, "close")],
)
def test_alert_actions_name_the_alert_by_its_encoded_alias(action: str, path: str) -> None:
    seen: list[httpx.Request] = []
    with mock_client(accepted, seen) as client:
        target(client, region="eu").send(event(action, actor="ana (Slack)", note="looking"))
    (request,) = seen
    assert request.url.raw_path.decode() == f"/v2/alerts/{QUOTED}/{path}?identifierType=alias"
    assert request.url.host == "api.eu.opsgenie.com"
    assert json.loads(request.content) == {"user": "ana (Slack)", "source": "slo-bot", "note": "looking"}


def test_escalate_uses_the_named_escalation() -> None:
    seen: list[httpx.Request] = []
    with mock_client(accepted, seen) as client:
        target(client, escalation="Checkout nightwatch").send(event(ESCALATE))
    assert seen[0].url.path.endswith("/escalate")
    body = json.loads(seen[0].content)
    assert body["escalation"] == {"type": "escalation", "name": "Checkout nightwatch"}


def test_escalate_without_an_escalation_raises_the_priority() -> None:
    seen: list[httpx.Request] = []
    with mock_client(accepted, seen) as client:
        target(client).send(event(ESCALATE, "ticket"))
    assert seen[0].method == "PUT"
    assert seen[0].url.raw_path.decode().endswith(f"{QUOTED}/priority?identifierType=alias")
    assert json.loads(seen[0].content) == {"priority": "P1"}


# --- failures ----------------------------------------------------------------------------------------

UNPROCESSABLE = {  # the shape of Opsgenie's documented 422 answer
    "message": "Request body is not processable. Please check the errors.",
    "errors": {"message": "Message can not be empty."},
    "took": 0.083,
    "requestId": REQUEST_ID,
}


@pytest.mark.parametrize(
    ("handler", "kind", "words"),
    [
        (raises(httpx.ConnectTimeout), TargetUnavailable, "no answer within the timeout"),
        (lambda r: httpx.Response(503, text="Service Unavailable"), TargetUnavailable, "HTTP 503"),
        (lambda r: httpx.Response(422, json=UNPROCESSABLE), TargetRejected, "Message can not be empty"),
        (lambda r: httpx.Response(401, json={"message": f"Key {OPSGENIE_KEY} is not valid", "took": 0.0}),
         TargetRejected, "check the annotations slo-bot/api-key and slo-bot/region"),
        (lambda r: httpx.Response(402, json={"message": "Your plan does not allow it"}), TargetRejected,
         "plan does not allow"),
    ],
)  # fmt: skip
def test_failures_are_classified_and_never_show_the_key(
    handler: object, kind: type[Exception], words: str
) -> None:
    with mock_client(handler) as client, pytest.raises(kind) as caught:  # type: ignore[arg-type]
        target(client).send(event(TRIGGER))
    assert "Opsgenie target 'oncall'" in str(caught.value)
    assert words in str(caught.value)
    assert OPSGENIE_KEY not in str(caught.value)


def test_a_rate_limit_carries_its_retry_after() -> None:
    answer = httpx.Response(
        429, headers={"Retry-After": "12"}, json={"message": "You are making too many requests"}
    )
    with mock_client(lambda r: answer) as client, pytest.raises(TargetUnavailable) as caught:
        target(client).send(event(ACKNOWLEDGE))
    assert caught.value.retry_after == timedelta(seconds=12)
    assert "too many requests" in str(caught.value)


def test_a_retry_after_given_as_an_http_date_is_the_time_until_then() -> None:
    then = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    answer = httpx.Response(503, headers={"Retry-After": then}, json={"message": "Service unavailable"})
    with mock_client(lambda r: answer) as client, pytest.raises(TargetUnavailable) as caught:
        target(client).send(event(TRIGGER))
    assert caught.value.retry_after is not None
    assert timedelta(seconds=80) < caught.value.retry_after <= timedelta(seconds=90)


def test_missing_api_key_is_refused_before_sending() -> None:
    with httpx.Client() as client, pytest.raises(TargetRejected, match="slo-bot/api-key is missing"):
        OpsgenieTarget(settings("opsgenie", {"region": "eu"}), client)


# --- against the fake Opsgenie -----------------------------------------------------------------------


def test_an_alert_lives_and_closes_in_opsgenie(fake: FakeIncidents, client: httpx.Client) -> None:
    opsgenie = target(client, url=fake.opsgenie_url, responders="sre", escalation="Checkout nightwatch")
    assert opsgenie.send(event(TRIGGER)).reference
    alert = fake.incident("opsgenie", KEY)
    assert alert is not None and (alert.status, alert.priority) == ("triggered", "P1")

    opsgenie.send(event(ACKNOWLEDGE))
    assert fake.incident("opsgenie", KEY).status == "acknowledged"  # type: ignore[union-attr]
    opsgenie.send(event(UNACKNOWLEDGE))
    assert fake.incident("opsgenie", KEY).status == "triggered"  # type: ignore[union-attr]

    opsgenie.send(event(ESCALATE, note="no answer in 15m"))
    alert = fake.incident("opsgenie", KEY)
    assert alert is not None and (alert.level, alert.escalations) == (2, ["Checkout nightwatch"])

    opsgenie.send(event(RESOLVE))
    assert fake.incident("opsgenie", KEY).status == "resolved"  # type: ignore[union-attr]
    assert fake.out_of_order == []


def test_a_ticket_raised_to_a_page_gets_the_page_priority_by_its_alias(
    fake: FakeIncidents, client: httpx.Client
) -> None:
    opsgenie = target(client, url=fake.opsgenie_url)
    opsgenie.send(event(TRIGGER, "ticket"))
    assert fake.incident("opsgenie", KEY).priority == "P3"  # type: ignore[union-attr]
    opsgenie.send(event(RAISE, "page"))
    alert = fake.incident("opsgenie", KEY)
    assert alert is not None and (alert.status, alert.priority, alert.triggers) == ("triggered", "P1", 1)
    call = fake.calls_of("opsgenie", ok_only=True)[-1]
    assert (call.method, call.path) == (
        "PUT",
        f"/opsgenie/v2/alerts/{QUOTED}/priority",
    )
    assert fake.out_of_order == []


def test_escalating_without_an_escalation_makes_the_alert_p1(
    fake: FakeIncidents, client: httpx.Client
) -> None:
    opsgenie = target(client, url=fake.opsgenie_url)
    opsgenie.send(event(TRIGGER, "ticket"))
    assert fake.incident("opsgenie", KEY).priority == "P3"  # type: ignore[union-attr]
    opsgenie.send(event(ESCALATE, "ticket"))
    assert fake.incident("opsgenie", KEY).priority == "P1"  # type: ignore[union-attr]


def test_an_oversized_alert_is_still_accepted(fake: FakeIncidents, client: httpx.Client) -> None:
    huge = incident(summary="m" * 300, details={f"key{i}": "v" * 400 for i in range(40)})
    target(client, url=fake.opsgenie_url).send(event(TRIGGER, incident=huge, note="n" * 30_000))
    assert fake.incident("opsgenie", KEY) is not None


def test_a_wrong_key_is_refused(fake: FakeIncidents, client: httpx.Client) -> None:
    opsgenie = OpsgenieTarget(
        settings("opsgenie", {"api-key": "not-the-key", "url": fake.opsgenie_url}), client
    )
    with pytest.raises(TargetRejected, match="Could not authenticate") as caught:
        opsgenie.send(event(TRIGGER))
    assert "not-the-key" not in str(caught.value)


def test_closing_an_alert_never_created_is_noticed(fake: FakeIncidents, client: httpx.Client) -> None:
    target(client, url=fake.opsgenie_url).send(event(RESOLVE))  # Opsgenie accepts it, then finds nothing
    assert fake.out_of_order == [("opsgenie", KEY, "close")]


def test_a_server_error_then_recovery(fake: FakeIncidents, client: httpx.Client) -> None:
    opsgenie = target(client, url=fake.opsgenie_url)
    fake.fail("opsgenie", status=500, times=1)
    with pytest.raises(TargetUnavailable, match="HTTP 500"):
        opsgenie.send(event(TRIGGER))
    opsgenie.send(event(TRIGGER))
    assert fake.incident("opsgenie", KEY) is not None


# --- the fake holds Opsgenie's rules -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("", {"alias": "a"}, "message"),
        ("", {"message": "m" * 131}, "message"),
        ("", {"message": "m", "alias": "a" * 513}, "alias"),
        ("", {"message": "m", "priority": "P0"}, "priority"),
        ("", {"message": "m", "tags": ["t" * 51]}, "tags"),
        ("", {"message": "m", "details": {"burn": 14.4}}, "details"),
        ("", {"message": "m", "responders": [{"name": "sre"}]}, "responders"),
        ("/a/acknowledge", {"user": "u" * 101}, "user"),
        ("/a/escalate", {"escalation": {"name": "x"}}, "escalation"),
    ],
)
def test_the_fake_refuses_what_opsgenie_refuses(
    fake: FakeIncidents, path: str, body: object, field: str
) -> None:
    with httpx.Client() as client:
        answer = client.post(
            f"{fake.opsgenie_url}/v2/alerts{path}",
            params={"identifierType": "alias"},
            json=body,
            headers={"Authorization": f"GenieKey {OPSGENIE_KEY}"},
        )
    assert answer.status_code == 422
    assert field in answer.json()["errors"]
    assert answer.json()["message"] == "Request body is not processable. Please check the errors."


def test_the_fake_wants_the_alias_named_as_such(fake: FakeIncidents) -> None:
    headers = {"Authorization": f"GenieKey {OPSGENIE_KEY}"}
    with httpx.Client(headers=headers) as client:
        client.post(f"{fake.opsgenie_url}/v2/alerts", json={"message": "m", "alias": "a"})
        answer = client.post(f"{fake.opsgenie_url}/v2/alerts/a/acknowledge", json={})
    assert answer.status_code == 202  # accepted, and then Opsgenie finds no alert with that id
    assert fake.incident("opsgenie", "a").status == "triggered"  # type: ignore[union-attr]
    assert fake.out_of_order == [("opsgenie", "id:a", "acknowledge")]

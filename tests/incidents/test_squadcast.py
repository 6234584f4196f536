"""SquadcastTarget: what the Incident Webhook gets, what is skipped, and that its URL never leaks."""

from __future__ import annotations

import json
from collections.abc import Iterator

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
from bot.incidents.squadcast import SquadcastTarget
from tests.fakeincidents import SQUADCAST_KEY, FakeIncidents
from tests.incidents import event, incident, mock_client, raises, settings

KEY = "slo-bot/checkout-availability/7"  # breach #7's, whatever its severity
WEBHOOK = f"https://api.squadcast.com/v2/incidents/api/{SQUADCAST_KEY}"
UNKNOWN_KEY = {"meta": {"status": 404, "error_message": f"no key {SQUADCAST_KEY}"}}  # the key echoed back


def accepted(request: httpx.Request) -> httpx.Response:
    return httpx.Response(202)


def target(client: httpx.Client, url: str = WEBHOOK) -> SquadcastTarget:
    return SquadcastTarget(settings("squadcast", {"url": url}), client)


@pytest.fixture
def fake() -> Iterator[FakeIncidents]:
    with FakeIncidents() as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as http:
        yield http


def test_trigger_posts_message_description_tags_and_event_id() -> None:
    seen: list[httpx.Request] = []
    with mock_client(accepted, seen) as client:
        assert target(client).send(event(TRIGGER, actor="ana (Slack)")) == Sent()
    (request,) = seen
    assert str(request.url) == WEBHOOK
    body = json.loads(request.content)
    assert body["message"] == "checkout-availability: burning error budget 14.4x too fast"
    assert body["status"] == "trigger"
    assert body["event_id"] == KEY
    assert body["tags"] == {
        "source": "slo-bot",
        "slo": "checkout-availability",
        "severity": "page",
        "service": "checkout",
        "declared_by": "ana (Slack)",
    }
    assert "- **burn_rate_1h**: 14.4" in body["description"]
    assert "[Dashboard](https://grafana.example.com/d/checkout)" in body["description"]


def test_resolve_names_the_incident_by_its_event_id() -> None:
    seen: list[httpx.Request] = []
    with mock_client(accepted, seen) as client:
        target(client).send(event(RESOLVE))
    body = json.loads(seen[0].content)
    assert (body["status"], body["event_id"]) == ("resolve", KEY)


@pytest.mark.parametrize("action", [ACKNOWLEDGE, UNACKNOWLEDGE, ESCALATE])
def test_actions_the_webhook_lacks_are_skipped_without_a_request(action: str) -> None:
    seen: list[httpx.Request] = []
    with mock_client(accepted, seen) as client:
        assert target(client).send(event(action)) == Sent(skipped=True)
    assert seen == []


@pytest.mark.parametrize(
    ("handler", "kind", "words"),
    [
        (raises(httpx.ReadTimeout), TargetUnavailable, "no answer within the timeout"),
        (raises(httpx.ConnectError, f"cannot connect to {WEBHOOK}"), TargetUnavailable, "cannot reach it"),
        (lambda r: httpx.Response(500), TargetUnavailable, "HTTP 500"),
        (lambda r: httpx.Response(429, headers={"Retry-After": "5"}), TargetUnavailable, "HTTP 429"),
        (lambda r: httpx.Response(404, json=UNKNOWN_KEY), TargetRejected, "no key ***"),
        (lambda r: httpx.Response(413, text="payload too large"), TargetRejected, "payload too large"),
    ],
)  # fmt: skip
def test_failures_are_classified_and_never_show_the_webhook_key(
    handler: object, kind: type[Exception], words: str
) -> None:
    with mock_client(handler) as client, pytest.raises(kind) as caught:  # type: ignore[arg-type]
        target(client).send(event(TRIGGER))
    message = str(caught.value)
    assert "Squadcast target 'oncall' (api.squadcast.com)" in message
    assert words in message
    assert SQUADCAST_KEY not in message


@pytest.mark.parametrize(
    ("url", "words"), [("", "slo-bot/url is missing"), ("ftp://example.com/x", "not an http(s) URL")]
)
def test_a_missing_or_odd_url_is_refused(url: str, words: str) -> None:
    with httpx.Client() as client, pytest.raises(TargetRejected, match="squadcast target 'oncall'") as caught:
        target(client, url)
    assert words in str(caught.value)


# --- against the fake Squadcast ----------------------------------------------------------------------


def test_an_incident_triggers_and_resolves_in_squadcast(fake: FakeIncidents, client: httpx.Client) -> None:
    squadcast = target(client, fake.squadcast_url)
    squadcast.send(event(TRIGGER))
    assert fake.incident("squadcast", KEY).status == "triggered"  # type: ignore[union-attr]
    squadcast.send(event(ACKNOWLEDGE))
    squadcast.send(event(ESCALATE))
    assert len(fake.calls_of("squadcast")) == 1
    squadcast.send(event(RESOLVE))
    assert fake.incident("squadcast", KEY).status == "resolved"  # type: ignore[union-attr]
    assert fake.out_of_order == []


def test_an_alert_with_huge_details_stays_under_the_30kb_limit(
    fake: FakeIncidents, client: httpx.Client
) -> None:
    huge = incident(details={f"window_{i}": "é" * 500 for i in range(120)})  # ~120 KB of UTF-8
    target(client, fake.squadcast_url).send(event(TRIGGER, incident=huge))
    (call,) = fake.calls_of("squadcast")
    assert call.status == 202 and len(call.body) <= 30 * 1024


def test_a_wrong_webhook_key_is_refused_without_showing_it(fake: FakeIncidents, client: httpx.Client) -> None:
    squadcast = target(client, fake.url + "/squadcast/v2/incidents/api/wrongKey123")
    with pytest.raises(TargetRejected, match="no service has this webhook key") as caught:
        squadcast.send(event(TRIGGER))
    assert "wrongKey123" not in str(caught.value)


def test_resolving_an_incident_never_triggered_is_noticed(fake: FakeIncidents, client: httpx.Client) -> None:
    target(client, fake.squadcast_url).send(event(RESOLVE))
    assert fake.out_of_order == [("squadcast", KEY, "resolve")]


def test_an_outage_is_retryable(fake: FakeIncidents, client: httpx.Client) -> None:
    fake.down("squadcast", seconds=30)
    with pytest.raises(TargetUnavailable):
        target(client, fake.squadcast_url).send(event(TRIGGER))
    assert fake.incidents("squadcast") == {}


# --- the fake holds Squadcast's rules ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"message": "m", "status": "trigger", "event_id": "1"}, 400, "description is mandatory"),
        ({"description": "d", "event_id": "1"}, 400, "message is mandatory"),
        (
            {"message": "m", "description": "d", "status": "acknowledge"},
            400,
            "status must be trigger or resolve",
        ),
        ({"status": "resolve"}, 400, "event_id is needed to resolve"),
        ({"message": "m", "description": "d", "tags": {"t": 1}}, 400, "tags must map"),
        ({"message": "m", "description": "d" * (31 * 1024)}, 413, "larger than 30KB"),
    ],
)
def test_the_fake_refuses_what_squadcast_refuses(
    fake: FakeIncidents, body: dict[str, object], status: int, words: str
) -> None:
    with httpx.Client() as client:
        answer = client.post(fake.squadcast_url, json=body)
    assert answer.status_code == status
    assert words in answer.json()["meta"]["error_message"]
    assert fake.incidents("squadcast") == {}


def test_the_fake_wants_json(fake: FakeIncidents) -> None:
    with httpx.Client() as client:
        answer = client.post(fake.squadcast_url, content=b"message=m", headers={"Content-Type": "text/plain"})
        tagged = client.post(
            fake.squadcast_url,
            json={"message": "m", "description": "d", "tags": {"env": {"value": "prod", "color": "#0C93E3"}}},
        )
    assert answer.status_code == 400
    assert tagged.status_code == 202

"""WebhookTarget: signed deliveries a receiver can check, the document it gets, and failures."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from bot.incidents import ACTIONS, ESCALATE, RESOLVE, TRIGGER, Sent, TargetRejected, TargetUnavailable
from bot.incidents.base import RAISE
from bot.incidents.webhook import WebhookTarget, delivery_id, sign, verify
from tests.fakeincidents import HOOK_SECRET, FakeIncidents
from tests.incidents import T0, event, incident, mock_client, raises, settings

KEY = "slo-bot/checkout-availability/7"  # breach #7's, whatever its severity
URL = "https://hooks.example.com/slo?token=t0k3n-in-the-query"


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"ok": True})


def target(client: httpx.Client, url: str = URL, secret: str = HOOK_SECRET) -> WebhookTarget:
    return WebhookTarget(settings("webhook", {"url": url, "secret": secret}), client)


@pytest.fixture
def fake() -> Iterator[FakeIncidents]:
    with FakeIncidents() as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as http:
        yield http


# --- signatures --------------------------------------------------------------------------------------


def test_sign_is_hmac_sha256_hex_of_the_time_and_the_body() -> None:
    # HMAC-SHA256 under "key" of "1714564800." followed by the body (Stripe's scheme)
    body = b"The quick brown fox jumps over the lazy dog"
    mac = "b5e65e9e32c5029391a0519634194032fc3c5eadd420bcd98ca49a993c5a03ff"
    assert sign("key", body, 1714564800) == f"t=1714564800,v1={mac}"


NOW = 1714564800
SIGNED = sign("s3cret", b'{"a":1}', NOW)


@pytest.mark.parametrize(
    ("secret", "body", "header", "valid"),
    [
        ("s3cret", b'{"a":1}', SIGNED, True),
        ("s3cret", b'{"a":1}', " " + SIGNED + " ", True),
        ("s3cret", b'{"a": 1}', SIGNED, False),  # one space more: other bytes
        ("other", b'{"a":1}', SIGNED, False),
        ("s3cret", b'{"a":1}', SIGNED.split(",")[1], False),  # no time
        ("s3cret", b'{"a":1}', "", False),
        ("s3cret", b'{"a":1}', "t=1714564800,v1=é", False),
    ],
)
def test_verify_accepts_only_the_exact_signature(secret: str, body: bytes, header: str, valid: bool) -> None:
    assert verify(secret, body, header, now=NOW) is valid


# --- deliveries --------------------------------------------------------------------------------------


def test_a_delivery_is_signed_over_the_exact_bytes_sent() -> None:
    seen: list[httpx.Request] = []
    with mock_client(ok, seen) as client:
        assert target(client).send(event(ESCALATE, actor="ana (Slack)", note="no answer in 15m")) == Sent()
    (request,) = seen
    assert str(request.url) == URL
    assert verify(HOOK_SECRET, request.content, request.headers["X-Slo-Bot-Signature"], now=time.time())
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Slo-Bot-Event"] == "escalate"
    assert request.headers["X-Slo-Bot-Delivery"] == "outbox-escalate-page"
    assert json.loads(request.content) == {
        "version": 1,
        "id": "outbox-escalate-page",
        "action": "escalate",
        "at": "2024-05-01T12:00:00Z",
        "actor": "ana (Slack)",
        "note": "no answer in 15m",
        "incident": {
            "dedup_key": KEY,
            "slo": "checkout-availability",
            "service": "checkout",
            "severity": "page",
            "summary": "checkout-availability: burning error budget 14.4x too fast",
            "details": {"burn_rate_1h": 14.4, "budget_left_ratio": 0.62},
            "links": [
                {
                    "text": "Slack thread",
                    "url": "https://example.slack.com/archives/C0ALERTS/p1714564800000100",
                },
                {"text": "Dashboard", "url": "https://grafana.example.com/d/checkout"},
            ],
        },
    }


def test_times_are_utc_and_details_are_plain_json() -> None:
    seen: list[httpx.Request] = []
    details = {
        "exhaustion": datetime(2024, 5, 3, 8, 30, tzinfo=UTC),
        "window": timedelta(hours=1),
        "burn_rate_6h": math.inf,  # no budget at all: JSON has no infinity
        "nested": {"windows": (timedelta(minutes=5), "1h")},
    }
    at = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    with mock_client(ok, seen) as client:
        target(client).send(event(TRIGGER, incident=incident(details=details), at=at))
    document = json.loads(seen[0].content)
    assert document["at"] == "2024-05-01T12:00:00Z"
    assert document["incident"]["details"] == {
        "exhaustion": "2024-05-03T08:30:00Z",
        "window": "1h",
        "burn_rate_6h": "inf",
        "nested": {"windows": ["5m", "1h"]},
    }


def test_an_event_without_an_id_gets_one_that_is_the_same_on_every_retry() -> None:
    first, again = event(RESOLVE, id=""), event(RESOLVE, id="")
    assert delivery_id(first) == delivery_id(again) != delivery_id(event(TRIGGER, id=""))
    assert delivery_id(event(RESOLVE, id="", at=T0 + timedelta(seconds=1))) != delivery_id(first)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_delivered(status: int) -> None:
    with mock_client(lambda r: httpx.Response(status, text="")) as client:
        assert target(client).send(event(TRIGGER)) == Sent()


@pytest.mark.parametrize(
    ("handler", "kind", "words"),
    [
        (raises(httpx.ReadTimeout), TargetUnavailable, "no answer within the timeout"),
        (raises(httpx.ConnectError, f"connect to {URL} failed"), TargetUnavailable, "connect to *** failed"),
        (lambda r: httpx.Response(503, text="in maintenance"), TargetUnavailable, "in maintenance"),
        (lambda r: httpx.Response(401, json={"error": "bad signature"}), TargetRejected,
         "check that the annotation slo-bot/secret is the receiver's secret"),
        (lambda r: httpx.Response(301, headers={"Location": "https://new.example.com"}), TargetRejected,
         "redirected"),
        (lambda r: httpx.Response(400, text=f"unknown token {URL}"), TargetRejected, "unknown token ***"),
        (lambda r: httpx.Response(403, text="token=t0k3n-in-the-query gone"), TargetRejected, "*** gone"),
    ],
)  # fmt: skip
def test_failures_are_classified_and_never_show_url_or_secret(
    handler: object, kind: type[Exception], words: str
) -> None:
    with mock_client(handler) as client, pytest.raises(kind) as caught:  # type: ignore[arg-type]
        target(client).send(event(TRIGGER))
    message = str(caught.value)
    assert "webhook target 'oncall' (hooks.example.com)" in message
    assert words in message
    assert "t0k3n" not in message and HOOK_SECRET not in message


@pytest.mark.parametrize("form", ["seconds", "date"])
def test_retry_after_is_read_as_seconds_or_as_a_date(form: str) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    answer = httpx.Response(429, headers={"Retry-After": "120" if form == "seconds" else later})
    with mock_client(lambda r: answer) as client, pytest.raises(TargetUnavailable) as caught:
        target(client).send(event(TRIGGER))
    assert caught.value.retry_after is not None
    assert timedelta(seconds=100) < caught.value.retry_after <= timedelta(seconds=120)


@pytest.mark.parametrize(("annotations", "missing"), [({"url": URL}, "secret"), ({"secret": "s"}, "url")])
def test_url_and_secret_are_both_required(annotations: dict[str, str], missing: str) -> None:
    with httpx.Client() as client, pytest.raises(TargetRejected, match=f"slo-bot/{missing} is missing"):
        WebhookTarget(settings("webhook", annotations), client)


# --- against the fake receiver -----------------------------------------------------------------------


def test_every_action_reaches_the_receiver_and_moves_the_incident(
    fake: FakeIncidents, client: httpx.Client
) -> None:
    hook = target(client, fake.hook_url)
    expected = {"trigger": "triggered", "raise": "triggered", "acknowledge": "acknowledged",
                "unacknowledge": "triggered", "escalate": "triggered", "resolve": "resolved"}  # fmt: skip
    for action in ACTIONS:
        hook.send(event(action))
        assert fake.incident("hook", KEY).status == expected[action]  # type: ignore[union-attr]
    assert fake.incident("hook", KEY).level == 2  # type: ignore[union-attr]
    assert [c.status for c in fake.calls_of("hook")] == [200] * len(ACTIONS)


def test_a_raise_tells_the_receiver_the_new_severity_of_the_same_incident(
    fake: FakeIncidents, client: httpx.Client
) -> None:
    hook = target(client, fake.hook_url)
    hook.send(event(TRIGGER, "ticket"))
    hook.send(event(RAISE, "page"))
    upstream = fake.incident("hook", KEY)
    assert upstream is not None and (upstream.status, upstream.severity, upstream.triggers) == (
        "triggered",
        "page",
        1,
    )
    assert [c.headers["x-slo-bot-event"] for c in fake.calls_of("hook")] == ["trigger", "raise"]


def test_a_wrong_secret_is_refused_by_the_receiver(fake: FakeIncidents, client: httpx.Client) -> None:
    with pytest.raises(TargetRejected, match="HTTP 401") as caught:
        target(client, fake.hook_url, secret="not-the-secret").send(event(TRIGGER))
    assert "not-the-secret" not in str(caught.value)
    assert fake.incidents("hook") == {}


def test_a_retried_delivery_is_applied_once(fake: FakeIncidents, client: httpx.Client) -> None:
    hook = target(client, fake.hook_url)
    hook.send(event(TRIGGER))
    hook.send(event(ESCALATE))
    hook.send(event(ESCALATE))  # the same outbox entry again, after a lost answer
    assert fake.incident("hook", KEY).level == 2  # type: ignore[union-attr]


def test_a_receiver_that_hangs_is_retried_later(fake: FakeIncidents) -> None:
    fake.hang("hook", 1.0)
    with httpx.Client(timeout=0.2) as impatient, pytest.raises(TargetUnavailable, match="timeout"):
        target(impatient, fake.hook_url).send(event(TRIGGER))


# --- the fake receiver checks the document -----------------------------------------------------------


def signed_post(fake: FakeIncidents, document: object, **headers: str) -> httpx.Response:
    body = json.dumps(document).encode()
    signature = sign(HOOK_SECRET, body, int(time.time()))
    sent = {
        "Content-Type": "application/json",
        "X-Slo-Bot-Signature": signature,
        "X-Slo-Bot-Event": "trigger",
        "X-Slo-Bot-Delivery": "d1",
        **headers,
    }
    with httpx.Client() as client:
        return client.post(fake.hook_url, content=body, headers=sent)


GOOD = {
    "version": 1,
    "id": "d1",
    "action": "trigger",
    "at": "2024-05-01T12:00:00Z",
    "actor": None,
    "note": "",
    "incident": {"dedup_key": "k", "slo": "s", "service": "", "severity": "page", "summary": "x",
                 "details": {}, "links": []},
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "headers", "words"),
    [
        ({"version": 2}, {}, "version must be 1"),
        ({"action": "snooze"}, {}, "action must be one of"),
        ({"at": "2024-05-01T14:00:00+02:00"}, {}, "ending in Z"),
        ({"incident": {"dedup_key": "k"}}, {}, "incident.slo must be a string"),
        ({}, {"X-Slo-Bot-Event": "resolve"}, "X-Slo-Bot-Event is not the action"),
        ({}, {"X-Slo-Bot-Delivery": "d2"}, "X-Slo-Bot-Delivery is not the id"),
    ],
)
def test_the_fake_receiver_refuses_malformed_deliveries(
    fake: FakeIncidents, change: dict[str, object], headers: dict[str, str], words: str
) -> None:
    answer = signed_post(fake, {**GOOD, **change}, **headers)
    assert answer.status_code == 400
    assert words in answer.json()["error"]
    assert signed_post(fake, GOOD).status_code == 200

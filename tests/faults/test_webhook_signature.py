"""Outgoing webhooks are signed with a timestamp, like Stripe's scheme, so a receiver can refuse a
replay: `X-Slo-Bot-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.

Delivered over HTTP to the local fake receiver, which checks the signature as a receiver would."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from bot.incidents import TRIGGER, Sent
from bot.incidents.webhook import WebhookTarget, sign, verify
from tests.fakeincidents import HOOK_SECRET, FakeIncidents
from tests.incidents import event, settings

HEADER = re.compile(r"t=(\d+),v1=([0-9a-f]{64})")


@pytest.fixture
def fake() -> Iterator[FakeIncidents]:
    with FakeIncidents() as server:
        yield server


def test_a_delivery_carries_a_signed_timestamp_the_receiver_checks(fake: FakeIncidents) -> None:
    with httpx.Client(timeout=5) as client:
        target = WebhookTarget(settings("webhook", {"url": fake.hook_url, "secret": HOOK_SECRET}), client)
        assert target.send(event(TRIGGER)) == Sent()
    (call,) = fake.calls_of("hook")
    assert call.status == 200
    found = HEADER.fullmatch(call.headers["x-slo-bot-signature"])
    assert found is not None, call.headers["x-slo-bot-signature"]
    stamp, mac = int(found.group(1)), found.group(2)
    assert abs(time.time() - stamp) < 30
    signed = f"{stamp}.".encode() + call.body
    assert mac == hmac.new(HOOK_SECRET.encode(), signed, hashlib.sha256).hexdigest()

    # the same request sent again ten minutes later (a replay): the receiver refuses it
    replayed = {k: v for k, v in call.headers.items() if k not in ("host", "content-length")}
    with httpx.Client(timeout=5) as client:
        again = client.post(fake.hook_url, content=call.body, headers=replayed)
    assert again.status_code == 200  # within the tolerance: a retry is still welcome
    old = stamp - 600
    stale = hmac.new(HOOK_SECRET.encode(), f"{old}.".encode() + call.body, hashlib.sha256).hexdigest()
    with httpx.Client(timeout=5) as client:
        refused = client.post(
            fake.hook_url,
            content=call.body,
            headers={**replayed, "x-slo-bot-signature": f"t={old},v1={stale}"},
        )
    assert refused.status_code == 401


def test_verify_refuses_old_tampered_or_garbled_signatures() -> None:
    body, now = b'{"a":1}', 1_800_000_000
    good = sign("s3cret", body, now)
    assert HEADER.fullmatch(good)
    assert verify("s3cret", body, good, now=now + 299)
    assert verify("s3cret", body, " " + good + " ", now=now)
    assert not verify("s3cret", body, good, now=now + 301)  # a replay after 5 minutes
    assert not verify("s3cret", body, good, now=now - 301)  # from the future
    assert not verify("s3cret", b'{"a": 1}', good, now=now)
    assert not verify("other", body, good, now=now)
    mac = good.split(",v1=")[1]
    assert not verify("s3cret", body, f"t={now + 100},v1={mac}", now=now + 100)  # the time is signed too
    for garbled in ("", "t=,v1=", f"v1={mac}", f"t={now}", f"t=é,v1={mac}", f"t={now},v1=é", "sha256=" + mac):
        assert not verify("s3cret", body, garbled, now=now), garbled
    # during a secret rotation a sender may send one v1 per secret: one match is enough
    other = sign("old-secret", body, now).split(",v1=")[1]
    assert verify("s3cret", body, f"t={now},v1={other},v1={mac}", now=now)

"""Inputs from the network: bodies are size-limited before verification (413), and a malformed or
non-ASCII signature header is a refusal (401), never a crash (500), on `/slack/events` and on the
incident tools' webhooks. `slo-bot run` as a process."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fakeslack import FakeSlack
from tests.promtext import sample
from tests.slack.conftest import BotFactory
from tests.slack.harness import BotProcess, Store, catalogue, signed_headers, wait_for

PD_SECRET = "pd-secret-for-network-tests"
OG_TOKEN = "og-token-for-network-tests"
MAX_BODY_BYTES = 1024 * 1024  # the documented limit of every request body
# what is tested here does not depend on the database: SQLite only, to keep the processes few
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PATHS = ("/slack/events", "/webhooks/pagerduty", "/webhooks/opsgenie")


@pytest.fixture
def bot(start_bot: BotFactory, slack: FakeSlack, store: Store) -> BotProcess:
    env = {"PAGERDUTY_WEBHOOK_SECRET": PD_SECRET, "OPSGENIE_WEBHOOK_TOKEN": OG_TOKEN}
    started = start_bot(catalogue(), env=env)
    slack.wait_calls("chat.postMessage", 1)
    wait_for(lambda: all(o.status != "pending" for o in store.outbox()), what="the first posts")
    return started


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


@pytest.mark.parametrize("path", PATHS)
def test_an_oversized_body_gets_413_before_anything_reads_it(
    bot: BotProcess, store: Store, path: str
) -> None:
    before = store.fingerprint()
    big = b"payload=" + b"x" * (MAX_BODY_BYTES + 1)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        **signed_headers(big.decode()),
        "X-PagerDuty-Signature": "v1=00",
        "X-Slo-Bot-Token": OG_TOKEN,
    }
    assert bot.http.post(path, content=big, headers=headers).status_code == 413
    # without a Content-Length (chunked), the limit holds all the same
    streamed = bot.http.post(path, content=_chunks(MAX_BODY_BYTES + 100_000), headers=headers)
    assert streamed.status_code == 413
    # and a body just inside the limit is read and verified as usual (a bad signature: 401)
    inside = {**headers, "X-Slack-Signature": "v0=00", "X-Slo-Bot-Token": "wrong"}
    assert bot.http.post(path, content=b"x" * MAX_BODY_BYTES, headers=inside).status_code == 401
    assert store.fingerprint() == before


MALFORMED = [
    ("/slack/events", {"X-Slack-Request-Timestamp": "now", "X-Slack-Signature": "v0=00"}),
    ("/slack/events", {"X-Slack-Request-Timestamp": "1e9", "X-Slack-Signature": "v0=00"}),
    ("/slack/events", {"X-Slack-Signature": "v0=é"}),
    ("/slack/events", {"X-Slack-Signature": "v0=" + "é" * 64}),
    ("/slack/events", {"X-Slack-Request-Timestamp": "١٧٠٠٠٠٠٠٠٠"}),  # Arabic-Indic digits
    ("/webhooks/pagerduty", {"X-PagerDuty-Signature": "v1=é"}),
    ("/webhooks/pagerduty", {"X-PagerDuty-Signature": "v1=" + "é" * 64 + ",v1=00"}),
    ("/webhooks/opsgenie", {"X-Slo-Bot-Token": "é"}),
]


def test_a_malformed_or_non_ascii_signature_gets_401(bot: BotProcess, store: Store) -> None:
    body = "command=%2Fslo&text=help&user_id=U0RESPONDER"
    before = store.fingerprint()
    for path, headers in MALFORMED:
        sent = {"Content-Type": "application/x-www-form-urlencoded", **signed_headers(body), **headers}
        encoded = {k: v.encode("utf-8") for k, v in sent.items()}  # as raw bytes on the wire
        response = bot.http.post(path, content=body.encode(), headers=encoded)
        assert response.status_code == 401, (path, headers, response.text)
    time.sleep(0.2)
    assert "Traceback" not in bot.log()
    assert store.fingerprint() == before


def test_the_limits_are_counted_in_metrics(bot: BotProcess) -> None:
    big = b"x" * (MAX_BODY_BYTES + 1)
    assert bot.http.post("/webhooks/pagerduty", content=big).status_code == 413
    metrics = httpx.get(bot.url + "/metrics", timeout=10).text
    assert sample(metrics, "slo_bot_webhooks_total", path="/webhooks/pagerduty", status="413") == 1

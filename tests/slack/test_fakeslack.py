"""The fake Slack answers slack_sdk the way Slack does: the other tests are only as good as it is."""

from __future__ import annotations

import time

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakeslack import FakeSlack


def _client(slack: FakeSlack, timeout: int = 5) -> WebClient:
    return WebClient(token=slack.token, base_url=slack.api_url, timeout=timeout, retry_handlers=[])


def test_posts_threads_updates_and_history_with_metadata(slack: FakeSlack) -> None:
    client = _client(slack)
    metadata = {"event_type": "t", "event_payload": {"n": 1}}
    first = client.chat_postMessage(channel="#alerts", text="one", metadata=metadata)  # JSON body
    assert first["channel"] == "C0ALERTS"  # a name in, the ID out
    reply = client.api_call(  # form-encoded, as some SDK methods send
        "chat.postMessage", data={"channel": "C0ALERTS", "text": "two", "thread_ts": first["ts"]}
    )
    assert float(reply["ts"]) > float(first["ts"])
    client.chat_update(channel="C0ALERTS", ts=first["ts"], text="one, edited")
    history = client.conversations_history(channel="C0ALERTS")["messages"]
    assert [m["text"] for m in history] == ["one, edited"] and "metadata" not in history[0]
    with_metadata = client.conversations_history(channel="C0ALERTS", include_all_metadata=True)
    assert with_metadata["messages"][0]["metadata"] == metadata
    thread = client.conversations_replies(channel="C0ALERTS", ts=first["ts"])["messages"]
    assert [m["text"] for m in thread] == ["one, edited", "two"]
    with pytest.raises(SlackApiError) as refused:
        client.chat_update(channel="#alerts", ts=first["ts"], text="x")  # Slack wants the ID here
    assert refused.value.response["error"] == "channel_not_found"
    with pytest.raises(SlackApiError) as wrong_token:
        WebClient(token="xoxb-other", base_url=slack.api_url).auth_test()
    assert wrong_token.value.response["error"] == "invalid_auth"


def test_members_and_channels_come_in_pages(slack: FakeSlack) -> None:
    slack.add_channel("C0BIG", "big", [f"U{i:04d}" for i in range(5)])
    client = _client(slack)
    first = client.conversations_members(channel="C0BIG", limit=1000)
    assert len(first["members"]) == slack.members_page_size and first["response_metadata"]["next_cursor"]
    members, cursor = list(first["members"]), first["response_metadata"]["next_cursor"]
    while cursor:
        page = client.conversations_members(channel="C0BIG", cursor=cursor)
        members += page["members"]
        cursor = page["response_metadata"]["next_cursor"]
    assert members == [f"U{i:04d}" for i in range(5)]
    names = set()
    cursor = None
    while True:
        page = client.conversations_list(cursor=cursor)
        names |= {c["name"] for c in page["channels"]}
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert names == {"alerts", "search", "big"}


def test_failures_are_slacks(slack: FakeSlack) -> None:
    client = _client(slack, timeout=1)
    slack.fail("chat.postMessage", status=429, times=1, retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        client.chat_postMessage(channel="C0ALERTS", text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    slack.fail("chat.postMessage", status=500, times=1)
    with pytest.raises(SlackApiError) as failed:
        client.chat_postMessage(channel="C0ALERTS", text="x")
    assert failed.value.response.status_code == 500
    assert client.chat_postMessage(channel="C0ALERTS", text="x")["ok"]  # the rules ran out

    slack.hang("chat.postMessage", times=1, seconds=3, apply=True)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        client.chat_postMessage(channel="C0ALERTS", text="lost answer")
    assert time.monotonic() - started < 2.5
    assert slack.messages("C0ALERTS")[-1]["text"] == "lost answer"  # but Slack did post it
    slack.drop("chat.postMessage", times=1, apply=False)
    with pytest.raises(OSError):
        client.chat_postMessage(channel="C0ALERTS", text="never")
    assert [c.status for c in slack.calls_of("chat.postMessage")] == [429, 500, 200, 0, 0]

    slack.fail("chat.update", status=500, seconds=0.5)
    time.sleep(0.6)
    slack.reset()
    assert not slack.calls and client.auth_test()["user_id"]


def test_response_urls_record_what_respond_sends(slack: FakeSlack) -> None:
    payload = {"response_type": "ephemeral", "replace_original": False, "text": "only you"}
    with httpx.Client() as http:
        assert http.post(slack.response_url("abc"), json=payload).json() == {"ok": True}
    assert slack.responses == [("abc", payload)]


def test_heal_ends_misbehaviour_and_keeps_the_record(slack: FakeSlack) -> None:
    client = _client(slack)
    slack.fail("chat.postMessage", status=500)
    slack.fail("chat.update", status=500)
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C0ALERTS", text="x")
    slack.heal("chat.postMessage")
    posted = client.chat_postMessage(channel="C0ALERTS", text="x")
    with pytest.raises(SlackApiError):
        client.chat_update(channel="C0ALERTS", ts=posted["ts"], text="y")
    slack.heal()
    assert client.chat_update(channel="C0ALERTS", ts=posted["ts"], text="y")["ok"]
    assert [c.status for c in slack.calls] == [500, 200, 500, 200]

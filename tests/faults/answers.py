"""What a person reads after typing `/slo ...`: the answer in the acknowledgement's body, or the one
posted to the command's `response_url` when the acknowledgement came first and empty."""

from __future__ import annotations

from typing import Any

from tests.slack.harness import ALERTS, BotProcess


def answer(bot: BotProcess, text: str, *, user: str, channel: str = ALERTS) -> dict[str, Any]:
    response = bot.command(text, user=user, channel=channel)
    assert response.status_code == 200, response.text
    if response.content:
        payload: dict[str, Any] = response.json()
        return payload
    key = f"command-{bot._request_seq}"  # the response_url this command was given
    found: list[dict[str, Any]] = []

    def arrived() -> bool:
        found[:] = [p for k, p in bot.fake.responses if k == key]
        return bool(found)

    bot.fake.wait_until(arrived, 15.0, f"the answer to /slo {text}")
    return found[0]

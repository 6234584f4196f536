"""The Slack fixtures (a fake workspace, `slo-bot run` as a process, its database) for the fault tests."""

from tests.slack.conftest import slack, start_bot, store

__all__ = ["slack", "start_bot", "store"]

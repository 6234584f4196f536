"""What the Slack handlers need, passed in at registration: the database, the clock, the
responder check and a way to wake the delivery of queued messages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from bot.slack.permissions import Responders


@dataclass(frozen=True)
class SlackDeps:
    engine: Engine
    clock: Callable[[], datetime]
    responders: Responders
    wake_delivery: Callable[[], None]
    default_channel: str | None = None

"""What the Slack handlers need, passed in at registration: the database, the clock, the
responder check, the breach conversation, a way to wake the delivery of queued messages, and the
status lines kept between requests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from bot.conversation import Conversation
from bot.links import Links
from bot.slack.permissions import Responders
from bot.slack.state import StatusBoard


@dataclass(frozen=True)
class SlackDeps:
    engine: Engine
    clock: Callable[[], datetime]
    responders: Responders
    wake_delivery: Callable[[], None]
    conversation: Conversation  # every place a breach is shown: an acknowledgement reaches them all
    default_channel: str | None = None
    board: StatusBoard = field(default_factory=StatusBoard)
    links: Links | None = None  # the SLO pages' signed links, when configured

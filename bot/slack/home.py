"""The App Home tab: the SLOs of the services a user subscribed to (or all), worst budget first."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from sqlmodel import Session

from bot.slack import blocks
from bot.slack.deps import SlackDeps
from bot.slack.maintenance import home_lines
from bot.slack.state import fold
from bot.store import adjustments as adjustment_store
from bot.store import slack as slack_store


def handle_home_opened(deps: SlackDeps, event: dict[str, Any], client: WebClient, logger: Any) -> None:
    if event.get("tab", "home") != "home":
        return
    user = event.get("user", "")
    with Session(deps.engine) as session:
        services = slack_store.services_of_user(session=session, user=user)
        now = deps.clock()
        lines = deps.board.lines(session, now, services or None)
        windows = home_lines(adjustment_store.load_exclusions(session=session).adjustments, lines, now)
    scope = (
        "Services you subscribed to: " + ", ".join(services)
        if services
        else "All SLOs. `/slo subscribe SERVICE` narrows this to your services."
    )
    client.views_publish(user_id=user, view=blocks.home_view(fold(lines), scope, windows))

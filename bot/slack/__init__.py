"""The Slack app: every listener registered here, explicitly, and nowhere else.

`LISTENERS` names what is registered; the test of `manifest.yml` checks both say the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App
from sqlmodel import Session

from bot.slack.actions import handle_alert_action, handle_link, handle_status_page
from bot.slack.commands import handle_slo_command
from bot.slack.deps import SlackDeps
from bot.slack.home import handle_home_opened
from bot.store import slack as slack_store

log = logging.getLogger(__name__)

COMMANDS = ("/slo",)
ACTIONS = (
    "alert_ack",
    "alert_unack",
    "alert_silence",
    "alert_unsilence",
    "alert_declare",
    "alert_refund",
    "alert_unrefund",
    "status_page",
    "view_slo",
)
EVENTS = ("app_home_opened",)
# Web API methods the code calls, and the bot scope each needs (manifest.yml declares exactly these).
SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "files.getUploadURLExternal": "files:write",  # burn-down charts (bot.slack.uploads)
    "files.completeUploadExternal": "files:write",
    "conversations.members": ("channels:read", "groups:read"),
    "conversations.list": ("channels:read", "groups:read"),  # channels routed to by `#name`
    "conversations.history": ("channels:history", "groups:history"),
    "conversations.replies": ("channels:history", "groups:history"),
    "usergroups.users.list": "usergroups:read",
    "views.publish": None,  # needs no scope of its own
    "/slo": "commands",
}


def register(app: App, deps: SlackDeps) -> None:
    app.command("/slo")(lambda ack, command, respond: handle_slo_command(deps, ack, command, respond))
    alert_actions = ("alert_ack", "alert_unack", "alert_silence", "alert_unsilence", "alert_declare")
    for action_id in (*alert_actions, "alert_refund", "alert_unrefund"):
        app.action(action_id)(lambda ack, body, respond: handle_alert_action(deps, ack, body, respond))
    app.action("status_page")(lambda ack, body, respond: handle_status_page(deps, ack, body, respond))
    app.action("view_slo")(handle_link)
    app.event("app_home_opened")(
        _once_per_event(deps, lambda event, client, logger: handle_home_opened(deps, event, client, logger))
    )


def _once_per_event(deps: SlackDeps, handler: Callable[..., None]) -> Callable[..., None]:
    """Slack retries an event it thinks we missed (`X-Slack-Retry-Num`): act on each event once.

    Checked in the listener, after Bolt's automatic ack of the event: the check is a database write,
    and nothing that can be slow comes before the answer to Slack."""

    def listener(body: dict[str, Any], event: dict[str, Any], client: Any, logger: Any) -> None:
        event_id = body.get("event_id")
        if event_id:
            with Session(deps.engine) as session:
                first = slack_store.first_sight(session=session, event_id=str(event_id), now=deps.clock())
                session.commit()
            if not first:
                log.info("ignoring a retry of Slack event %s", event_id)
                return
        handler(event=event, client=client, logger=logger)

    return listener

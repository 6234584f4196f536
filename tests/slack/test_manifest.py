"""`manifest.yml` declares exactly what the code registers: commands, events, interactivity, scopes.

A listener constant that is not registered, a scope the manifest forgot, or a Web API method the code
calls without a scope in `SCOPES` would each break the app only once installed in a real workspace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from slack_bolt import App, BoltRequest
from sqlalchemy import Engine

from bot.conversation import Conversation
from bot.service import build_slack
from bot.settings import Settings
from bot.slack import ACTIONS, COMMANDS, EVENTS, SCOPES
from bot.slack.notify import SlackDestination
from bot.store import db
from tests.fakeslack import FakeSlack
from tests.slack.harness import SECRET, signed_headers

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())
ENDPOINT = "/slack/events"


def _scopes() -> set[str]:
    flat: set[str] = set()
    for value in SCOPES.values():
        if isinstance(value, str):
            flat.add(value)
        elif value is not None:
            flat.update(value)
    return flat


def test_the_manifest_declares_the_registered_commands_events_interactivity_and_scopes() -> None:
    features, settings = MANIFEST["features"], MANIFEST["settings"]
    commands = features.get("slash_commands") or []
    assert {c["command"] for c in commands} == set(COMMANDS)
    assert all(c["url"].endswith(ENDPOINT) for c in commands)
    events = settings.get("event_subscriptions") or {}
    assert set(events.get("bot_events") or []) == set(EVENTS)
    if EVENTS:
        assert events["request_url"].endswith(ENDPOINT)
    interactivity = settings.get("interactivity") or {}
    assert bool(interactivity.get("is_enabled")) == bool(ACTIONS)
    if ACTIONS:
        assert interactivity["request_url"].endswith(ENDPOINT)
    assert features["app_home"]["home_tab_enabled"] == ("app_home_opened" in EVENTS)
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == _scopes()
    assert "user" not in MANIFEST["oauth_config"]["scopes"]  # a bot, never a user's token


def test_every_web_api_method_the_code_calls_has_its_scope_declared() -> None:
    called = set()
    for path in (ROOT / "bot").rglob("*.py"):
        families = "chat|conversations|files|views|usergroups|users|reactions"
        for name in re.findall(rf"\bclient\.((?:{families})_\w+)\(", path.read_text()):
            called.add(name.replace("_", "."))
    assert called, "found no Web API calls: the pattern is stale"
    assert called <= set(SCOPES), f"called without a declared scope: {sorted(called - set(SCOPES))}"
    assert {m for m in SCOPES if not m.startswith("/")} <= called, "SCOPES names methods nobody calls"


@pytest.fixture
def bolt_app(tmp_path: Path) -> Iterator[tuple[App, FakeSlack]]:
    engine: Engine = db.make_engine(f"sqlite:///{tmp_path / 'manifest.db'}")
    db.upgrade(engine)
    with FakeSlack() as slack:
        settings = Settings(
            slack_bot_token=slack.token, slack_signing_secret=SECRET, slack_api_url=slack.api_url
        )
        app, _ = build_slack(settings, engine, Conversation([SlackDestination(None)]))
        yield app, slack
    engine.dispose()


def _dispatch(app: App, body: str, content_type: str) -> int:
    headers = {k.lower(): v for k, v in signed_headers(body).items()} | {"content-type": content_type}
    return app.dispatch(BoltRequest(body=body, headers=headers)).status


def test_every_listener_constant_is_registered_on_the_bolt_app(bolt_app: tuple[App, FakeSlack]) -> None:
    app, slack = bolt_app
    form = "application/x-www-form-urlencoded"
    unhandled = {}
    for command in COMMANDS:
        body = urlencode(
            {
                "command": command,
                "text": "help",
                "user_id": "U1",
                "channel_id": "C1",
                "team_id": "T0FAKE",
                "response_url": slack.response_url("c"),
            }
        )
        unhandled[command] = _dispatch(app, body, form)
    for action_id in ACTIONS:
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": "U1"},
            "team": {"id": "T0FAKE"},
            "channel": {"id": "C1"},
            "container": {"type": "message", "message_ts": "1.2", "channel_id": "C1"},
            "response_url": slack.response_url(action_id),
            "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": "0"}],
        }
        unhandled[action_id] = _dispatch(app, urlencode({"payload": json.dumps(payload)}), form)
    for event in EVENTS:
        payload = {
            "type": "event_callback",
            "team_id": "T0FAKE",
            "event_id": f"Ev{event}",
            "event": {"type": event, "user": "U1", "tab": "messages"},
        }
        unhandled[event] = _dispatch(app, json.dumps(payload), "application/json")
    assert {name: status for name, status in unhandled.items() if status != 200} == {}
    # and nothing is registered that the constants do not name
    assert len(app._listeners) == len(COMMANDS) + len(ACTIONS) + len(EVENTS)
    # an action no constant names is not handled: the check above could fail
    stray = {
        "type": "block_actions",
        "user": {"id": "U1"},
        "team": {"id": "T0FAKE"},
        "actions": [{"action_id": "not_ours", "block_id": "b", "type": "button"}],
    }
    assert _dispatch(app, urlencode({"payload": json.dumps(stray)}), form) == 404

"""`slo-bot run` in Slack HTTP mode as a subprocess, and requests signed exactly as Slack signs them.

`BotProcess` starts the bot against a `FakeSlack`, waits for `/healthz`, sends slash commands,
button clicks and events through the real `/slack/events` endpoint, and stops the process.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import Engine, insert
from sqlmodel import Session, col, select

from bot import cli
from bot.store import db, repo
from bot.store.models import (
    AlertEventRecord,
    AlertRecord,
    BreachEventRecord,
    BreachRecord,
    OutboxRecord,
    SilenceRecord,
    SLORecord,
    SnapshotRecord,
)
from tests.fakeslack import FakeSlack

SECRET = "e5c7a1f09b3d4c2a8f6e0d1b2c3a4f5e"
TEAM = "T0FAKE"
ALERTS = "C0ALERTS"  # the channel of the burning SLO (`slo-bot/channel`)
RESPONDER = "U0RESPONDER"  # a member of ALERTS
STRANGER = "U0STRANGER"  # not a member of ALERTS
SECOND = "U0SECOND"  # another member

# One SLO with 4 % errors for the last 30 minutes: burn 20x over 1h, a page on the first evaluation,
# only 3 % of its 30d budget spent (no budget alerts); one healthy SLO of another service.
CATALOGUE = """
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: sim}}
spec:
  type: Simulated
  connectionDetails:
    seed: 1
    requests_per_minute: 1000
    error_ratio: 0.0001
    incidents: [{{start: "{start}", duration: 6h, error_ratio: {error}}}]
---
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: calm}}
spec:
  type: Simulated
  connectionDetails: {{seed: 2, requests_per_minute: 1000, error_ratio: 0.0002}}
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-availability
  annotations:
    slo-bot/channel: {channel}
    slo-bot/dashboard: https://grafana.example.com/d/checkout
spec:
  service: checkout
  indicator:
    metadata: {{name: checkout-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: sim, spec: {{query: good}}}}}}
        total: {{metricSource: {{metricSourceRef: sim, spec: {{query: total}}}}}}
  timeWindow: [{{duration: {window}, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.999}}]
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: search-latency
  annotations: {{slo-bot/channel: C0SEARCH}}
spec:
  service: search
  indicator:
    metadata: {{name: search-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: calm, spec: {{query: good}}}}}}
        total: {{metricSource: {{metricSourceRef: calm, spec: {{query: total}}}}}}
  timeWindow: [{{duration: {window}, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.99}}]
"""


def catalogue(
    channel: str = ALERTS, window: str = "30d", incident_minutes: int = 30, error_ratio: float = 0.04
) -> str:
    start = (datetime.now(UTC) - timedelta(minutes=incident_minutes)).replace(second=0, microsecond=0)
    return CATALOGUE.format(start=start.isoformat(), channel=channel, window=window, error=error_ratio)


def signature(secret: str, timestamp: str, body: str) -> str:
    """Slack's request signature: `v0=` + HMAC-SHA256 over `v0:{timestamp}:{body}`."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(body: str, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature(secret, ts, body)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, what: str = "a condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


class BotProcess:
    """One `slo-bot run` process in HTTP mode, logging to `log_path`."""

    def __init__(
        self,
        tmp_path: Path,
        database_url: str,
        fake: FakeSlack,
        catalogue_text: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        name: str = "bot",
        port: int | None = None,
    ) -> None:
        self.database_url = database_url
        self.fake = fake
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"{name}.log"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": fake.token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.api_url,
            "SLO_BOT_HOST": "127.0.0.1",
            "SLO_BOT_EVAL_INTERVAL": "2s",
            "PYTHONUNBUFFERED": "1",
        }
        for unset in ("SLACK_APP_TOKEN", "SLO_BOT_RESPONDERS", "SLO_BOT_DEFAULT_CHANNEL", "SLO_BOT_CONFIG"):
            self.env.pop(unset, None)
        if catalogue_text is not None:
            path = tmp_path / f"{name}-slos.yaml"
            path.write_text(catalogue_text)
            self.env["SLO_BOT_CONFIG"] = str(path)
        self.env.update(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=15)
        self._request_seq = 0

    # --- life --------------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> BotProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._healthy, timeout, f"slo-bot run to answer /healthz (log: {self.log_path})")
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"slo-bot run exited with {self.process.returncode}:\n{self.log()}")
        try:
            return self.http.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait (SIGKILL if it does not stop); the exit code."""
        code = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        elif self.process is not None:
            code = self.process.returncode
        return code

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no last commit."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def close(self) -> None:
        self.stop()
        self.http.close()

    def __enter__(self) -> BotProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- requests as Slack sends them --------------------------------------------------------

    def post(self, body: str, content_type: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
        sent = {"Content-Type": content_type, **(headers if headers is not None else signed_headers(body))}
        return self.http.post("/slack/events", content=body.encode(), headers=sent)

    def command_body(self, text: str, *, user: str = RESPONDER, channel: str = ALERTS) -> str:
        self._request_seq += 1
        return urlencode(
            {
                "token": "legacy-verification-token",
                "team_id": TEAM,
                "team_domain": "fake",
                "channel_id": channel,
                "channel_name": channel.lower(),
                "user_id": user,
                "user_name": user.lower(),
                "command": "/slo",
                "text": text,
                "api_app_id": "A0SLOBOT",
                "is_enterprise_install": "false",
                "response_url": self.fake.response_url(f"command-{self._request_seq}"),
                "trigger_id": f"{self._request_seq}.1.abc",
            }
        )

    def command(self, text: str, *, user: str = RESPONDER, channel: str = ALERTS) -> httpx.Response:
        """`/slo TEXT` as Slack posts it (x-www-form-urlencoded, signed)."""
        return self.post(
            self.command_body(text, user=user, channel=channel), "application/x-www-form-urlencoded"
        )

    def answer(
        self, text: str, *, user: str = RESPONDER, channel: str = ALERTS, timeout: float = 15.0
    ) -> dict[str, Any]:
        """`/slo TEXT` as Slack posts it: acknowledged at once with an empty 200, answered afterwards
        at its `response_url`. The answer's payload."""
        response = self.command(text, user=user, channel=channel)
        assert response.status_code == 200 and not response.content, response.text
        return self.fake.wait_response(f"command-{self._request_seq}", timeout)

    def interaction(
        self, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded", headers)

    def event(self, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> httpx.Response:
        body = json.dumps(payload)
        sent = {**signed_headers(body), **(headers or {})}
        return self.post(body, "application/json", sent)


# --- payloads, shaped like the recorded ones in tests/slack/payloads -----------------------------


def block_action(
    message: Mapping[str, Any],
    channel: str,
    action_id: str,
    *,
    user: str,
    response_url: str,
    option: str | None = None,
) -> dict[str, Any]:
    """A `block_actions` payload for a click on `action_id` in a posted `message` (as the fake stores
    it), shaped like Slack's (slack-payloads/block_actions_*.json). `option`: the select's choice."""
    element, block_id = _element(message, action_id)
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "type": element["type"],
        "action_ts": f"{time.time():.6f}",
    }
    if element["type"] == "button":
        action["text"] = element["text"]
        if "value" in element:
            action["value"] = element["value"]
    else:
        chosen = [o for o in element["options"] if o["value"].endswith(":" + (option or ""))]
        assert chosen, f"no option {option!r} in {element['options']}"
        action["selected_option"] = chosen[0]
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0SLOBOT",
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": "111.222.valid",
        "team": {"id": TEAM, "domain": "fake"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": channel.lower()},
        "message": dict(message),
        "response_url": response_url,
        "actions": [action],
    }


def _element(message: Mapping[str, Any], action_id: str) -> tuple[dict[str, Any], str]:
    blocks = list(message.get("blocks") or [])
    for attachment in message.get("attachments") or []:
        blocks += attachment.get("blocks") or []
    for block in blocks:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return element, block.get("block_id", "b")
    raise AssertionError(f"no {action_id} element in the message: {json.dumps(message)[:2000]}")


def home_opened(user: str, event_id: str) -> dict[str, Any]:
    """slack-payloads/app_home_opened_messages_slack_web_golden.json, tab `home`, our ids."""
    path = Path(__file__).resolve().parent / "payloads" / "app_home_opened_messages_slack_web_golden.json"
    payload: dict[str, Any] = json.loads(path.read_text())
    payload = json.loads(json.dumps(payload))
    payload["team_id"] = TEAM
    payload["event"].update({"user": user, "tab": "home", "event_ts": f"{time.time():.6f}"})
    payload["event_id"] = event_id
    payload["event_time"] = int(time.time())
    payload["authorizations"][0].update({"team_id": TEAM, "user_id": "U0SLOBOT"})
    return payload


# --- stored state without evaluating: many SLOs, quickly ------------------------------------

# A catalogue whose DataSource reads this variable can be applied with it set and then served by
# a bot without it: its ticks cannot rebuild the SLOs, so they leave the stored status alone.
SEED_VARIABLE = "SLO_BOT_FROZEN_SEED"


def apply_frozen(database_url: str, path: Path) -> None:
    """`slo-bot apply PATH` in-process, with SEED_VARIABLE set only meanwhile."""
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", SEED_VARIABLE)}
    os.environ.update({"DATABASE_URL": database_url, SEED_VARIABLE: "1"})
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            code = cli.main(["apply", str(path)])
        assert code == 0, err.getvalue()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def store_status(
    database_url: str, *, history: int = 1, alerts_every: int = 20, silences_every: int = 100, seed: int = 7
) -> None:
    """Write what a running bot leaves: `history` snapshots per SLO a minute apart (the newest one
    varied: budget left, burn, state), an open breach with its firing page signal for every
    `alerts_every`-th SLO, a silence for every `silences_every`-th."""
    rng = random.Random(seed)
    engine = db.make_engine(database_url)
    now = datetime.now(UTC).replace(microsecond=0)
    windows = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
    with Session(engine) as session:
        records = repo.list_slos(session=session)
        rows: list[dict[str, Any]] = []
        for step in range(history, 0, -1):  # oldest first
            at = now - timedelta(minutes=step - 1)
            for record in records:
                remaining = round(rng.uniform(-0.2, 1.0), 4)
                burns = {w: round(rng.expovariate(1.0), 3) for w in windows}
                state = "exhausted" if remaining <= 0 else ("burning" if burns["1h"] > 1 else "ok")
                rows.append(
                    {
                        "slo_id": record.id,
                        "evaluated_at": at,
                        "sli": 0.999,
                        "good": 99_900.0,
                        "total": 100_000.0,
                        "consumed_ratio": 1 - remaining,
                        "remaining_ratio": remaining,
                        "burn_rates": json.dumps(burns),
                        "exhaustion_at": at + timedelta(hours=rng.uniform(1, 500)),
                        "state": state,
                        "coverage_ratio": 1.0,
                        "error": None,
                    }
                )
            if len(rows) > 50_000:
                session.execute(insert(SnapshotRecord), rows)
                rows = []
        if rows:
            session.execute(insert(SnapshotRecord), rows)
        for record in records[::alerts_every]:
            fired = now - timedelta(minutes=20)
            page_burns = json.dumps({"1h": 20.0, "5m": 40.0})
            reason = "burn 20x over 1h and 40x over 5m (threshold 14.4x)"
            breach = BreachRecord(
                slo_id=record.id or 0,
                kind="burn",
                severity="page",
                peak="page",
                state="firing",
                opened_at=fired,
                burn_rates=page_burns,
                reason=reason,
            )
            session.add(breach)
            session.flush()
            alert = AlertRecord(
                slo_id=record.id or 0,
                breach_id=breach.id,
                key="page",
                state="firing",
                since=fired,
                fired_at=fired,
                burn_rates=page_burns,
                reason=reason,
            )
            session.add(alert)
            session.flush()
            session.add(AlertEventRecord(alert_id=alert.id or 0, at=fired, event="firing"))
            session.add(BreachEventRecord(breach_id=breach.id or 0, at=fired, event="opened", detail="page"))
        for record in records[::silences_every]:
            session.add(
                SilenceRecord(
                    slo_id=record.id or 0,
                    until=now + timedelta(hours=2),
                    reason="maintenance",
                    created_by="U0SOMEONE",
                    created_at=now,
                )
            )
        session.commit()
    engine.dispose()


# --- the database, as the tests look at it ---------------------------------------------------


class Store:
    """Read-only looks at the bot's database from the test process."""

    def __init__(self, database_url: str) -> None:
        self.engine: Engine = db.make_engine(database_url)

    def close(self) -> None:
        self.engine.dispose()

    def alerts(self, slo: str | None = None) -> list[AlertRecord]:
        """The alert signals (page, ticket, budget-25 ...), each with the breach it belongs to."""
        with Session(self.engine) as session:
            query = select(AlertRecord).join(SLORecord, col(SLORecord.id) == AlertRecord.slo_id)
            if slo is not None:
                query = query.where(SLORecord.name == slo)
            return list(session.exec(query.order_by(col(AlertRecord.id))))

    def breaches(self, slo: str | None = None) -> list[BreachRecord]:
        """The breaches: what people see as one message and acknowledge once."""
        with Session(self.engine) as session:
            query = select(BreachRecord).join(SLORecord, col(SLORecord.id) == BreachRecord.slo_id)
            if slo is not None:
                query = query.where(SLORecord.name == slo)
            return list(session.exec(query.order_by(col(BreachRecord.id))))

    def events(self) -> list[AlertEventRecord]:
        """The signals' trail: firing, resolved."""
        with Session(self.engine) as session:
            return list(session.exec(select(AlertEventRecord).order_by(col(AlertEventRecord.id))))

    def breach_events(self) -> list[BreachEventRecord]:
        """The breaches' trail: opened, raised, resolved, and what people did (acknowledged ...)."""
        with Session(self.engine) as session:
            return list(session.exec(select(BreachEventRecord).order_by(col(BreachEventRecord.id))))

    def silences(self) -> list[SilenceRecord]:
        with Session(self.engine) as session:
            return list(session.exec(select(SilenceRecord).order_by(col(SilenceRecord.id))))

    def outbox(self) -> list[OutboxRecord]:
        with Session(self.engine) as session:
            return list(session.exec(select(OutboxRecord).order_by(col(OutboxRecord.id))))

    def evaluated(self) -> int:
        """How many SLOs have a stored status."""
        with Session(self.engine) as session:
            return len(set(session.exec(select(SnapshotRecord.slo_id)).all()))

    def fingerprint(self) -> tuple[object, ...]:
        """What a user's action could change: breaches, their trail, silences, the outbox."""
        return (
            [(b.id, b.state, b.acknowledged_by, b.escalated_at) for b in self.breaches()],
            [(a.id, a.state, a.breach_id) for a in self.alerts()],
            [(e.id, e.event, e.actor) for e in self.breach_events()],
            [(e.id, e.event, e.actor) for e in self.events()],
            [(s.id, s.until, s.ended_at) for s in self.silences()],
            [(o.id, o.status) for o in self.outbox()],
        )

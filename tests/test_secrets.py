"""No token, key or password in anything slo-bot writes: a real `slo-bot run` on PostgreSQL with known,
distinctive secrets in every place they are given (environment, DATABASE_URL, DataSources, incident
tools), and the failures that tend to quote them (sources answering errors that echo the request,
timing out or refusing the credentials, Slack and the incident tools failing, forged webhooks).

Every output is searched for every secret: the log (text and JSON), the CLI's stdout and stderr,
/metrics, /healthz, every row of every table, and every request the fake Slack received.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, select
from sqlmodel import SQLModel

from bot.domain import DataSource, NotificationTarget
from bot.settings import Settings
from bot.store import db
from tests.fakeincidents import FakeIncidents
from tests.fakeslack import FakeSlack
from tests.fakesocket import FakeSocketMode
from tests.slack.harness import ALERTS, RESPONDER, BotProcess, signed_headers, wait_for
from tests.slack.test_socket_mode import PAYLOADS

ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

# Given through the environment (the catalogue says ${NAME}): each distinctive enough to grep for.
ENV_SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-4242-SECRETbotTOKEN7f3a9c",
    "SLACK_SIGNING_SECRET": "SECRETsigning5e2b8d41c7",
    "SLACK_APP_TOKEN": "xapp-1-SECRETappTOKEN9d0e6b",
    "PAGERDUTY_WEBHOOK_SECRET": "SECRETpdWEBHOOKa81f3c",
    "OPSGENIE_WEBHOOK_TOKEN": "SECRETgenieWEBHOOK4c9e2a",
    "PROM_TOKEN": "SECRETpromBEARER6b1d7e",
    "PROM_PASSWORD": "SECRETpromBASIC3f8a0c",
    "PROM_URL_PASSWORD": "SECRETpromURL2e7c5d",
    "PROM_API_KEY": "SECRETpromHEADER8a4f1b",
    "DD_API_KEY": "SECRETddAPIKEY5c0e8a2f",
    "DD_APP_KEY": "SECRETddAPPKEY1b7d4e9c",
    "PD_ROUTING_KEY": "SECRETroutingKEY0123456789abcdef",  # 32 characters, as PagerDuty's are
    "PD_API_TOKEN": "SECRETpdREST9e1c4b",
    "OPSGENIE_KEY": "SECRETgenieKEY55d0a1",
    "SQUADCAST_KEY": "SECRETsquadKEY77c3e2",
    "HOOK_SECRET": "SECREThookSIGNING71bd",
    "HOOK_URL_PASSWORD": "SECREThookURL93ae0f",
}
DB_PASSWORD = "SECRETdbPASSWORD0c6e9f"
SECRETS = {
    **ENV_SECRETS,
    "DATABASE_URL password": DB_PASSWORD,
    # what an Authorization header carries for basic auth: the password only base64-encoded
    "basicAuth header": base64.b64encode(f"slo-bot:{ENV_SECRETS['PROM_PASSWORD']}".encode()).decode(),
    "url userinfo header": base64.b64encode(f"slo-bot:{ENV_SECRETS['PROM_URL_PASSWORD']}".encode()).decode(),
    "webhook userinfo header": base64.b64encode(
        f"receiver:{ENV_SECRETS['HOOK_URL_PASSWORD']}".encode()
    ).decode(),
}

START = (datetime.now(UTC) - timedelta(minutes=30)).replace(second=0, microsecond=0)

CATALOGUE = """
apiVersion: openslo/v1
kind: DataSource
metadata: {name: sim}
spec:
  type: Simulated
  connectionDetails:
    seed: 1
    requests_per_minute: 1000
    error_ratio: 0.0001
    incidents: [{start: "@START@", duration: 6h, error_ratio: 0.04}]
---
apiVersion: openslo/v1
kind: DataSource
metadata: {name: echoing}
spec:
  type: Prometheus
  connectionDetails:
    url: @PROM@/echo
    bearerToken: ${PROM_TOKEN}
    headers: {X-Api-Key: "${PROM_API_KEY}"}
---
apiVersion: openslo/v1
kind: DataSource
metadata: {name: refusing}
spec:
  type: Prometheus
  connectionDetails:
    url: @PROM@/refuse
    bearerToken: ${PROM_TOKEN}
---
apiVersion: openslo/v1
kind: DataSource
metadata: {name: locked}
spec:
  type: Prometheus
  connectionDetails:
    url: @PROM@/unauthorized
    basicAuth: {username: slo-bot, password: "${PROM_PASSWORD}"}
---
apiVersion: openslo/v1
kind: DataSource
metadata: {name: gateway}
spec:
  type: Prometheus
  connectionDetails:
    url: http://slo-bot:${PROM_URL_PASSWORD}@@HOSTPORT@/echo
---
apiVersion: openslo/v1
kind: DataSource
metadata: {name: slow}
spec:
  type: Prometheus
  connectionDetails:
    url: http://slo-bot:${PROM_URL_PASSWORD}@@HOSTPORT@/hang  # (gone before it could answer)
    timeout: 1s
---
apiVersion: openslo/v1
kind: DataSource
metadata: {name: dd-echoing}
spec:
  type: Datadog
  connectionDetails: {url: "@PROM@/dd-echo", apiKey: "${DD_API_KEY}", applicationKey: "${DD_APP_KEY}"}
---
apiVersion: openslo/v1
kind: DataSource
metadata: {name: dd-refusing}
spec:
  type: Datadog
  connectionDetails: {url: "@PROM@/dd-refuse", apiKey: "${DD_API_KEY}", applicationKey: "${DD_APP_KEY}"}
---
apiVersion: openslo/v1
kind: AlertNotificationTarget
metadata:
  name: pd
  annotations:
    slo-bot/routing-key: ${PD_ROUTING_KEY}
    slo-bot/url: @FAKE@/pagerduty/v2/enqueue
    slo-bot/api-url: @FAKE@/pagerduty-api
    slo-bot/api-token: ${PD_API_TOKEN}
    slo-bot/from: oncall@example.com
spec: {target: pagerduty}
---
apiVersion: openslo/v1
kind: AlertNotificationTarget
metadata:
  name: genie
  annotations: {slo-bot/api-key: "${OPSGENIE_KEY}", slo-bot/url: @FAKE@/opsgenie}
spec: {target: opsgenie}
---
apiVersion: openslo/v1
kind: AlertNotificationTarget
metadata:
  name: squad
  annotations: {slo-bot/url: "@FAKE@/squadcast/v2/incidents/api/${SQUADCAST_KEY}"}
spec: {target: squadcast}
---
apiVersion: openslo/v1
kind: AlertNotificationTarget
metadata:
  name: hook
  annotations:
    slo-bot/url: "http://receiver:${HOOK_URL_PASSWORD}@@FAKEHOST@/hook"
    slo-bot/secret: "${HOOK_SECRET}"
spec: {target: webhook}
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-availability
  annotations:
    slo-bot/channel: @ALERTS@
    slo-bot/incident-targets: pd, genie, squad, hook
spec:
  service: checkout
  indicator:
    metadata: {name: checkout-requests}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {metricSourceRef: sim, spec: {query: good}}}
        total: {metricSource: {metricSourceRef: sim, spec: {query: total}}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.999}]
"""

FAILING = """---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: NAME
  annotations: {slo-bot/channel: @ALERTS@}
spec:
  service: NAME
  indicator:
    metadata: {name: NAME-requests}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {metricSourceRef: NAME, spec: {query: 'http_requests_total{code!~"5.."}'}}}
        total: {metricSource: {metricSourceRef: NAME, spec: {query: http_requests_total}}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
"""
FAILING_DATADOG = FAILING.replace('http_requests_total{code!~"5.."}', "sum:http.requests{code:200}").replace(
    "query: http_requests_total}", "query: 'sum:http.requests{*}'}"
)
DATADOG_SOURCES = ("dd-echoing", "dd-refusing")
SOURCES = ("echoing", "refusing", "locked", "gateway", "slow", *DATADOG_SOURCES)


class _EchoingPrometheus(BaseHTTPRequestHandler):
    """A Prometheus-compatible API behind a careless gateway: its errors quote the request it got,
    headers (credentials too) and body, as some proxies and Thanos / Mimir front-ends do."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
        quoted = f"request {self.path} with headers {dict(self.headers)} and body {body!r}"
        if self.path.startswith("/hang"):
            time.sleep(2.5)  # past the DataSource's 1 s timeout
            self._answer(500, {"status": "error", "errorType": "timeout", "error": f"too slow: {quoted}"})
        elif self.path.startswith("/refuse"):
            self._answer(400, {"status": "error", "errorType": "bad_data", "error": f"cannot parse {quoted}"})
        elif self.path.startswith("/unauthorized"):
            self._answer(401, {"status": "error", "error": f"who are you? {quoted}"})
        else:
            self._answer(
                500, {"status": "error", "errorType": "internal", "error": f"upstream failed: {quoted}"}
            )

    def do_GET(self) -> None:
        """Datadog's query API behind the same gateway: a 403 and a 500 quoting the request, keys too."""
        quoted = f"request {self.path} with headers {dict(self.headers)}"
        if self.path.startswith("/dd-refuse"):
            self._answer(403, {"errors": [f"Forbidden: {quoted}"]})
        else:
            self._answer(500, {"errors": [f"upstream failed: {quoted}"]})

    def _answer(self, status: int, payload: Mapping[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)  # (a client that timed out is gone: BrokenPipe is expected)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingPrometheus)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _catalogue(prometheus: str, incidents: FakeIncidents) -> str:
    text = CATALOGUE + "".join(
        (FAILING_DATADOG if name in DATADOG_SOURCES else FAILING).replace("NAME", name) for name in SOURCES
    )
    return (
        text.replace("@START@", START.isoformat())
        .replace("@HOSTPORT@", prometheus)
        .replace("@PROM@", f"http://{prometheus}")
        .replace("@FAKE@", incidents.url)
        .replace("@FAKEHOST@", incidents.url.removeprefix("http://"))
        .replace("@ALERTS@", ALERTS)
    )


def _leaks(outputs: Mapping[str, str]) -> list[str]:
    return [
        f"{secret_name} in {where}: ...{text[max(0, text.find(secret) - 120) : text.find(secret) + 40]}..."
        for where, text in outputs.items()
        for secret_name, secret in SECRETS.items()
        if secret in text
    ]


def _cli(*argv: str, env: Mapping[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "bot", *argv], env=dict(env), capture_output=True, text=True, timeout=120
    )
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def _database(url: str) -> str:
    """Every row of every table, as text."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            return "\n".join(
                f"{table.name}: {tuple(row)}"
                for table in SQLModel.metadata.sorted_tables
                for row in connection.execute(select(table))
            )
    finally:
        engine.dispose()


@ON_POSTGRESQL
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_secret_in_any_output(tmp_path: Path, database_url: str, prometheus: str, log_format: str) -> None:
    url = make_url(database_url).set(drivername="postgresql+psycopg", password=DB_PASSWORD)
    secret_url = url.render_as_string(hide_password=False)
    assert DB_PASSWORD in secret_url  # (the local server trusts; the password is ignored, not refused)
    outputs: dict[str, str] = {}
    with (
        FakeSlack(token=ENV_SECRETS["SLACK_BOT_TOKEN"]) as slack,
        FakeIncidents(
            routing_key=ENV_SECRETS["PD_ROUTING_KEY"],
            pagerduty_token=ENV_SECRETS["PD_API_TOKEN"],
            opsgenie_key=ENV_SECRETS["OPSGENIE_KEY"],
            squadcast_key=ENV_SECRETS["SQUADCAST_KEY"],
            hook_secret=ENV_SECRETS["HOOK_SECRET"],
        ) as incidents,
    ):
        slack.add_channel(ALERTS, "alerts", members=[RESPONDER])
        slack.fail("chat.postMessage", status=500, times=2)  # the first posts fail, then go through
        for vendor in ("pagerduty", "opsgenie", "squadcast", "hook"):  # errors quoting the request
            incidents.fail(vendor, status=500, times=2, echo=True)
        env = {
            **{k: v for k, v in ENV_SECRETS.items() if k != "SLACK_APP_TOKEN"},  # that one: Socket Mode
            "SLO_BOT_LOG_FORMAT": log_format,
        }
        bot = BotProcess(tmp_path, secret_url, slack, _catalogue(prometheus, incidents), env=env)
        with bot:
            wait_for(lambda: slack.messages(ALERTS), 60, "the page in Slack")
            for vendor in ("pagerduty", "opsgenie", "squadcast", "hook"):
                wait_for(
                    lambda v=vendor: incidents.calls_of(v, ok_only=True), 60, f"{vendor} to get the page"
                )
            wait_for(lambda: "will retry next tick" in bot.log() and "refused" in bot.log(), 30, "failures")
            wait_for(
                lambda: "'dd-refusing'" in bot.log() and "'dd-echoing'" in bot.log(), 30, "Datadog's failures"
            )
            # forged and mistaken requests
            assert (
                bot.http.post(
                    "/webhooks/pagerduty", content=b"{}", headers={"X-PagerDuty-Signature": "v1=00"}
                ).status_code
                == 401
            )
            assert (
                bot.http.post(
                    "/webhooks/opsgenie", content=b"{}", headers={"X-Slo-Bot-Token": "wrong"}
                ).status_code
                == 401
            )
            forged = bot.command_body("status")
            assert (
                bot.post(
                    forged, "application/x-www-form-urlencoded", signed_headers(forged, secret="wrong")
                ).status_code
                == 401
            )
            # what people read in Slack, failures included
            for text in ("status", *(f"show {name}" for name in SOURCES)):
                body = bot.command_body(text)
                headers = signed_headers(body, secret=ENV_SECRETS["SLACK_SIGNING_SECRET"])
                assert bot.post(body, "application/x-www-form-urlencoded", headers).status_code == 200
            wait_for(lambda: len(slack.responses) >= 1 + len(SOURCES), 30, "the answers to /slo")
            outputs["/metrics"] = bot.http.get("/metrics").text
            outputs["/healthz"] = bot.http.get("/healthz").text
            assert "slo_bot_slos_failing" in outputs["/metrics"]
        outputs[f"the {log_format} log of run"] = bot.log()
        # the fake Slack saw every request: its parameters (the token is the Authorization header)
        outputs["requests to Slack"] = "\n".join(
            f"{c.method} {c.path} {json.dumps(c.params)}" for c in slack.calls
        )
        assert any(
            "failed" in text or "refused" in text for text in outputs["requests to Slack"].splitlines()
        )
    cli_env = {**os.environ, **ENV_SECRETS, "DATABASE_URL": secret_url, "SLO_BOT_LOG_FORMAT": log_format}
    cli_env.pop("SLO_BOT_CONFIG", None)
    for argv in (("check",), ("check", "--json"), ("status",), ("status", "--json"), ("db", "upgrade")):
        outputs[f"slo-bot {' '.join(argv)}"] = _cli(*argv, env=cli_env)
    assert "will retry next tick" in outputs["slo-bot check"]
    outputs["the database"] = _database(secret_url)
    assert "refused" in outputs["the database"]
    # the incident tools quoted the requests, keys and the webhook's basic-auth header among them
    assert "Internal server error for POST /hook" in outputs[f"the {log_format} log of run"]
    leaks = _leaks(outputs)
    assert not leaks, "\n".join(leaks)


@ON_POSTGRESQL
def test_no_app_token_in_socket_mode_output(tmp_path: Path, database_url: str, prometheus: str) -> None:
    """Socket Mode: the app-level token opens the WebSocket; Slack refusing it at first and the
    failing sources leave it out of the JSON log and of what Slack receives."""
    url = make_url(database_url).set(drivername="postgresql+psycopg", password=DB_PASSWORD)
    secret_url = url.render_as_string(hide_password=False)
    outputs: dict[str, str] = {}
    with (
        FakeSlack(token=ENV_SECRETS["SLACK_BOT_TOKEN"]) as slack,
        FakeSocketMode() as socket_mode,
        FakeIncidents(
            routing_key=ENV_SECRETS["PD_ROUTING_KEY"],
            opsgenie_key=ENV_SECRETS["OPSGENIE_KEY"],
            squadcast_key=ENV_SECRETS["SQUADCAST_KEY"],
            hook_secret=ENV_SECRETS["HOOK_SECRET"],
        ) as incidents,
    ):
        slack.app_token = ENV_SECRETS["SLACK_APP_TOKEN"]
        slack.socket_url = socket_mode.url
        slack.add_channel(ALERTS, "alerts", members=[RESPONDER])
        slack.fail("chat.postMessage", status=500, times=1)
        env = {**ENV_SECRETS, "SLACK_SIGNING_SECRET": "", "SLO_BOT_LOG_FORMAT": "json"}
        bot = BotProcess(tmp_path, secret_url, slack, _catalogue(prometheus, incidents), env=env)
        with bot:
            socket_mode.wait_connected()
            wait_for(lambda: slack.messages(ALERTS), 60, "the page in Slack")
            wait_for(lambda: "will retry next tick" in bot.log(), 30, "the failing sources")
            envelope = json.loads(
                (PAYLOADS / "socket_mode_slash_commands_envelope_slack_docs.json").read_text()
            )
            envelope["payload"].update(command="/slo", text="status", user_id=RESPONDER, channel_id=ALERTS)
            envelope["payload"]["response_url"] = slack.response_url("socket")
            socket_mode.send(envelope)
            answer = json.dumps(slack.wait_response("socket"))
            assert all(name in answer for name in SOURCES), answer  # their failures are shown
            outputs["/metrics"] = bot.http.get("/metrics").text
            outputs["/healthz"] = bot.http.get("/healthz").text
        outputs["the json log of run"] = bot.log()
        lines = [
            line
            for line in bot.log().splitlines()
            if not line.startswith("created: ") and not re.match(r"\d+ created, ", line)  # apply's summary
        ]
        records = [json.loads(line) for line in lines]  # every line, Slack's libraries' too, is JSON
        assert {"bot.run", "bot.jobs"} <= {r["logger"] for r in records}
        outputs["requests to Slack"] = "\n".join(
            f"{c.method} {c.path} {json.dumps(c.params)}" for c in slack.calls
        )
        assert any(c.method == "apps.connections.open" for c in slack.calls)
    leaks = _leaks(outputs)
    assert not leaks, "\n".join(leaks)


def test_settings_and_definitions_print_without_their_secrets() -> None:
    """A `log.info("%s", settings)` or an SLO in an exception's text shows no credential."""
    settings = Settings.from_env({**ENV_SECRETS, "DATABASE_URL": f"postgresql://bot:{DB_PASSWORD}@db/slo"})
    source = DataSource(
        "prom", "Prometheus", {"url": "http://prom", "bearerToken": ENV_SECRETS["PROM_TOKEN"]}
    )
    target = NotificationTarget(
        "pd", "pagerduty", annotations={"slo-bot/routing-key": ENV_SECRETS["PD_ROUTING_KEY"]}
    )
    shown = {"settings": repr(settings), "a DataSource": repr(source), "a target": repr(target)}
    assert "slack_api_url" in shown["settings"] and "'prom'" in shown["a DataSource"]
    leaks = _leaks(shown)
    assert not leaks, "\n".join(leaks)

"""`slo-bot run` in console mode (no Slack) still keeps the incident tools in step: it pages them and
serves their webhooks when a webhook secret is set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlmodel import Session, col, select

from bot.incidents.inbound import pagerduty_signature
from bot.store.incidents import dedup_key
from bot.store.models import BreachRecord
from tests.fakeincidents import FakeIncidents
from tests.incidents.harness import CATALOGUE, CHANNEL, ONCALL, SLO
from tests.slack.harness import Store, free_port

SECRET = "console-webhook-secret"


def breaches(store: Store) -> list[BreachRecord]:
    with Session(store.engine) as session:
        return list(session.exec(select(BreachRecord).order_by(col(BreachRecord.id))))


def test_console_mode_pages_and_hears_back(tmp_path: Path, database_url: str, fake: FakeIncidents) -> None:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    (tmp_path / "slos.yaml").write_text(
        CATALOGUE.format(
            start=start.isoformat().replace("+00:00", "Z"),
            outage="2h",
            targets_documents=fake.target_documents("pd", "genie"),
            channel=CHANNEL,
            targets="pd",
            oncall=ONCALL,
        )
    )
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SLO_BOT_CONFIG": str(tmp_path / "slos.yaml"),
        "SLO_BOT_EVAL_INTERVAL": "2s",
        "SLO_BOT_HOST": "127.0.0.1",
        "PAGERDUTY_WEBHOOK_SECRET": SECRET,
    }
    for unset in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "OPSGENIE_WEBHOOK_TOKEN"):
        env.pop(unset, None)
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    store = Store(database_url)
    try:
        trigger = fake.wait_calls("pagerduty", 1, timeout=60)[0]
        (breach,) = breaches(store)
        assert breach.id is not None and breach.severity == "page"
        key = dedup_key(SLO, breach.id)  # the breach's
        assert trigger.status == 202 and trigger.json["dedup_key"] == key
        url = f"http://127.0.0.1:{port}/webhooks/pagerduty"
        body = json.dumps(
            {
                "event": {
                    "id": "01CONSOLEACK",
                    "event_type": "incident.acknowledged",
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "agent": {"type": "user_reference", "summary": "Jane Doe"},
                    "data": {"id": "QCONSOLE", "type": "incident", "incident_key": key},
                }
            }
        ).encode()
        forged = httpx.post(url, content=body, headers={"X-PagerDuty-Signature": "v1=" + "0" * 64})
        assert forged.status_code == 401
        assert breaches(store)[0].acknowledged_by is None
        signed = {"X-PagerDuty-Signature": pagerduty_signature(SECRET, body)}
        answer = httpx.post(url, content=body, headers=signed)
        assert (answer.status_code, answer.text.strip()) == (200, "applied: acknowledged")
        (acknowledged,) = breaches(store)
        assert (acknowledged.id, acknowledged.acknowledged_by) == (breach.id, "Jane Doe (PagerDuty)")
        page = store.alerts(SLO)[0]
        assert (page.key, page.breach_id) == ("page", breach.id)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
        store.close()
    text = log_path.read_text()
    assert "console mode" in text and f"incident tool webhooks on 127.0.0.1:{port}" in text
    assert f"🔴 PAGE: checkout-availability (checkout) · breach #{breach.id}" in text
    assert process.returncode == 0, text

"""Fault: one SLO's broken definition or DataSource used to abort the whole tick.

An unreadable annotation stored by an earlier version, or a DataSource whose caFile has gone, made
`check` exit 2 with a traceback and no SLO evaluated. Now each fails alone: `check` prints every
other SLO (and valid JSON with an `error` for the failed ones), exits 1, and `status` says since
when and why each failed one is not evaluated.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import certifi
from sqlalchemy import text

from bot.store import db
from tests.fakeslack import FakeSlack
from tests.faults import catalogues as faults
from tests.promharness import History
from tests.slack.conftest import BotFactory
from tests.slack.harness import ALERTS, RESPONDER, catalogue, home_opened


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    env.pop("SLO_BOT_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_a_broken_slo_and_a_lost_ca_file_fail_alone(
    tmp_path: Path, database_url: str, prometheus: str, prom_history: History
) -> None:
    ca = tmp_path / "ca.pem"
    shutil.copy(certifi.where(), ca)
    documents = [
        faults.datasource("prom", prometheus),
        faults.datasource("prom-tls", prometheus, extra=f'caFile: "{ca}"'),
    ]
    for name, source in (("healthy", "prom"), ("odd-annotation", "prom"), ("lost-ca", "prom-tls")):
        good, total = prom_history.good_selector, prom_history.total_selector
        documents.append(
            faults.ratio_slo(name, source, good, total, annotations='"slo-bot/min-bad-events": "3"')
        )
    catalogue = faults.catalogue(*documents)
    (tmp_path / "slos.yaml").write_text(catalogue)
    applied = _cli(database_url, "apply", str(tmp_path / "slos.yaml"))
    assert applied.returncode == 0, applied.stderr
    # what an earlier version stored, or a hand edit: an annotation run cannot read
    engine = db.make_engine(database_url)
    with engine.begin() as connection:
        stored = connection.execute(
            text("SELECT documents FROM slo WHERE name = 'odd-annotation'")
        ).scalar_one()
        broken = stored.replace('"slo-bot/min-bad-events": "3"', '"slo-bot/min-bad-events": "three"')
        assert broken != stored
        connection.execute(text("UPDATE slo SET documents = :d WHERE name = 'odd-annotation'"), {"d": broken})
    engine.dispose()
    ca.unlink()  # the mounted CA bundle has gone

    checked = _cli(database_url, "check", "--json")
    assert checked.returncode == 1, checked.stderr  # a person must fix config; never 2, no traceback
    assert "Traceback" not in checked.stderr
    rows = {row["slo"]: row for row in json.loads(checked.stdout)}
    assert set(rows) == {"healthy", "odd-annotation", "lost-ca"}
    assert "error" not in rows["healthy"] and rows["healthy"]["total"] > 0
    assert rows["healthy"]["sli"] is not None
    assert "min-bad-events" in rows["odd-annotation"]["error"]
    assert "caFile" in rows["lost-ca"]["error"] and "prom-tls" in rows["lost-ca"]["error"]
    assert "odd-annotation" in checked.stderr and "lost-ca" in checked.stderr

    status = _cli(database_url, "status")
    assert status.returncode == 0, status.stderr
    failing = [line for line in status.stdout.splitlines() if "not evaluated since" in line]
    assert len(failing) == 2, status.stdout
    assert any("odd-annotation" in line and "min-bad-events" in line for line in failing)
    assert any("lost-ca" in line and "caFile" in line for line in failing)
    # fixed, the next check evaluates it again and the mark goes
    shutil.copy(certifi.where(), ca)
    again = _cli(database_url, "check", "--json", "--slo", "lost-ca")
    assert again.returncode == 0, again.stderr
    status = _cli(database_url, "status")
    assert not any("lost-ca" in line for line in status.stdout.splitlines() if "not evaluated" in line)


PAGE = "🔴 PAGE: checkout-availability"
LOST_CA = """
---
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: prom-tls}}
spec:
  type: Prometheus
  connectionDetails: {{url: "https://prometheus.invalid:9090", caFile: "{ca}"}}
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: lost-ca
  annotations: {{slo-bot/channel: {channel}}}
spec:
  service: checkout
  indicator:
    metadata: {{name: lost-ca-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: prom-tls, spec: {{query: 'requests_total{{code="200"}}'}}}}}}
        total: {{metricSource: {{metricSourceRef: prom-tls, spec: {{query: 'requests_total'}}}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.999}}]
"""


def test_slack_shows_which_slo_is_not_evaluated_and_why(
    tmp_path: Path, start_bot: BotFactory, slack: FakeSlack
) -> None:
    """`slo-bot run` with one SLO whose CA bundle is gone: the others alert as ever, and /slo status,
    /slo show and the App Home say the broken one is not evaluated, since when and why."""
    text = catalogue() + LOST_CA.format(ca=tmp_path / "gone" / "ca.pem", channel=ALERTS)
    bot = start_bot(text)
    # checkout-availability still pages; the blind one says it has no data
    slack.wait_until(
        lambda: any(m["text"].startswith(PAGE) for m in slack.messages(ALERTS)),
        30,
        "the page",
    )
    status = _readable(bot.answer("status"))
    line = status[status.index("`lost-ca`") :].split("🟢")[0].split("🔥")[0]
    assert "not evaluated since" in line and "caFile" in line, status
    shown = _readable(bot.answer("show lost-ca"))
    assert "not evaluated since" in shown and "caFile" in shown and "prom-tls" in shown
    assert bot.event(home_opened(RESPONDER, "Ev0HOMEFAIL")).status_code == 200
    slack.wait_calls("views.publish", 1)
    home = json.dumps(slack.views[RESPONDER][-1], ensure_ascii=False)
    assert "lost-ca" in home and "not evaluated since" in home and "caFile" in home


def _readable(payload: dict[str, Any]) -> str:
    return json.dumps(payload.get("blocks") or payload.get("text"), ensure_ascii=False).replace("\\n", "\n")

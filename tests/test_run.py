"""`slo-bot run` (console mode) and `slo-bot demo`, as processes a user starts and stops."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlmodel import Session, select

from bot.demo import Script, run_demo
from bot.store import db
from bot.store.models import (
    AlertEventRecord,
    AlertRecord,
    BreachEventRecord,
    BreachRecord,
    SLORecord,
    SnapshotRecord,
)

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
    incidents: [{{start: "{start}", duration: 3h, error_ratio: 1.0}}]
---
apiVersion: openslo/v1
kind: DataSource
metadata: {{name: gone}}
spec:
  type: Prometheus
  connectionDetails: {{url: "http://127.0.0.1:9", timeout: 1s}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {{name: down-api}}
spec:
  service: api
  indicator:
    metadata: {{name: sim-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: sim, spec: {{query: good}}}}}}
        total: {{metricSource: {{metricSourceRef: sim, spec: {{query: total}}}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.999}}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {{name: unreachable}}
spec:
  service: other
  indicator:
    metadata: {{name: prom-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: gone, spec: {{query: 'up{{job="x"}}'}}}}}}
        total: {{metricSource: {{metricSourceRef: gone, spec: {{query: 'up'}}}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.99}}]
"""


def _start(tmp_path: Path, database_url: str, log: BinaryIO) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SLO_BOT_CONFIG": str(tmp_path / "slos.yaml"),
        "SLO_BOT_EVAL_INTERVAL": "2s",
        "SLO_BOT_CHART_DIR": str(tmp_path / "charts"),
    }
    env.pop("SLACK_BOT_TOKEN", None)
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--port", "0"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def _snapshots(database_url: str) -> int:
    engine = db.make_engine(database_url)
    with Session(engine) as session:
        count = len(session.exec(select(SnapshotRecord)).all())
    engine.dispose()
    return count


def _wait(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def test_kill_with_an_open_alert_then_restart_neither_refires_nor_forgets(
    tmp_path: Path, database_url: str
) -> None:
    start = (datetime.now(UTC) - timedelta(minutes=30)).replace(second=0, microsecond=0)
    (tmp_path / "slos.yaml").write_text(CATALOGUE.format(start=start.isoformat()))
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with first_log.open("wb") as log:
        first = _start(tmp_path, database_url, log)
    try:
        _wait(lambda: "🔴 PAGE: down-api (api) · breach #" in first_log.read_text())
        # console mode writes the breach's burn-down chart, as Slack would get it, and says where
        _wait(lambda: "down-api-breach-" in first_log.read_text())
        first.send_signal(signal.SIGKILL)  # no clean shutdown
    finally:
        first.kill()
        first.wait()
    text = first_log.read_text()
    chart = Path(re.findall(r"📈 burn-down chart: (\S*down-api-breach-\d+-opened-\S+\.png)", text)[0])
    assert chart.parent == tmp_path / "charts" and chart.read_bytes()[:4] == b"\x89PNG"
    # the unreachable source did not stop the other SLO, and the error says what is wrong
    assert "unreachable" in text and "127.0.0.1:9" in text
    before = _snapshots(database_url)
    with second_log.open("wb") as log:
        second = _start(tmp_path, database_url, log)
    try:
        _wait(lambda: _snapshots(database_url) >= before + 6)  # three more ticks of both SLOs
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0  # a clean stop on SIGTERM
    finally:
        second.kill()
        second.wait()
    # the breach open before the kill is not announced again (the outage goes on, so the budget
    # thresholds may be crossed during either run: each signal fires once, whichever run it is, and
    # the crossings are notes in the breach's thread, not messages of their own)
    assert "PAGE: down-api" not in second_log.read_text()
    engine = db.make_engine(database_url)
    with Session(engine) as session:
        down = session.exec(select(SLORecord).where(SLORecord.name == "down-api")).one()
        breaches = session.exec(select(BreachRecord).where(BreachRecord.slo_id == down.id)).all()
        assert [(b.kind, b.severity, b.state, b.acknowledged_by) for b in breaches] == [
            ("burn", "page", "firing", None)
        ]
        trail = session.exec(select(BreachEventRecord)).all()
        # every breach (the unreachable SLO is blind: a no-data one) opened once, whichever run it was
        every_breach = session.exec(select(BreachRecord)).all()
        assert len({(b.slo_id, b.kind) for b in every_breach}) == len(every_breach)
        for breach in every_breach:
            assert [e.event for e in trail if e.breach_id == breach.id].count("opened") == 1
        alerts = session.exec(select(AlertRecord).where(AlertRecord.key == "page")).all()
        assert [(a.state, a.breach_id) for a in alerts] == [("firing", breaches[0].id)]
        events = session.exec(select(AlertEventRecord)).all()
        assert [e.event for e in events if e.alert_id == alerts[0].id] == ["firing"]
        every = session.exec(select(AlertRecord)).all()
        assert len({a.key for a in every}) == len(every)  # one alert per key, never a second one
        for alert in every:
            assert [e.event for e in events if e.alert_id == alert.id].count("firing") == 1
    engine.dispose()


def test_the_demo_shows_a_page_fire_and_resolve(tmp_path: Path) -> None:
    out = io.StringIO()
    script = Script(start=datetime(2026, 11, 27, 9, 0, tzinfo=UTC), tick_seconds=0.05)
    assert run_demo(out, script, chart_dir=tmp_path) == 0
    text = out.getvalue()
    # console mode writes the charts Slack would get: when the breach opens, when it ends, and last
    # one of the SLO as the demo leaves it; each path printed
    printed = re.findall(r"burn-down chart(?: of checkout-availability)?: (\S+\.png)", text)
    assert [Path(p).name for p in printed] == [
        "checkout-availability-breach-1-opened-20261127-0907.png",
        "checkout-availability-breach-1-resolved-20261127-0919.png",
        "checkout-availability-demo-20261127-0922.png",
    ]
    assert text.rstrip().endswith(printed[-1])
    assert all(Path(p).parent == tmp_path and Path(p).read_bytes()[:4] == b"\x89PNG" for p in printed)
    assert "🔴 PAGE: checkout-availability (checkout) · breach #1" in text
    assert "✅ Resolved PAGE: checkout-availability (checkout) · breach #1" in text
    assert text.index("🔴 PAGE") < text.index("✅ Resolved PAGE")
    # the page cleared at 09:18; the breach ends one evaluation later, the signal still clear
    assert "demo finished: page breach opened at 09:07; page breach resolved at 09:19." in text
    # the resolved message says what the episode cost
    spent = re.search(r"Budget spent +([\d.]+) % of the 30-day budget \(([\d.]+) of 43.2 minutes\)", text)
    assert spent and text.index("✅ Resolved PAGE") < spent.start()
    assert 0 < float(spent.group(1)) < 100
    assert abs(float(spent.group(1)) / 100 * 43.2 - float(spent.group(2))) < 0.06

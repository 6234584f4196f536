"""`slo-bot validate` refuses what `slo-bot run` would refuse, at the line that says it.

Each case runs the real command on a catalogue file and reads what a user sees: the exit code and
the `FILE:LINE: field.path: message` lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DATASOURCES = """\
apiVersion: openslo/v1
kind: DataSource
metadata: {name: prom}
spec: {type: Prometheus, connectionDetails: {url: "http://127.0.0.1:9"}}
---
apiVersion: openslo/v1
kind: DataSource
metadata: {name: demo}
spec: {type: Simulated, connectionDetails: {seed: 1}}
"""


def slo(annotations: str = "{}", good: str = "good", total: str = "total", source: str = "demo") -> str:
    return f"""\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: api
  annotations: {annotations}
spec:
  service: api
  indicator:
    metadata: {{name: api}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: {source}, spec: {{query: '{good}'}}}}}}
        total: {{metricSource: {{metricSourceRef: {source}, spec: {{query: '{total}'}}}}}}
  budgetingMethod: Occurrences
  objectives: [{{target: 0.999}}]
"""


def slo_bot(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'slo.db'}"}
    env.pop("SLO_BOT_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *argv], env=env, capture_output=True, text=True, timeout=60
    )


def validate(tmp_path: Path, text: str) -> tuple[int, list[str]]:
    (tmp_path / "sources.yaml").write_text(DATASOURCES)
    (tmp_path / "case.yaml").write_text(text)
    done = slo_bot(tmp_path, "validate", str(tmp_path))
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, [line for line in done.stdout.splitlines() + done.stderr.splitlines() if line]


def problem_at(lines: list[str], tmp_path: Path, line: int, phrase: str) -> None:
    where = f"{tmp_path / 'case.yaml'}:{line}: "
    assert any(text.startswith(where) and phrase in text for text in lines), lines


@pytest.mark.parametrize(
    ("annotation", "phrase"),
    [
        ("slo-bot/min-bad-events: three", "'three' is not a number of events"),
        ("slo-bot/min-bad-events: '-1'", "not a number of events"),
        ("slo-bot/no-data-after: soon", "invalid duration 'soon'"),
        ("slo-bot/budget-alerts: 'half'", "not a percentage"),
        ("slo-bot/budget-alerts: '50,150'", "'150' is not a percentage"),
        ("slo-bot/dashboard: grafana/d/api", "not an http(s) URL"),
        ("slo-bot/channel: C01 C02", "is not a Slack channel"),
        ("slo-bot/min-bad-event: '1'", "did you mean 'slo-bot/min-bad-events'"),
    ],
)
def test_a_wrong_slo_bot_annotation_is_refused_at_its_line(
    tmp_path: Path, annotation: str, phrase: str
) -> None:
    code, lines = validate(tmp_path, slo("\n    " + annotation))
    assert code == 1, lines
    problem_at(lines, tmp_path, 6, phrase)


def test_check_reports_a_wrong_annotation_instead_of_crashing(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text(DATASOURCES)
    (tmp_path / "case.yaml").write_text(slo("\n    slo-bot/min-bad-events: three"))
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'slo.db'}", "SLO_BOT_CONFIG": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1
    assert "case.yaml:6: " in done.stdout + done.stderr


def test_good_annotations_pass(tmp_path: Path) -> None:
    annotations = (
        "\n    slo-bot/min-bad-events: '1.5'\n    slo-bot/no-data-after: 30m"
        "\n    slo-bot/budget-alerts: '50, 10'\n    slo-bot/dashboard: https://grafana.test/d/api"
        "\n    slo-bot/channel: 'C0123ABCD, #api-alerts'\n    slo-bot/escalate-after: 20m"
    )
    code, lines = validate(tmp_path, slo(annotations))
    assert (code, lines) == (0, lines)

"""`slo-bot validate`, `apply` + `check` on a catalogue reading Datadog, against a local fake Datadog API
serving the history the Prometheus tests use: the same true counts, so the same figures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from bot import cli
from bot.store import db, history, repo
from tests.fakedatadog import API_KEY, APP_KEY, BAD, GOOD, TOTAL, FakeDatadog
from tests.promharness import DAY, MINUTE, History
from tests.test_cli_prometheus import Cli, _assert_true

CATALOGUE = """
apiVersion: openslo/v1
kind: DataSource
metadata:
  name: datadog
spec:
  type: Datadog
  connectionDetails:
    url: ${DATADOG_URL}   # a real one: site: datadoghq.eu
    apiKey: ${DD_API_KEY}
    applicationKey: ${DD_APP_KEY}
    timeout: 3s
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: api-availability
spec:
  service: api
  indicator:
    metadata:
      name: api-good
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            metricSourceRef: datadog
            spec:
              query: GOOD
        total:
          metricSource:
            metricSourceRef: datadog
            spec:
              query: TOTAL.as_count()
  timeWindow:
    - duration: 30d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.999
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: api-errors-28d
spec:
  service: api
  indicator:
    metadata:
      name: api-bad
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            metricSourceRef: datadog
            spec:
              query: BAD.as_count().rollup(sum, {{window}})
        total:
          metricSource:
            metricSourceRef: datadog
            spec:
              query: TOTAL
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.995
"""


@pytest.fixture
def datadog(prom_history: History) -> Iterator[FakeDatadog]:
    with FakeDatadog(prom_history) as fake:
        yield fake


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    path = tmp_path / "slos.yaml"
    path.write_text(CATALOGUE.replace("GOOD", GOOD).replace("TOTAL", TOTAL).replace("BAD", BAD))
    return path


@pytest.fixture
def run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
    datadog: FakeDatadog,
) -> Cli:
    monkeypatch.setenv("DATADOG_URL", datadog.url)
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("DD_APP_KEY", APP_KEY)
    return Cli(monkeypatch, capsys, database_url)


def _check(run: Cli, *argv: str) -> tuple[int, dict[str, dict[str, object]], str]:
    code, out, err = run("check", *argv, "--json")
    rows = {row["slo"]: row for row in json.loads(out)} if out.strip() else {}
    return code, rows, err


def test_check_agrees_with_the_true_counts(run: Cli, catalogue: Path, prom_history: History) -> None:
    assert run("apply", str(catalogue))[0] == 0
    for at in (
        prom_history.past_incident[1] + 10 * MINUTE,
        prom_history.gap[1] + 40 * MINUTE,
        prom_history.end - 2 * DAY - 7 * MINUTE,
        prom_history.end,
    ):
        code, rows, err = _check(run, "--at", at.isoformat())
        assert code == 0, err
        assert set(rows) == {"api-availability", "api-errors-28d"}
        for row in rows.values():
            _assert_true(row, prom_history, at)  # SLI, good, total, budget and every burn rate
    # the ongoing incident (5 % errors) pages the 99.9 % SLO exactly when the true burns say so
    end = prom_history.end
    burns = [
        prom_history.bad(end - m * MINUTE, end) / prom_history.total(end - m * MINUTE, end) / 0.001
        for m in (5, 60)
    ]
    pages = min(burns) > 14.4
    assert ("page" in [a["severity"] for a in rows["api-availability"]["alerts"]]) == pages  # type: ignore[union-attr]


def test_a_refused_key_needs_a_human_and_is_never_shown(
    run: Cli, catalogue: Path, prom_history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DD_API_KEY", "dd-revoked-key-11112222333344445555")
    assert run("apply", str(catalogue))[0] == 0
    code, rows, err = _check(run, "--at", prom_history.end.isoformat())
    assert code == cli.EXIT_PROBLEM
    assert "Datadog datasource 'datadog'" in err and "refused the API key or the application key" in err
    assert "dd-revoked-key" not in err + json.dumps(rows) and APP_KEY not in err
    assert rows["api-availability"]["state"] == "no_data"


@pytest.mark.parametrize("failure", ["429", "500", "garbage", "timeout"])
def test_an_unavailable_datadog_stores_nothing(
    run: Cli, catalogue: Path, datadog: FakeDatadog, prom_history: History, failure: str
) -> None:
    assert run("apply", str(catalogue))[0] == 0
    if failure == "429":
        datadog.rate_limit(reset=600, times=100)
    elif failure == "500":
        datadog.fail(500, times=100)
    elif failure == "garbage":
        datadog.fail(200, b'{"status": "ok", "series": [{"pointlist": ', times=100)
    else:
        datadog.fail(200, {"status": "ok", "series": []}, delay=3.5, times=100)
    code, rows, err = _check(run, "--at", prom_history.end.isoformat())
    assert code == cli.EXIT_UNAVAILABLE, err
    assert "Traceback" not in err and "api-availability" in err and "will retry next tick" in err
    assert API_KEY not in err
    assert rows["api-availability"]["state"] == "no_data" and rows["api-availability"]["total"] == 0
    if failure == "429":
        # the two SLOs' first requests may be in flight together; after a 429 nothing more is sent
        # until the reset (10 minutes away), though each SLO has several ranges and queries to ask
        assert "rate limited by Datadog" in err and 1 <= len(datadog.requests) <= 2
    engine = db.make_engine(run.database_url)
    with Session(engine) as session:
        assert history.count_buckets(session=session) == 0
        assert all(r.covered_to is None for r in repo.list_slos(session=session))
    engine.dispose()


def test_validate_points_at_what_datadog_cannot_take(
    run: Cli, catalogue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("validate", str(catalogue))[0] == 0
    text = catalogue.read_text()
    broken = (
        text.replace("    applicationKey: ${DD_APP_KEY}\n", "")
        .replace("query: " + GOOD, "query: avg:http.requests{code:200}")
        .replace("name: api-errors-28d\n", "name: api-errors-28d\n  annotations: {slo-bot/group-by: route}\n")
    )
    path = tmp_path / "broken.yaml"
    path.write_text(broken)
    code, out, err = run("validate", str(path))
    lines = (out + err).splitlines()
    assert code == cli.EXIT_PROBLEM
    lines_of = {line.split(":", 2)[1]: line for line in lines if line.startswith(str(path))}
    assert any("spec.connectionDetails.applicationKey: missing" in line for line in lines_of.values()), lines
    assert any("start it with sum:" in line for line in lines_of.values()), lines
    assert any(
        "grouped SLOs read Prometheus-compatible sources only" in line for line in lines_of.values()
    ), lines
    monkeypatch.delenv("DD_API_KEY")
    code, out, err = run("validate", str(catalogue))
    assert code == cli.EXIT_PROBLEM and "environment variable DD_API_KEY is not set" in out + err

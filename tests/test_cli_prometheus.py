"""`slo-bot apply` + `check` against a real Prometheus holding generated history with known true counts.

The history (tests/promharness.py) has uneven traffic, a past incident at night, an ongoing one, a
30-minute gap and a counter reset. Every figure `check --json` prints must agree with the truth.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from bot import cli
from bot.store import db, history, repo
from tests.promharness import DAY, MINUTE, History

CATALOGUE = """
apiVersion: openslo/v1
kind: DataSource
metadata:
  name: prom
spec:
  type: Prometheus
  connectionDetails:
    url: ${PROMETHEUS_URL}
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
            metricSourceRef: prom
            spec:
              query: GOOD
        total:
          metricSource:
            metricSourceRef: prom
            spec:
              query: TOTAL
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
            metricSourceRef: prom
            spec:
              query: sum(increase(BAD[{{window}}]))
        total:
          metricSource:
            metricSourceRef: prom
            spec:
              query: sum(increase(TOTAL[{{window}}]))
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.995
"""
OBJECTIVES = {"api-availability": (0.999, timedelta(days=30)), "api-errors-28d": (0.995, timedelta(days=28))}
WINDOWS = {"5m": 5, "30m": 30, "1h": 60, "2h": 120, "6h": 360, "1d": 1440, "3d": 4320}


class Cli:
    """Runs `slo-bot` in-process with its own environment; returns (exit code, stdout, stderr)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str):
        self.monkeypatch = monkeypatch
        self.capsys = capsys
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.delenv("SLO_BOT_CONFIG", raising=False)
        self.database_url = url

    def __call__(self, *argv: str, prometheus: str | None = None) -> tuple[int, str, str]:
        if prometheus is not None:
            self.monkeypatch.setenv("PROMETHEUS_URL", prometheus)
        self.capsys.readouterr()
        code = cli.main(list(argv))
        out, err = self.capsys.readouterr()
        return code, out, err

    def check(self, at: datetime, prometheus: str) -> dict[str, dict[str, Any]]:
        code, out, err = self("check", "--at", at.isoformat(), "--json", prometheus=prometheus)
        assert code == 0, err
        return {row["slo"]: row for row in json.loads(out)}


@pytest.fixture
def catalogue(tmp_path: Path, prom_history: History) -> Path:
    text = (
        CATALOGUE.replace("GOOD", prom_history.good_selector)
        .replace("TOTAL", prom_history.total_selector)
        .replace("BAD", prom_history.bad_selector)
    )
    path = tmp_path / "slos.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str) -> Cli:
    return Cli(monkeypatch, capsys, database_url)


def _assert_true(row: dict[str, Any], history: History, at: datetime) -> None:
    target, period = OBJECTIVES[row["slo"]]
    good, total = history.good(at - period, at), history.total(at - period, at)
    assert row["total"] == pytest.approx(total, rel=0.01)
    assert row["good"] == pytest.approx(good, rel=0.01)
    assert row["sli"] == pytest.approx(good / total, abs=1e-5)
    consumed = (1 - good / total) / (1 - target)
    assert row["budget"]["consumed"] == pytest.approx(consumed, rel=0.01)
    assert row["budget"]["remaining"] == pytest.approx(1 - consumed, rel=0.01, abs=0.01)
    assert set(row["burn_rates"]) == set(WINDOWS)
    for name, minutes in WINDOWS.items():
        start = at - minutes * MINUTE
        bad, count = history.bad(start, at), history.total(start, at)
        expected = (bad / count) / (1 - target)
        assert row["burn_rates"][name] == pytest.approx(expected, rel=0.01, abs=1e-3), name


def test_check_as_of_now_agrees_with_the_true_counts(
    run: Cli, catalogue: Path, prometheus: str, prom_history: History
) -> None:
    assert run("apply", str(catalogue), prometheus=prometheus)[0] == 0
    at = prom_history.end
    rows = run.check(at, prometheus)
    for row in rows.values():
        _assert_true(row, prom_history, at)
    # the ongoing incident (5 % errors for the last 20 minutes) burns a 99.9 % budget 50x over
    # 5 minutes; over the hour it depends on when the traffic peaks (the history ends at the time
    # the tests run), so the page is expected exactly when the true burns cross 14.4x
    availability = rows["api-availability"]
    burns = {
        w: (prom_history.bad(at - m * MINUTE, at) / prom_history.total(at - m * MINUTE, at)) / 0.001
        for w, m in (("5m", 5), ("1h", 60))
    }
    pages = burns["5m"] > 14.4 and burns["1h"] > 14.4
    assert burns["5m"] > 14.4
    assert availability["state"] == ("burning" if pages else "ok")
    assert ("page" in [a["severity"] for a in availability["alerts"]]) == pages
    assert availability["evaluated_at"] == at.isoformat().replace("+00:00", "Z")
    # the 99.5 % SLO of the same traffic burns a fifth as fast: never a page
    assert rows["api-errors-28d"]["alerts"] == []


@pytest.mark.parametrize(
    "moment",
    ["past_incident", "gap", "reset"],
)
def test_check_at_a_past_moment_agrees_with_the_true_counts(
    run: Cli, catalogue: Path, prometheus: str, prom_history: History, moment: str
) -> None:
    at = {
        "past_incident": prom_history.past_incident[1] + 10 * MINUTE,
        "gap": prom_history.gap[1] + 40 * MINUTE,
        "reset": prom_history.reset_at + 2 * MINUTE,
    }[moment]
    run("apply", str(catalogue), prometheus=prometheus)
    for row in run.check(at, prometheus).values():
        _assert_true(row, prom_history, at)


def test_incremental_checks_keep_agreeing_with_the_truth(
    run: Cli, catalogue: Path, prometheus: str, prom_history: History
) -> None:
    run("apply", str(catalogue), prometheus=prometheus)
    end = prom_history.end
    for at in (end - 3 * DAY, end - 2 * DAY - 7 * MINUTE, end - 6 * 60 * MINUTE, end - 3 * MINUTE, end):
        rows = run.check(at, prometheus)
    for row in rows.values():
        _assert_true(row, prom_history, end)


def test_budget_outlives_a_prometheus_with_shorter_retention(
    run: Cli,
    catalogue: Path,
    prometheus: str,
    prometheus_short: str,
    prom_history: History,
) -> None:
    run("apply", str(catalogue), prometheus=prometheus)
    end = prom_history.end
    code, _, err = run("check", "--json", prometheus=prometheus)  # stored while the long history was there
    assert code == 0, err
    rows = run.check(end, prometheus_short)  # this Prometheus keeps only the last 2 days
    for row in rows.values():
        _assert_true(row, prom_history, end)


def test_without_stored_history_short_retention_shows_only_what_it_has(
    run: Cli, catalogue: Path, prometheus_short: str, prom_history: History
) -> None:
    run("apply", str(catalogue), prometheus=prometheus_short)
    end = prom_history.end
    row = run.check(end, prometheus_short)["api-availability"]
    assert row["total"] < prom_history.total(end - 30 * DAY, end) / 10
    assert row["total"] == pytest.approx(prom_history.total(end - 2 * DAY, end), rel=0.02)


# --- a monitoring API that misbehaves -----------------------------------------------------------


class _Misbehaving(BaseHTTPRequestHandler):
    mode = "500"

    def do_POST(self) -> None:
        if self.mode == "slow":
            time.sleep(5)
        if self.mode == "html":
            body, kind, status = b"<html><body>502 Bad Gateway</body></html>", "text/html", 200
        elif self.mode == "garbage":
            body, kind, status = (
                b'{"status": "success", "data": {"resultType": "matrix"',
                "application/json",
                200,
            )
        else:
            body, kind, status = b"internal error", "text/plain", 500
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def broken_api(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Handler", (_Misbehaving,), {"mode": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize("broken_api", ["500", "html", "garbage", "slow"], indirect=True)
def test_an_unavailable_source_gives_a_clear_error_and_stores_nothing(
    run: Cli, catalogue: Path, broken_api: str, prom_history: History
) -> None:
    run("apply", str(catalogue), prometheus=broken_api)
    code, out, err = run("check", "--at", prom_history.end.isoformat(), "--json", prometheus=broken_api)
    assert code == cli.EXIT_UNAVAILABLE
    assert "Traceback" not in err
    assert broken_api in err and "api-availability" in err
    rows = {r["slo"]: r for r in json.loads(out)}
    assert rows["api-availability"]["state"] == "no_data"
    assert rows["api-availability"]["total"] == 0
    engine = db.make_engine(run.database_url)
    with Session(engine) as session:
        assert history.count_buckets(session=session) == 0  # nothing counted as good or bad
        assert all(r.covered_to is None for r in repo.list_slos(session=session))
    engine.dispose()


def test_a_closed_port_is_unavailable_and_a_bad_query_needs_a_human(
    run: Cli, tmp_path: Path, catalogue: Path, prometheus: str, prom_history: History
) -> None:
    run("apply", str(catalogue), prometheus="http://127.0.0.1:9")
    code, _, err = run("check", "--at", prom_history.end.isoformat(), prometheus="http://127.0.0.1:9")
    assert code == cli.EXIT_UNAVAILABLE and "127.0.0.1:9" in err

    broken = catalogue.read_text().replace(prom_history.good_selector, 'http_requests_total{job="api"')
    path = tmp_path / "broken.yaml"
    path.write_text(broken)
    code, out, err = run("apply", str(path), prometheus=prometheus)
    assert code == cli.EXIT_PROBLEM  # refused before anything is stored: the query does not parse
    assert f"{path}:" in out + err and "not valid PromQL" in out + err
    # `a++` parses as a regular expression offline but not in Prometheus (RE2): refused at check time
    refused = catalogue.read_text().replace(prom_history.good_selector, 'http_requests_total{code=~"2++"}')
    path.write_text(refused)
    assert run("apply", str(path), prometheus=prometheus)[0] == 0
    code, _, err = run("check", "--at", prom_history.end.isoformat(), prometheus=prometheus)
    assert code == cli.EXIT_PROBLEM
    assert "api-availability" in err and "parse error" in err

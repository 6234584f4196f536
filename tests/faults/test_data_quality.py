"""Fault: a partial answer (Thanos or Mimir `warnings`) was stored as if complete, and more good than
total events was clamped with only a line in the log.

Now both are kept but marked incomplete: `check` and `status` say so as a data-quality note, and the
next evaluation asks for the range again, which then gives the true numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from bot.domain import DataSource, MetricQuery
from bot.sources.base import PartialAnswer
from bot.sources.prometheus import PrometheusSource
from tests.faults import catalogues as faults
from tests.promharness import DAY, History

WARNING = "partial response: store 10.0.0.7:10901 unavailable"


class Querier:
    """A Thanos-like querier in front of a real Prometheus: while `partial`, answers carry a warning."""

    def __init__(self, upstream: str) -> None:
        self.partial = True
        self.asked: list[dict[str, str]] = []
        querier = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                querier.asked.append({k: v[0] for k, v in parse_qs(body.decode()).items()})
                answer = httpx.post(
                    upstream + self.path,
                    content=body,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    timeout=20,
                ).json()
                if querier.partial:
                    answer["warnings"] = [WARNING]
                out = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def querier(prometheus: str) -> Iterator[Querier]:
    q = Querier(prometheus)
    yield q
    q.server.shutdown()
    q.server.server_close()


def _cli(url: str, config: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": url, "SLO_BOT_CONFIG": str(config)}
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    return dict(row)


def test_a_partial_answer_is_said_and_asked_again(
    tmp_path: Path, database_url: str, querier: Querier, prom_history: History
) -> None:
    h = prom_history
    config = tmp_path / "slos.yaml"
    config.write_text(
        faults.catalogue(
            faults.datasource("thanos", querier.url, kind="Thanos"),
            faults.ratio_slo("api-availability", "thanos", h.good_selector, h.total_selector),
        )
    )
    first = _cli(database_url, config, "check", "--json")
    assert any(WARNING in w and "asked again" in w for w in first["warnings"])
    assert first["total"] > 0  # what came is used meanwhile
    shown = _cli(database_url, config, "status", "--json")
    assert any(WARNING in w for w in shown["warnings"])

    querier.partial = False
    querier.asked.clear()
    second = _cli(database_url, config, "check", "--json")
    assert "warnings" not in second
    # the whole 30 days were asked again, not only the last minutes
    spans = [
        int(a["end"]) - int(a["start"]) if "end" in a else int(a["query"].rsplit("[", 1)[1].rstrip("s]"))
        for a in querier.asked
        if not a["query"].startswith("resets(")
    ]
    assert sum(spans) >= 2 * 29 * 86400  # good and total
    end = datetime.fromisoformat(second["evaluated_at"].replace("Z", "+00:00")).replace(
        second=0, microsecond=0
    )
    assert second["total"] == pytest.approx(h.total(end - 30 * DAY, min(end, h.end)), rel=1e-3)


def test_more_good_than_total_is_said_not_silently_clamped(
    tmp_path: Path, database_url: str, prometheus: str, prom_history: History
) -> None:
    h = prom_history
    config = tmp_path / "slos.yaml"
    swapped = faults.catalogue(
        faults.datasource("thanos", prometheus, kind="Thanos"),
        faults.ratio_slo("swapped", "thanos", h.total_selector, h.good_selector),  # good and total swapped
    )
    config.write_text(swapped)
    row = _cli(database_url, config, "check", "--json")
    assert any("more good than total" in w for w in row["warnings"])
    status = _cli(database_url, config, "status", "--json")
    assert any("more good than total" in w for w in status["warnings"])


def test_prometheus_warnings_make_a_partial_answer_with_its_values() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        body = {
            "status": "success",
            "warnings": [WARNING],
            "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[1800000060, "3"]]}]},
        }
        return httpx.Response(200, json=body)

    datasource = DataSource("thanos", "Thanos", {"url": "http://thanos:9090"})
    with httpx.Client(transport=httpx.MockTransport(handle)) as client:
        source = PrometheusSource(datasource, client)
        start = datetime.fromtimestamp(1800000000, UTC)
        with pytest.raises(PartialAnswer) as caught:
            source.fetch_range(
                MetricQuery(datasource, "sum(rate(x[{{window}}]))"),
                counter=False,
                start=start,
                end=start + timedelta(minutes=1),
                step=timedelta(minutes=1),
            )
    assert WARNING in str(caught.value) and "'thanos'" in str(caught.value)
    assert caught.value.values == {start + timedelta(minutes=1): 3.0}

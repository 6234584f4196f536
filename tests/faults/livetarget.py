"""A live service for a real Prometheus to scrape: counters that grow at a known rate, with an outage
switched on at will, continuing an hour and more of backfilled history of the same series.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.promharness import PrometheusServer

RATE = 100.0  # requests per second, all good until the outage, all failing during it


@dataclass
class LiveService:
    """`http_requests_total{code=...}` as a function of time: exact true counts at any instant."""

    born: float  # unix time the counters start from 0
    outage_from: float | None = None
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    def bad(self, t: float) -> float:
        return 0.0 if self.outage_from is None or t <= self.outage_from else RATE * (t - self.outage_from)

    def total(self, t: float) -> float:
        return RATE * (t - self.born)

    def exposition(self, t: float) -> str:
        bad = self.bad(t)
        return (
            "# TYPE http_requests_total counter\n"
            f'http_requests_total{{code="200"}} {self.total(t) - bad:.3f}\n'
            f'http_requests_total{{code="500"}} {bad:.3f}\n'
        )

    def serve(self) -> str:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = service.exposition(time.time()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def backfill(self, directory: Path, until: float) -> Path:
        """The service's history once a minute from `born` to `until`, as TSDB blocks in `directory`."""
        lines = ["# HELP http_requests Requests served, by status code.", "# TYPE http_requests counter"]
        first = int(self.born // 60 + 1) * 60
        stamps = range(first, int(until), 60)
        for code in ("200", "500"):
            for t in stamps:
                bad = self.bad(t)
                value = bad if code == "500" else self.total(t) - bad
                lines.append(f'http_requests_total{{job="api",code="{code}"}} {value:.3f} {t}')
        lines.append("# EOF")
        source = directory.with_suffix(".om")
        source.write_text("\n".join(lines) + "\n")
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(directory)],
            check=True,
            capture_output=True,
        )
        return directory


def scraping_prometheus(data: Path, target: str, interval_s: int) -> PrometheusServer:
    """A Prometheus scraping `target` every `interval_s` seconds into the series of the backfill."""
    config = f"""
global:
  scrape_interval: {interval_s}s
scrape_configs:
  - job_name: api
    honor_labels: true
    scrape_interval: {interval_s}s
    scrape_timeout: 10s
    static_configs: [{{targets: ["{target}"]}}]
    metric_relabel_configs: [{{action: labeldrop, regex: instance}}]
"""
    return PrometheusServer(data, config=config)

"""A local fake of Datadog's metrics query API (`GET /api/v1/query`) serving a `History`'s true counts.

A threaded HTTP server on 127.0.0.1 (random port) that answers as Datadog's API reference and its
recorded answers show: `series[].pointlist` of `[milliseconds, value]` pairs, each stamped with the
start of its rollup bucket (aligned to Unix time, the first at or after `from`, the last holding
`to`), `interval` in seconds, at most 1,500 points (a finer rollup is coarsened), `{"errors": [...]}`
with 400 for a query it cannot parse and 403 for a wrong key, and 429 with `X-RateLimit-*` headers.

Queries it knows: `sum:http.requests{SCOPE}.as_count().rollup(sum, N)` where SCOPE is `code:200`
(good), `code:500` (bad) or `service:api` (total).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.promharness import MINUTE, History

API_KEY = "dd-api-key-0123456789abcdef"
APP_KEY = "dd-app-key-fedcba9876543210fedcba98"
GOOD, BAD, TOTAL = (
    "sum:http.requests{code:200}",
    "sum:http.requests{code:500}",
    "sum:http.requests{service:api}",
)
MAX_POINTS = 1500
_QUERY = re.compile(
    r"^sum:http\.requests\{(?P<scope>[^{}]*)\}\.as_count\(\)\.rollup\(sum,\s*(?P<step>\d+)\)$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Failure:
    """The next `times` requests are answered this way instead."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    delay: float = 0.0


@dataclass(frozen=True)
class Request:
    query: str
    start: int
    end: int
    api_key: str | None
    status: int


class FakeDatadog:
    """`with FakeDatadog(history) as dd:` ... `dd.url`, `dd.requests`, `dd.fail(...)`."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.requests: list[Request] = []
        self.failures: list[Failure] = []
        self.remaining: int | None = None  # X-RateLimit-Remaining on successful answers
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeDatadog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def fail(
        self,
        status: int,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        raw = (
            body
            if isinstance(body, bytes)
            else json.dumps(body or {"errors": ["Internal Server Error"]}).encode()
        )
        with self._lock:
            self.failures.append(Failure(status, raw, headers or {}, times, delay))

    def rate_limit(self, reset: int, *, times: int = 1) -> None:
        """Answer 429 as Datadog does when the organisation's query limit is spent."""
        self.fail(
            429,
            {"errors": ["Rate limit of 1600 requests in 3600 seconds reached. Please try again later."]},
            headers={
                "X-RateLimit-Limit": "1600",
                "X-RateLimit-Period": "3600",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
                "X-RateLimit-Name": "query",
            },
            times=times,
        )

    def answer(self, params: dict[str, str], api_key: str | None, app_key: str | None) -> tuple[int, Any]:
        if api_key != API_KEY or app_key != APP_KEY:
            return 403, {"errors": ["Forbidden"]}
        try:
            start, end, query = int(params["from"]), int(params["to"]), params["query"]
        except (KeyError, ValueError):
            return 400, {"errors": ["Invalid arguments: from, to and query are required"]}
        match = _QUERY.match(query)
        scope = match["scope"] if match else ""
        if match is None or scope not in ("code:200", "code:500", "service:api"):
            return 400, {
                "errors": [f"Error parsing query: unable to parse {query}: Rule 'scope_expr' didn't match"]
            }
        step = int(match["step"])
        if (end - start) / step > MAX_POINTS:  # Datadog coarsens a rollup that would give too many points
            step = math.ceil((end - start) / MAX_POINTS / 60) * 60
        count = {
            "code:200": self.history.good,
            "code:500": self.history.bad,
            "service:api": self.history.total,
        }[scope]
        points = []
        for bucket in range(-(-start // step) * step, end + 1, step):
            a = max(self.history.start, _EPOCH + timedelta(seconds=bucket))
            b = min(self.history.end, _EPOCH + timedelta(seconds=bucket + step))
            a = a + (-(a - _EPOCH) % MINUTE)  # (the history counts whole minutes)
            if a < b and self.history.known_minutes(a, b):
                points.append([bucket * 1000.0, float(count(a, b))])
        series = []
        if points:
            series.append(
                {
                    "metric": "http.requests",
                    "display_name": "http.requests",
                    "expression": query.rsplit(".rollup", 1)[0],
                    "scope": scope,
                    "tag_set": [],
                    "aggr": "sum",
                    "query_index": 0,
                    "interval": step,
                    "start": int(points[0][0]),
                    "end": int(points[-1][0]) + step * 1000 - 1000,
                    "length": len(points),
                    "pointlist": points,
                    "unit": None,
                    "attributes": {},
                }
            )
        return 200, {
            "status": "ok",
            "resp_version": 1,
            "res_type": "time_series",
            "query": query,
            "message": "",
            "from_date": start * 1000,
            "to_date": end * 1000,
            "group_by": [],
            "series": series,
            "times": [],
            "values": [],
        }


def _handler(fake: FakeDatadog) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            api_key = self.headers.get("DD-API-KEY")
            with fake._lock:
                failure = fake.failures[0] if fake.failures else None
                if failure is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        fake.failures.pop(0)
            headers: dict[str, str] = {}
            if parts.path != "/api/v1/query":
                status, raw = 404, json.dumps({"errors": ["Not found"]}).encode()
            elif failure is not None:
                time.sleep(failure.delay)
                status, raw, headers = failure.status, failure.body, failure.headers
            else:
                status, body = fake.answer(params, api_key, self.headers.get("DD-APPLICATION-KEY"))
                raw = json.dumps(body).encode()
                if fake.remaining is not None:
                    headers = {"X-RateLimit-Remaining": str(fake.remaining), "X-RateLimit-Reset": "7"}
            with fake._lock:
                fake.requests.append(
                    Request(
                        params.get("query", ""),
                        int(params.get("from") or 0),
                        int(params.get("to") or 0),
                        api_key,
                        status,
                    )
                )
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, *args: object) -> None:
            pass

    return Handler

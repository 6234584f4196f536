"""PrometheusSource against a real Prometheus serving backfilled history with known true counts."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from bot.domain import DataSource, MetricQuery
from bot.sources.base import BadQuery, SourceUnavailable
from bot.sources.prometheus import PrometheusSource, client_options
from tests.promharness import DAY, MINUTE, History

HOUR = timedelta(hours=1)
MakeSource = Callable[..., PrometheusSource]


@pytest.fixture
def make_source() -> Iterator[MakeSource]:
    clients: list[httpx.Client] = []

    def make(url: str, requests: list[httpx.Request] | None = None, **connection: Any) -> PrometheusSource:
        connection["url"] = url
        hooks = {"request": [requests.append]} if requests is not None else {}
        client = httpx.Client(event_hooks=hooks, **client_options(connection))
        clients.append(client)
        return PrometheusSource(DataSource("prom-test", "Prometheus", connection), client)

    yield make
    for client in clients:
        client.close()


def fetch(
    source: PrometheusSource,
    query: str,
    start: datetime,
    end: datetime,
    step: timedelta = MINUTE,
    *,
    counter: bool = True,
) -> dict[datetime, float]:
    metric = MetricQuery(source=source.datasource, query=query)
    return source.fetch_range(metric, counter=counter, start=start, end=end, step=step)


def floor(t: datetime, step: timedelta) -> datetime:
    return t - (t - t.replace(hour=0, minute=0)) % step


def quiet_day(history: History) -> tuple[datetime, datetime]:
    """A whole day with no incident, gap or reset in it."""
    return history.end - 7 * DAY, history.end - 6 * DAY


def test_per_minute_counts_are_the_true_counts(
    prom_history: History, make_source: MakeSource, prometheus: str
) -> None:
    source = make_source(prometheus)
    a, b = quiet_day(prom_history)
    good = fetch(source, prom_history.good_selector, a, b)
    total = fetch(source, prom_history.total_selector, a, b)
    assert len(good) == len(total) == 1440
    assert sum(good.values()) == pytest.approx(prom_history.good(a, b), rel=0.01)
    assert sum(total.values()) == pytest.approx(prom_history.total(a, b), rel=0.01)
    # With samples on the minute, increase() over 1m is exact in Prometheus 2.42.
    for minute in prom_history.minute_starts(a, b):
        assert good[minute + MINUTE] == prom_history.good(minute, minute + MINUTE)
        assert total[minute + MINUTE] == prom_history.total(minute, minute + MINUTE)


@pytest.mark.parametrize("step", [MINUTE, 5 * MINUTE, HOUR], ids=["1m", "5m", "1h"])
def test_buckets_over_an_incident_day_are_the_true_counts(
    prom_history: History, make_source: MakeSource, prometheus: str, step: timedelta
) -> None:
    source = make_source(prometheus)
    a = floor(prom_history.past_incident[0] - 18 * HOUR, HOUR)  # clear of gap and reset
    b = a + DAY
    bad = fetch(source, prom_history.bad_selector, a, b, step)
    total = fetch(source, prom_history.total_selector, a, b, step)
    assert len(total) == DAY / step
    for t, value in total.items():
        assert value == prom_history.total(t - step, t)
        assert bad[t] == prom_history.bad(t - step, t)
    incident = prom_history.bad(*prom_history.past_incident)
    assert incident > 0.15 * prom_history.total(*prom_history.past_incident)
    assert sum(bad.values()) == prom_history.bad(a, b) > incident


def test_bare_counter_and_window_forms_agree(
    prom_history: History, make_source: MakeSource, prometheus: str
) -> None:
    source = make_source(prometheus)
    a, b = prom_history.end - DAY, prom_history.end
    step = 5 * MINUTE
    bare = fetch(source, prom_history.total_selector, a, b, step)
    window = fetch(source, f"sum(increase({prom_history.total_selector}[{{{{window}}}}]))", a, b, step)
    sloth = fetch(source, f"sum(increase({prom_history.total_selector}[{{{{.window}}}}]))", a, b, step)
    assert bare == window == sloth
    assert len(bare) == DAY / step


@pytest.mark.parametrize("step", [MINUTE, HOUR], ids=["1m", "1h"])
def test_counter_reset_is_neither_negative_nor_huge(
    prom_history: History, make_source: MakeSource, prometheus: str, step: timedelta
) -> None:
    source = make_source(prometheus)
    a = floor(prom_history.reset_at - 3 * HOUR, HOUR)
    b = a + 6 * HOUR
    for selector in (prom_history.good_selector, prom_history.bad_selector):
        values = fetch(source, selector, a, b, step)
        assert len(values) == (b - a) / step
        truth = prom_history.good if selector == prom_history.good_selector else prom_history.bad
        for t, value in values.items():
            assert 0 <= value == truth(t - step, t)


def test_gap_minutes_are_no_data(prom_history: History, make_source: MakeSource, prometheus: str) -> None:
    source = make_source(prometheus)
    a, b = prom_history.gap[0] - HOUR, prom_history.gap[1] + HOUR
    values = fetch(source, prom_history.total_selector, a, b)
    expected_absent = {m + MINUTE for m in prom_history.gap_minutes}
    assert len(expected_absent) == 31  # 30 missing samples leave 31 minutes unmeasurable
    assert set(values) == {m + MINUTE for m in prom_history.minute_starts(a, b)} - expected_absent
    assert sum(values.values()) == prom_history.total(a, b)


@pytest.mark.parametrize("step", [MINUTE, 5 * MINUTE, HOUR], ids=["1m", "5m", "1h"])
def test_steps_cut_by_the_gap_are_the_true_counts(
    prom_history_fixed: History, make_source: MakeSource, prometheus_fixed: str, step: timedelta
) -> None:
    """The gap (15:48 to 16:18) ends inside a 5-minute step and crosses an hour: the steps it cuts
    hold the events of their measurable minutes, at every resolution."""
    h = prom_history_fixed
    assert h.gap[1].minute % 5 and h.gap[0].hour != h.gap[1].hour
    source = make_source(prometheus_fixed)
    a, b = floor(h.gap[0], HOUR) - 2 * HOUR, floor(h.gap[1], HOUR) + 2 * HOUR
    for selector, truth in ((h.total_selector, h.total), (h.bad_selector, h.bad)):
        values = fetch(source, selector, a, b, step)
        expected = {  # a step with no measurable minute is no data
            t + step: truth(t, t + step)
            for t in (a + i * step for i in range((b - a) // step))
            if h.known_minutes(t, t + step)
        }
        assert values == expected
        assert sum(values.values()) == truth(a, b)


def test_30_days_at_1m_are_split_and_complete(
    prom_history: History, make_source: MakeSource, prometheus: str
) -> None:
    requests: list[httpx.Request] = []
    source = make_source(prometheus, requests)
    a, b = prom_history.end - 30 * DAY, prom_history.end
    values = fetch(source, prom_history.total_selector, a, b)
    # raw samples, each request sized to about RAW_POINTS_PER_REQUEST after the first
    assert 2 <= len(requests) <= 4
    assert len(values) == 30 * 1440 - len(prom_history.gap_minutes)
    assert sum(values.values()) == prom_history.total(a, b)


def test_short_retention_serves_only_the_last_two_days(
    prom_history: History, make_source: MakeSource, prometheus_short: str
) -> None:
    source = make_source(prometheus_short)
    a, b = prom_history.end - 30 * DAY, prom_history.end
    values = fetch(source, prom_history.total_selector, a, b)
    kept = b - 2 * DAY  # the history given to this server starts here, inside the gap
    assert min(values) > kept
    minutes = prom_history.minute_starts(kept, b)
    assert set(values) == {m + MINUTE for m in minutes if m not in prom_history.gap_minutes}
    assert sum(values.values()) == prom_history.total(kept, b)


@pytest.mark.parametrize(
    ("query", "counter", "words"),
    [
        ("sum(rate(http_requests_total[{{window}}])", True, "unclosed left parenthesis"),
        ("sum(rate(http_requests_total[5m]))", True, "ranges only allowed for vector selectors"),
        ('increase(http_requests_total{job="api"}[{{window}}])', True, "returns 2 series"),
        ('http_requests_total{job="api"}', False, "returns 2 series"),
    ],
)
def test_bad_queries(
    prom_history: History,
    make_source: MakeSource,
    prometheus: str,
    query: str,
    counter: bool,
    words: str,
) -> None:
    source = make_source(prometheus)
    with pytest.raises(BadQuery, match="prom-test") as caught:
        fetch(source, query, prom_history.end - HOUR, prom_history.end, counter=counter)
    assert words in str(caught.value)


class _Answer(BaseHTTPRequestHandler):
    status = 500
    content_type = "text/plain"
    body = b""
    delay = 0.0

    def do_POST(self) -> None:
        time.sleep(self.delay)
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client gave up on purpose (timeout test)


@pytest.fixture
def http_server() -> Iterator[Callable[..., str]]:
    """Start a local HTTP server answering every POST with the given status, body and delay."""
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(status: int, body: str, content_type: str = "text/plain", delay: float = 0.0) -> str:
        attributes = {
            "status": status,
            "content_type": content_type,
            "body": body.encode(),
            "delay": delay,
        }
        handler = type("Handler", (_Answer,), attributes)
        server = _QuietServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ((500, "internal error"), "HTTP 500"),
        ((502, "<html><body>Bad Gateway</body></html>", "text/html"), "HTTP 502"),
        (
            (200, "<html><body>Sign in</body></html>", "text/html"),
            "text/html body, not Prometheus JSON",
        ),
        ((200, "OK"), "text/plain body"),
        ((200, "", "text/plain", 1.0), "no answer within the timeout"),
    ],
)
def test_broken_servers_are_unavailable(
    make_source: MakeSource, http_server: Callable[..., str], answer: tuple[Any, ...], words: str
) -> None:
    url = http_server(*answer)
    source = make_source(url, timeout=0.3)
    now = datetime.now(UTC)
    with pytest.raises(SourceUnavailable) as caught:
        fetch(source, "up", now - HOUR, now)
    message = str(caught.value)
    assert words in message
    assert url in message
    assert "'prom-test'" in message


def test_closed_port_is_unavailable(make_source: MakeSource) -> None:
    url = _closed_port()
    now = datetime.now(UTC)
    with pytest.raises(SourceUnavailable, match="cannot reach it") as caught:
        fetch(make_source(url), "up", now - HOUR, now)
    assert url in str(caught.value)

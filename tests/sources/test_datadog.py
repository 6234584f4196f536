"""DatadogSource against a local fake Datadog API serving a history with known true counts: the counts
per step, the queries sent, and every way Datadog fails (403, 400, 429, 5xx, garbage, timeout)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.buckets import floor_time
from bot.domain import DataSource, MetricQuery
from bot.sources.base import BadQuery, SourceUnavailable
from bot.sources.datadog import (
    MAX_RATE_LIMIT_WAIT,
    DatadogSource,
    api_url,
    client_options,
    connection_problems,
    query_problem,
    render_query,
)
from tests.fakedatadog import API_KEY, APP_KEY, BAD, GOOD, TOTAL, FakeDatadog
from tests.promharness import DAY, HOUR, MINUTE, History

MakeSource = Callable[..., DatadogSource]


@pytest.fixture
def datadog(prom_history: History) -> Iterator[FakeDatadog]:
    with FakeDatadog(prom_history) as fake:
        yield fake


class Clock:
    """A monotonic clock that `sleep` moves forward: waits are recorded, not slept."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def make_source(datadog: FakeDatadog) -> Iterator[MakeSource]:
    clients: list[httpx.Client] = []

    def make(clock: Clock | None = None, **connection: Any) -> DatadogSource:
        connection = {"url": datadog.url, "apiKey": API_KEY, "applicationKey": APP_KEY, **connection}
        client = httpx.Client(**client_options(connection))
        clients.append(client)
        clock = clock or Clock()
        return DatadogSource(DataSource("dd", "Datadog", connection), client, clock=clock, sleep=clock.sleep)

    yield make
    for client in clients:
        client.close()


def _fetch(
    source: DatadogSource, query: str, start: datetime, end: datetime, step: timedelta
) -> dict[datetime, float]:
    return source.fetch_range(
        MetricQuery(source.datasource, query), counter=True, start=start, end=end, step=step
    )


@pytest.mark.parametrize(
    ("span", "step"),
    [(6 * HOUR, MINUTE), (3 * DAY, 5 * MINUTE), (30 * DAY, HOUR)],
    ids=["6h at 1m", "3d at 5m", "30d at 1h"],
)
def test_counts_per_step_are_the_true_counts(
    make_source: MakeSource, datadog: FakeDatadog, prom_history: History, span: timedelta, step: timedelta
) -> None:
    source = make_source()
    end = floor_time(prom_history.end, step)
    start = end - span
    for query, truth in ((GOOD, prom_history.good), (BAD, prom_history.bad), (TOTAL, prom_history.total)):
        values = _fetch(source, query, start, end, step)
        expected = {
            start + (i + 1) * step: float(truth(start + i * step, start + (i + 1) * step))
            for i in range(int(span / step))
            if prom_history.known_minutes(start + i * step, start + (i + 1) * step)
        }
        assert values == expected
    # the sums over the range are the history's: 30 days at 99.97 % good, say
    total = sum(_fetch(source, TOTAL, start, end, step).values())
    assert total == prom_history.total(start, end) > 0
    # every request asks whole buckets, at most a day of minutes each, with the rollup of the step
    seconds = int(step.total_seconds())
    for request in datadog.requests:
        assert request.query.endswith(f".as_count().rollup(sum, {seconds})")
        assert request.start % seconds == 0 and (request.end + 1) % seconds == 0
        assert (request.end + 1 - request.start) // seconds <= 1440
    assert len(datadog.requests) == 4 * -(-int(span / step) // 1440)


def test_the_gap_is_no_data_never_zero(make_source: MakeSource, prom_history: History) -> None:
    first, last = prom_history.gap
    values = _fetch(make_source(), TOTAL, first - HOUR, last + HOUR, MINUTE)
    assert not {t - MINUTE for t in values} & prom_history.gap_minutes  # no minute of the gap has a value
    assert len(values) == prom_history.known_minutes(first - HOUR, last + HOUR) >= 2 * 60 - 1
    assert all(v > 0 for v in values.values())


def test_queries_sent() -> None:
    assert render_query(GOOD, counter=True, step=MINUTE) == f"{GOOD}.as_count().rollup(sum, 60)"
    assert (
        render_query(f"{GOOD}.as_count()", counter=True, step=HOUR) == f"{GOOD}.as_count().rollup(sum, 3600)"
    )
    assert render_query("avg:latency.p99{service:api}", counter=False, step=5 * MINUTE) == (
        "avg:latency.p99{service:api}.rollup(avg, 300)"
    )
    formula = "sum:a{x}.as_count().rollup(sum, {{window}}) - sum:b{x}.as_count().rollup(sum, {{ window }})"
    assert render_query(formula, counter=True, step=MINUTE) == (
        "sum:a{x}.as_count().rollup(sum, 60) - sum:b{x}.as_count().rollup(sum, 60)"
    )


@pytest.mark.parametrize(
    ("query", "counter", "words"),
    [
        ("sum:http.requests{*} by {route}.as_count()", True, "by {...}"),
        ("avg:http.requests{*}.as_count()", True, "start it with sum:"),
        ("http.requests{*}", True, "start it with sum:"),
        ("sum:http.requests{*}.as_rate()", True, "not .as_rate()"),
        ("sum:http.requests{*}.as_count().rollup(sum, 60)", True, "adds .rollup"),
        ("sum:a{*}.as_count() / sum:b{*}.as_count()", True, "{{window}}"),
        ("sum(rate(http_requests_total[5m]))", True, "one metric query"),
    ],
)
def test_queries_slo_bot_cannot_send_are_refused(query: str, counter: bool, words: str) -> None:
    problem = query_problem(query, counter=counter)
    assert problem is not None and words in problem


@pytest.mark.parametrize(
    "query",
    [
        "sum:http.requests{service:api,env:prod}.as_count()",
        "sum:trace.http.request.hits{service:web AND NOT resource_name:health}",
        "sum:a{x}.as_count().rollup(sum, {{window}}) / sum:b{x}.as_count().rollup(sum, {{window}})",
    ],
)
def test_queries_slo_bot_sends(query: str) -> None:
    assert query_problem(query, counter=True) is None
    assert query_problem("avg:trace.http.request.duration{service:web}", counter=False) is None


@pytest.mark.parametrize(
    ("connection", "words"),
    [
        ({"applicationKey": "k" * 40}, "apiKey: missing"),
        ({"apiKey": "k" * 32}, "applicationKey: missing"),
        ({"apiKey": "k", "applicationKey": "k", "site": "https://datadoghq.eu"}, "site: "),
        ({"apiKey": "k", "applicationKey": "k", "site": "datadoghq.eu", "url": "http://x"}, "not both"),
        ({"apiKey": "k", "applicationKey": "k", "url": "http://u:p@dd.test"}, "url: no user info"),
        ({"apiKey": "k", "applicationKey": "k", "timeout": "soon"}, "timeout: "),
        ({"apiKey": "k", "applicationKey": "k", "sitee": "datadoghq.eu"}, "sitee: unknown field"),
    ],
)
def test_connection_problems(connection: dict[str, Any], words: str) -> None:
    assert any(words in p for p in connection_problems(connection)), connection_problems(connection)


def test_the_site_gives_the_api_url() -> None:
    keys = {"apiKey": "k", "applicationKey": "k"}
    assert api_url(keys) == "https://api.datadoghq.com"
    assert api_url({**keys, "site": "datadoghq.eu"}) == "https://api.datadoghq.eu"
    assert api_url({**keys, "site": "app.datadoghq.eu"}) == "https://api.datadoghq.eu"
    assert api_url({**keys, "site": "us5.datadoghq.com"}) == "https://api.us5.datadoghq.com"
    options = client_options({**keys, "site": "ddog-gov.com", "timeout": "5s"})
    assert options["base_url"] == "https://api.ddog-gov.com"
    assert options["headers"]["DD-API-KEY"] == "k" and options["timeout"].read == 5


# --- failures ------------------------------------------------------------------------------------


def test_a_refused_key_names_the_datasource_and_never_the_key(
    make_source: MakeSource, prom_history: History
) -> None:
    source = make_source(apiKey="dd-wrong-key-0000000000000000")
    with pytest.raises(BadQuery) as caught:
        _fetch(source, GOOD, prom_history.end - HOUR, prom_history.end, MINUTE)
    text = str(caught.value)
    assert "'dd'" in text and "refused the API key or the application key" in text and "HTTP 403" in text
    assert "dd-wrong-key" not in text and APP_KEY not in text


def test_a_query_datadog_cannot_parse_is_a_bad_query(make_source: MakeSource, prom_history: History) -> None:
    with pytest.raises(BadQuery) as caught:
        _fetch(
            make_source(), "sum:http.requests{code:404}", prom_history.end - HOUR, prom_history.end, MINUTE
        )
    assert "Error parsing query" in str(caught.value) and "sum:http.requests{code:404}" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (500, {"errors": ["Internal Server Error"]}, "HTTP 500"),
        (503, b"<html>upstream unavailable</html>", "HTTP 503"),
        (200, b"<html><body>Sign in</body></html>", "not Datadog JSON"),
        (200, b'{"status": "ok", "series": [{"pointlist": [[1, 2, 3]]}]}', "unreadable point"),
        (200, b'{"status": "ok"}', "no `series` list"),
        (200, b'{"status": "ok", "series": [{"pointlist": [[61000, 5]]}]}', "off the 60 s rollup grid"),
        (200, b'{"status": "ok", "series": [{"interval": 300, "pointlist": []}]}', "not the 60 s asked"),
    ],
)
def test_outages_and_garbage_are_unavailable(
    make_source: MakeSource, datadog: FakeDatadog, prom_history: History, status: int, body: Any, words: str
) -> None:
    datadog.fail(status, body)
    with pytest.raises(SourceUnavailable) as caught:
        _fetch(make_source(), GOOD, prom_history.end - HOUR, prom_history.end, MINUTE)
    assert words in str(caught.value) and "will retry next tick" in str(caught.value)
    assert API_KEY not in str(caught.value)


def test_a_timeout_is_unavailable(
    make_source: MakeSource, datadog: FakeDatadog, prom_history: History
) -> None:
    datadog.fail(200, {"status": "ok", "series": []}, delay=1.5)
    with pytest.raises(SourceUnavailable, match="no answer within the timeout"):
        _fetch(make_source(timeout=0.5), GOOD, prom_history.end - HOUR, prom_history.end, MINUTE)


def test_a_short_rate_limit_is_waited_for_once(
    make_source: MakeSource, datadog: FakeDatadog, prom_history: History
) -> None:
    clock = Clock()
    source = make_source(clock)
    datadog.rate_limit(reset=4)
    values = _fetch(source, GOOD, prom_history.end - HOUR, prom_history.end, MINUTE)
    assert sum(values.values()) == prom_history.good(prom_history.end - HOUR, prom_history.end)
    assert clock.slept == [4.0]
    assert [r.status for r in datadog.requests] == [429, 200]


def test_a_rate_limit_still_there_after_the_wait_fails_the_tick(
    make_source: MakeSource, datadog: FakeDatadog, prom_history: History
) -> None:
    clock = Clock()
    datadog.rate_limit(reset=4, times=2)
    with pytest.raises(SourceUnavailable, match=r"rate limited by Datadog \(HTTP 429"):
        _fetch(make_source(clock), GOOD, prom_history.end - HOUR, prom_history.end, MINUTE)
    assert clock.slept == [4.0] and [r.status for r in datadog.requests] == [429, 429]


def test_a_long_rate_limit_fails_the_tick_and_sends_nothing_until_it_resets(
    make_source: MakeSource, datadog: FakeDatadog, prom_history: History
) -> None:
    clock = Clock()
    source = make_source(clock)
    datadog.rate_limit(reset=45)
    window = (prom_history.end - HOUR, prom_history.end, MINUTE)
    with pytest.raises(SourceUnavailable) as caught:
        _fetch(source, GOOD, *window)
    assert "rate limited by Datadog" in str(caught.value) and "resets in 45 s" in str(caught.value)
    assert clock.slept == [] and len(datadog.requests) == 1
    # the other SLOs of this DataSource in the same tick: refused here, never sent
    for query in (TOTAL, BAD):
        with pytest.raises(SourceUnavailable, match="rate limited"):
            _fetch(source, query, *window)
    assert len(datadog.requests) == 1
    clock.now += 45 - MAX_RATE_LIMIT_WAIT / 2  # close to the reset: waited for, then asked
    assert _fetch(source, TOTAL, *window)
    assert clock.slept == [MAX_RATE_LIMIT_WAIT / 2] and len(datadog.requests) == 2


def test_the_last_request_of_a_period_makes_the_next_wait(
    make_source: MakeSource, datadog: FakeDatadog, prom_history: History
) -> None:
    """`X-RateLimit-Remaining: 0` on a good answer: the next request waits for the reset instead of
    drawing a 429."""
    clock = Clock()
    source = make_source(clock)
    datadog.remaining = 0
    window = (prom_history.end - HOUR, prom_history.end, MINUTE)
    _fetch(source, GOOD, *window)
    datadog.remaining = 100
    _fetch(source, TOTAL, *window)
    assert clock.slept == [7.0]
    assert [r.status for r in datadog.requests] == [200, 200]


def test_several_series_are_refused(
    make_source: MakeSource, datadog: FakeDatadog, prom_history: History
) -> None:
    point = [[prom_history.end.timestamp() * 1000 - 60_000, 1.0]]
    series = [{"scope": f"route:/{n}", "pointlist": point} for n in ("a", "b")]
    datadog.fail(200, {"status": "ok", "series": series})
    with pytest.raises(BadQuery, match="returns 2 series"):
        _fetch(make_source(), GOOD, prom_history.end - HOUR, prom_history.end, MINUTE)


def test_null_points_are_no_data(
    make_source: MakeSource, datadog: FakeDatadog, prom_history: History
) -> None:
    end = int(prom_history.end.timestamp())
    points = [[(end - 180) * 1000, 3.0], [(end - 120) * 1000, None], [(end - 60) * 1000, 0.0]]
    datadog.fail(200, {"status": "ok", "series": [{"interval": 60, "pointlist": points}]})
    values = _fetch(make_source(), GOOD, prom_history.end - 3 * MINUTE, prom_history.end, MINUTE)
    assert values == {prom_history.end - 2 * MINUTE: 3.0, prom_history.end: 0.0}

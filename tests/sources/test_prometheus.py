"""PrometheusSource over httpx.MockTransport: query forms, request parameters, splitting, errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from bot.domain import DataSource, MetricQuery
from bot.sources.base import BadQuery, SourceUnavailable
from bot.sources.prometheus import (
    MAX_POINTS,
    PrometheusSource,
    client_options,
    connection_problems,
    render_query,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
URL = "http://prometheus.example:9090"
SELECTOR = 'http_requests_total{job="api",code="200"}'
# A query holding {{window}} goes through query_range; a bare SELECTOR is read as raw samples.
TEMPLATED = 'sum(increase(http_requests_total{job="api",code="200"}[{{window}}]))'

# Answers recorded from Prometheus 2.42 (`/api/v1/query_range`).
RECORDED_BAD_DATA = json.dumps(
    {
        "status": "error",
        "errorType": "bad_data",
        "error": "1:45: parse error: unclosed left parenthesis",
    }
)
RECORDED_RANGES_ONLY = json.dumps(
    {
        "status": "error",
        "errorType": "bad_data",
        "error": "1:30: parse error: ranges only allowed for vector selectors",
    }
)
RECORDED_EXECUTION = json.dumps(
    {
        "status": "error",
        "errorType": "execution",
        "error": "found duplicate series for the match group {} on the right hand-side of the "
        'operation: [{__name__="http_requests_total", code="500", job="api"}, '
        '{__name__="http_requests_total", code="200", job="api"}];many-to-many matching not '
        "allowed: matching labels must be unique on one side",
    }
)
RECORDED_TWO_SERIES = json.dumps(
    {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {"code": "200", "job": "api"},
                    "values": [[1714564860, "784"], [1714564920, "569"]],
                },
                {
                    "metric": {"code": "500", "job": "api"},
                    "values": [[1714564860, "44"], [1714564920, "24"]],
                },
            ],
        },
    }
)
HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

Handler = Callable[[httpx.Request], httpx.Response]


def matrix(values: list[tuple[float, str]], metric: dict[str, str] | None = None) -> httpx.Response:
    series = {"metric": metric or {}, "values": [[t, v] for t, v in values]}
    return httpx.Response(
        200, json={"status": "success", "data": {"resultType": "matrix", "result": [series]}}
    )


def params(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def grid_handler(requests: list[dict[str, str]]) -> Handler:
    """Answers every query with value 1 at each step of the asked range, and records the params."""

    def handle(request: httpx.Request) -> httpx.Response:
        p = params(request)
        requests.append(p)
        start, end, step = int(p["start"]), int(p["end"]), int(p["step"])
        return matrix([(t, "1") for t in range(start, end + 1, step)])

    return handle


@pytest.fixture
def make_source() -> Iterator[Callable[..., PrometheusSource]]:
    clients: list[httpx.Client] = []

    def make(handler: Handler, **connection: Any) -> PrometheusSource:
        connection.setdefault("url", URL)
        datasource = DataSource(name="prom-main", type="Prometheus", connection=connection)
        client = httpx.Client(transport=httpx.MockTransport(handler), **client_options(connection))
        clients.append(client)
        return PrometheusSource(datasource, client)

    yield make
    for client in clients:
        client.close()


def fetch(
    source: PrometheusSource,
    query: str = TEMPLATED,
    *,
    counter: bool = True,
    start: datetime = T0,
    end: datetime = T0 + 5 * MINUTE,
    step: timedelta = MINUTE,
) -> dict[datetime, float]:
    return source.fetch_range(
        MetricQuery(source=source.datasource, query=query),
        counter=counter,
        start=start,
        end=end,
        step=step,
    )


@pytest.mark.parametrize(
    ("query", "counter", "step", "sent"),
    [
        (TEMPLATED, True, MINUTE, f"sum(increase({SELECTOR}[1m]))"),
        (TEMPLATED, True, timedelta(hours=1), f"sum(increase({SELECTOR}[1h]))"),
        (TEMPLATED, True, timedelta(seconds=90), f"sum(increase({SELECTOR}[90s]))"),
        (
            "sum(increase(x_total[{{window}}]))",
            True,
            timedelta(minutes=5),
            "sum(increase(x_total[5m]))",
        ),
        ("sum(rate(x_total[{{.window}}]))", True, timedelta(hours=6), "sum(rate(x_total[6h]))"),
        ("sum(rate(x_total[{{ .window }}]))", True, timedelta(days=1), "sum(rate(x_total[1d]))"),
        ("avg_over_time(up[{{window}}])", False, timedelta(minutes=30), "avg_over_time(up[30m])"),
        ("histogram_quantile(0.99, sum by (le) (rate(h[5m])))", False, MINUTE, None),
    ],
)
def test_query_forms(
    make_source: Callable[..., PrometheusSource],
    query: str,
    counter: bool,
    step: timedelta,
    sent: str | None,
) -> None:
    requests: list[dict[str, str]] = []
    fetch(make_source(grid_handler(requests)), query, counter=counter, end=T0 + step, step=step)
    assert requests[0]["query"] == (sent or query)
    assert render_query(query, window=step) == (sent or query)


def test_start_end_step_pin_the_evaluation_and_keys_are_step_ends(
    make_source: Callable[..., PrometheusSource],
) -> None:
    requests: list[dict[str, str]] = []
    values = fetch(
        make_source(grid_handler(requests)),
        start=T0,
        end=T0 + timedelta(hours=1),
        step=timedelta(minutes=5),
    )
    t0 = int(T0.timestamp())
    # (start, end]: the first step ends 5 minutes after start, the last at end.
    assert requests == [
        {
            "query": f"sum(increase({SELECTOR}[5m]))",
            "start": str(t0 + 300),
            "end": str(t0 + 3600),
            "step": "300",
        }
    ]
    assert list(values) == [T0 + i * timedelta(minutes=5) for i in range(1, 13)]
    assert all(key.tzinfo is not None for key in values)


def test_unaligned_bounds_are_narrowed_to_step_multiples(
    make_source: Callable[..., PrometheusSource],
) -> None:
    requests: list[dict[str, str]] = []
    values = fetch(
        make_source(grid_handler(requests)),
        start=T0 + timedelta(minutes=2, seconds=30),
        end=T0 + timedelta(minutes=58),
        step=timedelta(minutes=5),
    )
    assert min(values) == T0 + timedelta(minutes=5)
    assert max(values) == T0 + timedelta(minutes=55)
    assert len(values) == 11


def test_empty_range_asks_nothing(make_source: Callable[..., PrometheusSource]) -> None:
    requests: list[dict[str, str]] = []
    source = make_source(grid_handler(requests))
    assert fetch(source, start=T0, end=T0) == {}
    assert fetch(source, start=T0, end=T0 + timedelta(seconds=59)) == {}
    assert requests == []


def test_30_days_at_1m_are_split_into_requests_of_at_most_11000_points(
    make_source: Callable[..., PrometheusSource],
) -> None:
    requests: list[dict[str, str]] = []
    end = T0 + timedelta(days=30)
    values = fetch(make_source(grid_handler(requests)), start=T0, end=end)
    asked: list[int] = []
    for p in requests:
        start, stop, step = int(p["start"]), int(p["end"]), int(p["step"])
        assert step == 60
        assert (stop - start) // step + 1 <= MAX_POINTS
        asked += range(start, stop + 1, step)
    expected = list(range(int(T0.timestamp()) + 60, int(end.timestamp()) + 1, 60))
    assert asked == expected  # in order, every step end once, nothing outside the range
    assert len(requests) == 4
    assert len(values) == 43_200
    assert sum(values.values()) == 43_200


def test_connection_details_become_headers_auth_and_timeout(
    make_source: Callable[..., PrometheusSource],
) -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return matrix([])

    mimir = make_source(
        handle,
        url="https://mimir.example/prometheus/",
        bearerToken="s3cret",
        headers={"X-Scope-OrgID": "team-a"},
        timeout="10s",
    )
    fetch(mimir)
    request = seen[-1]
    assert request.method == "POST"
    assert str(request.url) == "https://mimir.example/prometheus/api/v1/query_range"
    assert request.headers["authorization"] == "Bearer s3cret"
    assert request.headers["x-scope-orgid"] == "team-a"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.extensions["timeout"] == httpx.Timeout(10.0).as_dict()

    fetch(make_source(handle, basicAuth={"username": "bot", "password": "pw"}))
    assert seen[-1].headers["authorization"] == "Basic Ym90OnB3"
    assert seen[-1].extensions["timeout"] == httpx.Timeout(30.0).as_dict()


def test_client_options_tls() -> None:
    assert client_options({"url": URL, "tlsVerify": False})["verify"] is False
    assert "verify" not in client_options({"url": URL})
    with pytest.raises(ValueError, match="caFile"):
        client_options({"url": URL, "caFile": "/nonexistent/ca.pem"})


@pytest.mark.parametrize(
    ("connection", "field", "words"),
    [
        ({}, "url", "missing"),
        ({"url": "prometheus:9090"}, "url", "not an http(s) URL"),
        ({"url": "ftp://prometheus"}, "url", "not an http(s) URL"),
        ({"url": "http://prometheus:9090?x=1"}, "url", "query string"),
        ({"url": URL, "timeout": "ten seconds"}, "timeout", "invalid duration"),
        ({"url": URL, "timeout": 0}, "timeout", "must be greater than zero"),
        ({"url": URL, "timeout": True}, "timeout", "expected a duration"),
        ({"url": URL, "basicAuth": {"username": "bot"}}, "basicAuth", "needs"),
        (
            {"url": URL, "bearerToken": "t", "basicAuth": {"username": "u", "password": "p"}},
            "basicAuth",
            "not both",
        ),
        ({"url": URL, "headers": {"X-Scope-OrgID": 42}}, "headers", "string values"),
        ({"url": URL, "tlsVerify": "no"}, "tlsVerify", "true or false"),
    ],
)
def test_connection_problems(connection: dict[str, Any], field: str, words: str) -> None:
    problems = connection_problems(connection)
    assert len(problems) == 1
    assert problems[0].startswith(field + ": ")
    assert words in problems[0]
    with pytest.raises(ValueError, match="^" + field):
        client_options(connection)


@pytest.mark.parametrize(
    "connection",
    [
        {"url": URL},
        {"url": "https://mimir.example/prometheus", "timeout": "1m", "headers": {"A": "b"}},
        {"url": URL, "timeout": 2.5, "basicAuth": {"username": "u", "password": "p"}},
    ],
)
def test_valid_connections_have_no_problems(connection: dict[str, Any]) -> None:
    assert connection_problems(connection) == []


def raising(exc: Exception) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        raise exc

    return handle


def answering(status: int, body: str, content_type: str = "application/json") -> Handler:
    return lambda request: httpx.Response(status, text=body, headers={"content-type": content_type})


@pytest.mark.parametrize(
    ("handler", "words"),
    [
        (raising(httpx.ReadTimeout("timed out")), "no answer within the timeout"),
        (raising(httpx.ConnectError("[Errno 111] Connection refused")), "Connection refused"),
        (
            answering(500, '{"status":"error","error":"boom"}'),
            "HTTP 500 Internal Server Error: boom",
        ),
        (answering(502, HTML_PAGE, "text/html"), "HTTP 502"),
        (
            answering(503, '{"status":"error","errorType":"timeout","error":"query timed out"}'),
            "query timed out",
        ),
        (answering(429, "slow down", "text/plain"), "HTTP 429"),
        (answering(200, HTML_PAGE, "text/html"), "text/html body, not Prometheus JSON"),
        (answering(200, '{"hello": "world"}'), "no `status`"),
        (answering(200, '{"status": "success"}'), "unexpected answer"),
        (
            answering(200, '{"status":"success","data":{"resultType":"vector","result":[]}}'),
            "expected a matrix",
        ),
        (
            answering(200, '{"status":"success","data":{"resultType":"matrix","result":[{}]}}'),
            "no `values`",
        ),
    ],
)
def test_outages_and_garbled_answers_are_unavailable(
    make_source: Callable[..., PrometheusSource], handler: Handler, words: str
) -> None:
    with pytest.raises(SourceUnavailable) as caught:
        fetch(make_source(handler))
    message = str(caught.value)
    assert words in message
    assert "'prom-main'" in message
    assert URL in message
    assert "Traceback" not in message


@pytest.mark.parametrize(
    ("handler", "words"),
    [
        (answering(400, RECORDED_BAD_DATA), "1:45: parse error: unclosed left parenthesis"),
        (answering(422, RECORDED_EXECUTION), "many-to-many matching not allowed"),
        (
            answering(200, '{"status":"error","errorType":"bad_data","error":"bad step"}'),
            "bad step",
        ),
        (answering(401, "Unauthorized", "text/plain"), "authentication failed (HTTP 401"),
        (answering(403, "Forbidden", "text/plain"), "authentication failed (HTTP 403"),
        (answering(404, "404 page not found", "text/plain"), "no Prometheus API at " + URL),
        (answering(405, "Method Not Allowed", "text/plain"), "HTTP 405"),
    ],
)
def test_refusals_are_bad_queries(
    make_source: Callable[..., PrometheusSource], handler: Handler, words: str
) -> None:
    with pytest.raises(BadQuery) as caught:
        fetch(make_source(handler), "sum(rate(x_total[{{window}}])")
    message = str(caught.value)
    assert words in message
    assert "'prom-main'" in message
    assert URL in message


def test_bad_data_names_the_query_sent(make_source: Callable[..., PrometheusSource]) -> None:
    with pytest.raises(BadQuery) as caught:
        fetch(make_source(answering(400, RECORDED_RANGES_ONLY)), "sum(rate(x_total[5m]))")
    message = str(caught.value)
    assert "sum(rate(x_total[5m]))[" in message  # read as a counter selector's raw samples
    assert "ranges only allowed for vector selectors" in message
    assert "bare selector" in message  # the hint: we wrapped it


def test_credentials_never_appear_in_messages(
    make_source: Callable[..., PrometheusSource],
) -> None:
    source = make_source(answering(500, "oops", "text/plain"), url="http://bot:hunter2@prom:9090")
    with pytest.raises(SourceUnavailable) as caught:
        fetch(source)
    assert "hunter2" not in str(caught.value)
    assert "http://prom:9090" in str(caught.value)


def test_several_series_are_refused(make_source: Callable[..., PrometheusSource]) -> None:
    with pytest.raises(BadQuery, match=r"returns 2 series .*aggregate it with sum\(\.\.\.\)"):
        fetch(
            make_source(answering(200, RECORDED_TWO_SERIES)),
            "increase(http_requests_total[{{window}}])",
        )


def test_series_changing_between_split_requests_is_refused(
    make_source: Callable[..., PrometheusSource],
) -> None:
    pods = iter(["a", "b"])

    def handle(request: httpx.Request) -> httpx.Response:
        p = params(request)
        return matrix([(int(p["start"]), "1")], {"pod": next(pods)})

    with pytest.raises(BadQuery, match="returns 2 series"):
        fetch(make_source(handle), "up", counter=False, end=T0 + timedelta(days=10))


def test_nan_and_inf_are_no_data(make_source: Callable[..., PrometheusSource]) -> None:
    t = int(T0.timestamp())
    answer = matrix(
        [(t + 60, "NaN"), (t + 120, "0"), (t + 180, "+Inf"), (t + 240, "-Inf"), (t + 300, "0.25")]
    )
    values = fetch(make_source(lambda request: answer), "x / y", counter=False)
    assert values == {T0 + 2 * MINUTE: 0.0, T0 + 5 * MINUTE: 0.25}


def test_points_outside_the_asked_range_are_ignored(
    make_source: Callable[..., PrometheusSource],
) -> None:
    t = int(T0.timestamp())
    answer = matrix([(t, "9"), (t + 60, "1"), (t + 360, "9")])
    assert fetch(make_source(lambda request: answer)) == {T0 + MINUTE: 1.0}


def test_prometheus_json_is_parsed_from_recorded_answer(
    make_source: Callable[..., PrometheusSource],
) -> None:
    body = json.loads(RECORDED_TWO_SERIES)
    body["data"]["result"] = body["data"]["result"][:1]
    values = fetch(make_source(lambda request: httpx.Response(200, json=body)))
    assert values == {T0 + MINUTE: 784.0, T0 + 2 * MINUTE: 569.0}

"""Range queries against Prometheus-compatible APIs (Prometheus, Thanos, Mimir, VictoriaMetrics).

Turns an SLI query into one value per step, and every failure into SourceUnavailable or BadQuery.
A bare counter selector is differenced here, per series (`bot.sources.counters`): exact at any
scrape interval and offset, unlike `increase(x[1m])`, which is empty at a 60 s scrape.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

from bot import redaction
from bot.domain import DataSource, MetricQuery
from bot.durations import format_duration, parse_duration
from bot.sources.base import BadQuery, PartialAnswer, SourceError, SourceUnavailable
from bot.sources.counters import MAX_SCRAPE_GAP, CounterIncreases
from bot.sources.grouping import group_query

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

# Prometheus refuses a range query asking more points per series than this.
MAX_POINTS = 11_000
DEFAULT_TIMEOUT_SECONDS = 30.0
WINDOW = re.compile(r"\{\{\s*\.?window\s*\}\}")  # slo-bot's {{window}} and Sloth's {{.window}}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
# Raw samples asked per request; the span of each request adapts to the density of the data.
RAW_POINTS_PER_REQUEST = 50_000
_FIRST_RAW_SPAN = timedelta(hours=6)
_MIN_RAW_SPAN, _MAX_RAW_SPAN = timedelta(minutes=10), timedelta(days=31)
# Steps this long or longer are read from the counters' values at step ends (the newest sample at
# each end: one point per step and series); shorter ones from raw samples.
VALUE_STEP = timedelta(minutes=5)


def connection_problems(connection: Mapping[str, Any]) -> list[str]:
    """What is wrong with a Prometheus DataSource's connectionDetails, one `field: message` each."""
    problems: list[str] = []
    url = connection.get("url")
    if url is None or url == "":
        problems.append("url: missing; give the API base URL, e.g. http://prometheus:9090")
    elif not isinstance(url, str):
        problems.append("url: must be a string such as http://prometheus:9090")
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"url: {_redact(url)!r} is not an http(s) URL, e.g. http://prometheus:9090")
        elif parts.query or parts.fragment:
            problems.append("url: must not have a query string or fragment")
    if connection.get("timeout") is not None:
        try:
            timeout_seconds(connection["timeout"])
        except ValueError as exc:
            problems.append(f"timeout: {exc}")
    token = connection.get("bearerToken")
    if token is not None and (not isinstance(token, str) or not token):
        problems.append("bearerToken: must be a non-empty string")
    basic = connection.get("basicAuth")
    if basic is not None:
        if not (
            isinstance(basic, Mapping)
            and isinstance(basic.get("username"), str)
            and isinstance(basic.get("password"), str)
        ):
            problems.append("basicAuth: needs `username` and `password` strings")
        if token is not None:
            problems.append("basicAuth: give either bearerToken or basicAuth, not both")
    headers = connection.get("headers")
    if headers is not None and not (
        isinstance(headers, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        problems.append("headers: must map header names to string values")
    if not isinstance(connection.get("tlsVerify", True), bool):
        problems.append("tlsVerify: must be true or false")
    if connection.get("caFile") is not None and not isinstance(connection["caFile"], str):
        problems.append("caFile: must be a file path")
    return problems


def client_options(connection: Mapping[str, Any]) -> dict[str, Any]:
    """`httpx.Client(**client_options(ds.connection))`: URL, auth, headers, timeout and TLS.

    Raises ValueError listing the problems of an invalid connection, or an unreadable caFile.
    """
    import ssl

    import httpx  # here, not at the top: `slo-bot validate` checks connections and sends nothing

    problems = connection_problems(connection)
    if problems:
        raise ValueError("; ".join(problems))
    headers = {"User-Agent": "slo-bot", "Accept": "application/json"}
    headers.update(connection.get("headers") or {})
    if connection.get("bearerToken"):
        headers["Authorization"] = f"Bearer {connection['bearerToken']}"
    timeout = connection.get("timeout")
    seconds = DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout_seconds(timeout)
    options: dict[str, Any] = {
        "base_url": connection["url"],
        "headers": headers,
        "timeout": httpx.Timeout(seconds),
    }
    basic = connection.get("basicAuth")
    if basic is not None:
        options["auth"] = httpx.BasicAuth(basic["username"], basic["password"])
    if not connection.get("tlsVerify", True):
        options["verify"] = False
    elif connection.get("caFile"):
        try:
            options["verify"] = ssl.create_default_context(cafile=connection["caFile"])
        except OSError as exc:  # ssl.SSLError is an OSError too
            raise ValueError(f"caFile: cannot use {connection['caFile']!r}: {exc}") from exc
    return options


def secrets_of(connection: Mapping[str, Any]) -> list[str]:
    """What of a DataSource's connectionDetails must never be shown: its bearer token, its basic-auth
    password, the user info and query of its url, and the values of its extra headers (API keys)."""
    found: list[str] = []
    if isinstance(connection.get("bearerToken"), str):
        found.append(connection["bearerToken"])
    basic = connection.get("basicAuth")
    if isinstance(basic, Mapping) and isinstance(basic.get("password"), str):
        found += redaction.basic_auth(str(basic.get("username") or ""), basic["password"])
    if isinstance(connection.get("url"), str):
        found += redaction.of_url(connection["url"])
    headers = connection.get("headers")
    if isinstance(headers, Mapping):
        found += [v for v in headers.values() if isinstance(v, str)]
    return found


def render_query(query: str, *, window: timedelta) -> str:
    """The PromQL slo-bot sends for one step of length `window`: `{{window}}` / `{{.window}}` become
    the window (`5m`); a query without them is sent as written. (A bare counter selector never comes
    here: `PrometheusSource` differences its samples itself.)"""
    return WINDOW.sub(format_duration(window), query)


def query_problem(query: str, *, counter: bool) -> str | None:
    """Why Prometheus would refuse `query` as slo-bot sends it: parsed offline as PromQL."""
    from bot.catalogue.promql import promql_problem  # (the catalogue's checks import this module)

    return promql_problem(query, counter=counter)


class PrometheusSource:
    """A `Source` over `/api/v1/query_range`; the client carries URL, auth, headers and timeout."""

    # the checks and client options of this source, for the registry (`bot.sources.HTTP_SOURCES`)
    @staticmethod
    def connection_problems(connection: Mapping[str, Any]) -> list[str]:
        return connection_problems(connection)

    @staticmethod
    def client_options(connection: Mapping[str, Any]) -> dict[str, Any]:
        return client_options(connection)

    @staticmethod
    def query_problem(query: str, *, counter: bool) -> str | None:
        return query_problem(query, counter=counter)

    def __init__(self, datasource: DataSource, client: httpx.Client) -> None:
        self.datasource = datasource
        self._client = client
        base = str(datasource.connection.get("url") or client.base_url).rstrip("/")
        self._endpoint = base + "/api/v1/query_range"
        self._instant_endpoint = base + "/api/v1/query"
        self._where = f"{datasource.type} datasource {datasource.name!r} ({_redact(base)})"
        self._secrets = secrets_of(datasource.connection)

    def fetch_range(
        self,
        metric: MetricQuery,
        *,
        counter: bool,
        start: datetime,
        end: datetime,
        step: timedelta,
    ) -> dict[datetime, float]:
        try:
            groups = self._fetch(metric, counter=counter, start=start, end=end, step=step, by=None)
        except PartialAnswer as partial:
            raise PartialAnswer(str(partial), partial.groups.get((), {})) from None
        return groups.get((), {})

    def fetch_range_groups(
        self,
        metric: MetricQuery,
        *,
        counter: bool,
        start: datetime,
        end: datetime,
        step: timedelta,
        by: Sequence[str],
    ) -> dict[tuple[str, ...], dict[datetime, float]]:
        """`fetch_range` per value of the labels `by` (a grouped SLO): one query for every member.

        A counter selector's series are differenced each alone and summed per group; any other
        query has its aggregations keep the labels (`sum by (route) (...)`, `bot.sources.grouping`)."""
        return self._fetch(metric, counter=counter, start=start, end=end, step=step, by=tuple(by))

    def _fetch(
        self,
        metric: MetricQuery,
        *,
        counter: bool,
        start: datetime,
        end: datetime,
        step: timedelta,
        by: tuple[str, ...] | None,
    ) -> dict[tuple[str, ...], dict[datetime, float]]:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        if step < _SECOND or step % _SECOND:
            raise ValueError(f"step must be a whole number of seconds, not {step}")
        notes: list[str] = []  # what the server warned of: a partial answer (Thanos, Mimir)
        try:
            if counter and not WINDOW.search(metric.query):
                groups = self._fetch_increases(
                    metric.query.strip(), start=start, end=end, step=step, notes=notes, by=by
                )
            else:
                groups = self._fetch_values(metric.query, start=start, end=end, step=step, notes=notes, by=by)
        except SourceError as err:
            # one place for every message: a server or gateway may quote the request it got, with its
            # credentials, in any error (its body, a redirect's location, a transport error)
            err.args = (redaction.mask(str(err), self._secrets),)
            raise
        if notes:
            message = f"{self._where}: partial answer: {'; '.join(sorted(set(notes)))}"
            raise PartialAnswer(message, groups.get((), {}), groups)
        return groups

    def _fetch_values(
        self,
        query_text: str,
        *,
        start: datetime,
        end: datetime,
        step: timedelta,
        notes: list[str],
        by: tuple[str, ...] | None = None,
    ) -> dict[tuple[str, ...], dict[datetime, float]]:
        query = render_query(query_text, window=step)
        if by is not None:
            try:
                query = group_query(query, by)
            except ValueError as err:  # validate refuses these; a stored definition may predate it
                raise BadQuery(f"{self._where}: query {query!r}: {err}") from None
        steps = step // _SECOND
        # Step ends are multiples of the step since the epoch, in (start, end].
        first = ((start - _EPOCH) // step + 1) * steps
        last = ((end - _EPOCH) // step) * steps
        values: dict[tuple[str, ...], dict[datetime, float]] = {}
        seen: dict[tuple[str, ...], Mapping[str, Any]] = {}
        for lo, hi in _chunks(first, last, steps):
            for series_labels, points in self._query_range(query, lo, hi, steps, notes, many=by is not None):
                key = _group_key(series_labels, by)
                labels = seen.setdefault(key, series_labels)
                if series_labels != labels:
                    self._many_series(query, [labels, series_labels], by)
                values.setdefault(key, {}).update(points)
        return values

    def _fetch_increases(
        self,
        selector: str,
        *,
        start: datetime,
        end: datetime,
        step: timedelta,
        notes: list[str],
        by: tuple[str, ...] | None = None,
    ) -> dict[tuple[str, ...], dict[datetime, float]]:
        """Events per step of a bare counter selector, exact at any scrape interval up to 5 minutes.

        `increase(x[step])` needs two samples inside each step and extrapolates between them, so at a
        60 s scrape every 1-minute step was empty, and at any scrape the steps only add up roughly.
        Steps shorter than 5 minutes are read from the raw samples of every series (instant queries
        of `selector[span]`); longer ones from each series' value at every step end (the newest
        sample, what the selector gives at that instant), differenced here, and the few steps where
        a counter restarted from their raw samples again. Both count a pair of samples in the step of
        the later one, so the steps of any resolution add up to the same events. Series are summed
        per value of the labels `by` (all together when None).
        """
        steps = step // _SECOND
        first = ((start - _EPOCH) // step + 1) * steps
        last = ((end - _EPOCH) // step) * steps
        if first > last:
            return {} if by is not None else {(): {}}
        if step >= VALUE_STEP:
            events = self._value_increases(selector, first, last, steps, notes, by)
        else:
            events = self._raw_increases(selector, first, last, steps, notes, by)
        return {
            key: {_EPOCH + timedelta(seconds=t): v for t, v in sorted(group.items())}
            for key, group in events.items()
        }

    def _raw_increases(
        self, selector: str, first: int, last: int, step: int, notes: list[str], by: tuple[str, ...] | None
    ) -> dict[tuple[str, ...], dict[int, float]]:
        increases: dict[tuple[str, ...], CounterIncreases] = {}
        if by is None:  # one group even when no series answers: its steps are then no data
            increases[()] = CounterIncreases(first, last, step)
        gap = int(MAX_SCRAPE_GAP.total_seconds())
        # from the sample before the first step to the one after the last (which says the steps
        # between the last sample and `last` were measured, with no events)
        lo, hi = first - step - gap, last + gap
        span = int(_FIRST_RAW_SPAN.total_seconds())
        while lo < hi:
            upto = min(hi, lo + span)
            points = 0
            for labels, samples in self._raw_samples(selector, lo, upto, notes):
                key = _group_key(dict(labels), by)
                if key not in increases:
                    increases[key] = CounterIncreases(first, last, step)
                increases[key].add(labels, samples)
                points += len(samples)
            if points:  # aim the next request at about RAW_POINTS_PER_REQUEST samples
                span = int(span * RAW_POINTS_PER_REQUEST / points)
            else:
                span *= 4
            span = max(int(_MIN_RAW_SPAN.total_seconds()), min(int(_MAX_RAW_SPAN.total_seconds()), span))
            lo = upto
        return {key: counter.result() for key, counter in increases.items()}

    def _value_increases(
        self, selector: str, first: int, last: int, step: int, notes: list[str], by: tuple[str, ...] | None
    ) -> dict[tuple[str, ...], dict[int, float]]:
        """Each series' counter at every step end, differenced; a step where any series read_raw
        (its value dropped, or `resets` over the step and the gap before it says so) is read raw, and
        so is one where a series has a value at only one of its ends: a scrape gap or the series'
        birth or end cuts the step, and the samples inside it still hold events (a 5-minute step
        just after a gap that ends off the step's grid lost them all)."""
        values: dict[frozenset[Any], dict[int, float]] = {}
        for key, points in self._range_points(selector, first - step, last, step, notes):
            values.setdefault(key, {}).update(points)
        window = step + int(MAX_SCRAPE_GAP.total_seconds())
        read_raw = {
            t
            for _, points in self._range_points(f"resets({selector}[{window}s])", first, last, step, notes)
            for t, count in points.items()
            if count > 0
        }
        events: dict[tuple[str, ...], dict[int, float]] = {} if by is not None else {(): {}}
        for labels, series in values.items():
            group = events.setdefault(_group_key(dict(labels), by), {})
            for t in range(first, last + 1, step):
                now, before = series.get(t), series.get(t - step)
                if now is None or before is None:
                    if now is not None or before is not None:
                        read_raw.add(t)
                    continue
                if now < before:
                    read_raw.add(t)
                group[t] = group.get(t, 0.0) + now - before
        for t in sorted(read_raw):
            for group in events.values():
                group.pop(t, None)
            for member, raw in self._raw_increases(selector, t, t, step, notes, by).items():
                events.setdefault(member, {}).update(raw)
        return events

    def _range_points(
        self, query: str, first: int, last: int, step: int, notes: list[str]
    ) -> Iterator[tuple[frozenset[Any], dict[int, float]]]:
        """Each series of a range query (any number of them), its points keyed by epoch seconds."""
        for lo, hi in _chunks(first, last, step):
            form = {"query": query, "start": str(lo), "end": str(hi), "step": str(step)}
            for item in self._matrix(self._data(self._post(self._endpoint, form), query, True, notes), query):
                labels, pairs = self._points(item, lo, hi)
                key = frozenset((str(k), str(v)) for k, v in labels.items())
                yield key, {millis // 1000: v for millis, v in pairs}

    def _raw_samples(
        self, selector: str, lo: int, hi: int, notes: list[str]
    ) -> list[tuple[frozenset[Any], list[tuple[float, float]]]]:
        """Each series' raw samples in (lo, hi] (Prometheus 2 also gives one at exactly lo)."""
        query = f"{selector}[{hi - lo}s]"
        response = self._post(self._instant_endpoint, {"query": query, "time": str(hi)})
        result = self._matrix(
            self._data(response, query, wrapped=True, notes=notes), f"raw samples for {query!r}"
        )
        series = []
        for item in result:
            labels, pairs = self._points(item, lo, hi)
            key = frozenset((str(k), str(v)) for k, v in labels.items())
            # Prometheus answers in time order, each time once; anything else is put in order
            if any(a[0] >= b[0] for a, b in pairwise(pairs)):
                pairs = sorted(dict(pairs).items())
            series.append((key, [(millis / 1000, v) for millis, v in pairs]))
        return series

    def _query_range(
        self, query: str, lo: int, hi: int, step: int, notes: list[str], many: bool = False
    ) -> list[tuple[Mapping[str, Any], dict[datetime, float]]]:
        response = self._post(
            self._endpoint, {"query": query, "start": str(lo), "end": str(hi), "step": str(step)}
        )
        result = self._matrix(self._data(response, query, False, notes), "result from query_range")
        if len(result) > 1 and not many:
            self._many_series(query, [s.get("metric") if isinstance(s, Mapping) else s for s in result])
        return [self._series(item, lo, hi) for item in result]

    def _post(self, endpoint: str, form: dict[str, str]) -> httpx.Response:
        import httpx  # a lookup in sys.modules: the client passed in has loaded it

        try:
            return self._client.post(endpoint, data=form)
        except httpx.TimeoutException as exc:
            raise SourceUnavailable(
                f"{self._where}: no answer within the timeout ({type(exc).__name__}); will retry next tick"
            ) from exc
        except httpx.RequestError as exc:
            raise SourceUnavailable(
                f"{self._where}: cannot reach it: {exc or type(exc).__name__}; will retry next tick"
            ) from exc

    def _matrix(self, data: Any, what: str) -> list[Any]:
        """The series of a matrix answer; anything else is a garbled answer."""
        if not isinstance(data, Mapping) or data.get("resultType") != "matrix":
            kind = data.get("resultType") if isinstance(data, Mapping) else type(data).__name__
            self._garbled(f"expected a matrix of {what}, got {kind!r}")
        result = data.get("result")
        if not isinstance(result, list):
            self._garbled("the matrix result is not a list")
        return result

    def _data(self, response: httpx.Response, query: str, wrapped: bool, notes: list[str]) -> Any:
        """The `data` of a successful answer; raises the right error for anything else."""
        code = response.status_code
        shown = f"HTTP {code} {response.reason_phrase}".rstrip()
        if code in (401, 403):
            raise BadQuery(f"{self._where}: authentication failed ({shown}); check bearerToken or basicAuth")
        if code == 404:
            raise BadQuery(
                f"{self._where}: no Prometheus API at {_redact(self._endpoint)} ({shown}); "
                "check the url and its path prefix (Mimir: /prometheus)"
            )
        if code == 429 or code >= 500:
            detail = _error_text(response)
            raise SourceUnavailable(
                f"{self._where}: {shown}{': ' + detail if detail else ''}; will retry next tick"
            )
        if 300 <= code < 400:
            raise BadQuery(
                f"{self._where}: redirected to {response.headers.get('location', '?')} ({shown}); "
                "set url to the API itself"
            )
        if 400 <= code < 500 and code not in (400, 422):
            detail = _error_text(response)
            raise BadQuery(f"{self._where}: refused the request ({shown}){': ' + detail if detail else ''}")
        try:
            body = response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            self._garbled(f"{shown} with a {kind} body, not Prometheus JSON (a proxy or login page?)")
        if not isinstance(body, Mapping) or "status" not in body:
            self._garbled(f"{shown} with JSON that has no `status`")
        if code in (400, 422) or body["status"] == "error":
            error = body.get("error") or body.get("errorType") or shown
            hint = (
                '; a counter query must be a bare selector such as metric_total{job="api"} (slo-bot reads '
                "its raw samples) or a query holding {{window}}"
                if wrapped and body.get("errorType") == "bad_data"
                else ""
            )
            raise BadQuery(f"{self._where}: Prometheus refused query {query!r}: {error}{hint}")
        if code != 200 or body["status"] != "success" or "data" not in body:
            self._garbled(f"{shown} with an unexpected answer (status {body['status']!r})")
        for warning in body.get("warnings") or ():
            said = redaction.mask(str(warning), self._secrets)
            log.warning("%s: query %r: %s", self._where, query, said)
            notes.append(said)
        return body["data"]

    def _series(self, item: Any, lo: int, hi: int) -> tuple[Mapping[str, Any], dict[datetime, float]]:
        labels, pairs = self._points(item, lo, hi)
        return labels, {_EPOCH + timedelta(milliseconds=millis): value for millis, value in pairs}

    def _points(self, item: Any, lo: int, hi: int) -> tuple[Mapping[str, Any], list[tuple[int, float]]]:
        """A series' labels and its samples in [lo, hi] as (epoch milliseconds, value), as answered
        (time order): read as plain numbers, since a first cycle reads hundreds of thousands."""
        if not isinstance(item, Mapping) or not isinstance(item.get("values"), list):
            self._garbled("a series of the matrix has no `values` list")
        pairs: list[tuple[int, float]] = []
        low, high = lo * 1000, hi * 1000
        isfinite = math.isfinite
        for pair in item["values"]:
            try:
                stamp, text = pair
                millis = round(float(stamp) * 1000)
                value = float(text)
            except (TypeError, ValueError):
                self._garbled(f"unreadable sample {pair!r}")
            # NaN and ±Inf are what PromQL gives for 0/0 and x/0: no data, never a number.
            if isfinite(value) and low <= millis <= high:
                pairs.append((millis, value))
        labels = item.get("metric")
        return (labels if isinstance(labels, Mapping) else {}), pairs

    def _many_series(self, query: str, labels: list[Any], by: Sequence[str] | None = None) -> NoReturn:
        if by:
            raise BadQuery(
                f"{self._where}: query {query!r} returns several series for one member of the group "
                f"by {', '.join(by)} (e.g. {labels[0]}, {labels[1]}); aggregate it with sum(...)"
            )
        raise BadQuery(
            f"{self._where}: query {query!r} returns {len(labels)} series (e.g. {labels[0]}, "
            f"{labels[1]}); aggregate it with sum(...) so it returns one"
        )

    def _garbled(self, what: str) -> NoReturn:
        raise SourceUnavailable(f"{self._where}: garbled answer: {what}; will retry next tick")


def _group_key(labels: Mapping[str, Any], by: Sequence[str] | None) -> tuple[str, ...]:
    """The member a series belongs to: its values of the labels `by` ("" where it has none)."""
    return () if by is None else tuple(str(labels.get(name, "")) for name in by)


def _chunks(first: int, last: int, step: int) -> Iterator[tuple[int, int]]:
    """Request bounds (lo, hi) in order, each of <= MAX_POINTS steps, covering first..last once."""
    lo = first
    while lo <= last:
        hi = min(last, lo + (MAX_POINTS - 1) * step)
        yield lo, hi
        lo = hi + step


def timeout_seconds(value: Any) -> float:
    """A connection's `timeout` (10, 2.5 or "10s") in seconds; ValueError when it is none."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a duration such as 10s, not {value!r}")
    seconds = parse_duration(value).total_seconds() if isinstance(value, str) else float(value)
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"must be greater than zero, not {value!r}")
    return seconds


def _error_text(response: httpx.Response) -> str:
    """Prometheus's own `error` from a JSON error body, else nothing."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error") or "") if isinstance(body, Mapping) else ""


def _redact(url: str) -> str:
    """The URL without user:password, fit for logs and Slack."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))

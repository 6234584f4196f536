"""Event counts and values from Datadog's metrics query API (`GET /api/v1/query`), per step.

A counter query is summed per step with `.as_count().rollup(sum, STEP)`; every failure becomes
SourceUnavailable or BadQuery, and Datadog's rate-limit headers are obeyed, never raced.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from bot import redaction
from bot.domain import DataSource, MetricQuery
from bot.sources.base import BadQuery, SourceError, SourceUnavailable
from bot.sources.prometheus import WINDOW, timeout_seconds

if TYPE_CHECKING:
    import httpx

DEFAULT_SITE = "datadoghq.com"
DEFAULT_TIMEOUT_SECONDS = 30.0
# Datadog returns at most 1,500 points per series (a longer range comes back at a coarser rollup
# than asked): a day of minutes per request stays under it.
MAX_POINTS = 1440
# A 429 whose limit resets this soon is waited for (once); a later reset fails the tick instead,
# and every request of this DataSource fails at once until the reset, so nothing hammers the API.
MAX_RATE_LIMIT_WAIT = 10.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_SITE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")
# One metric query: `sum:metric.name{scope}` with an optional `.as_count()` / `.as_rate()`.
_SINGLE = re.compile(
    r"^(?:(?P<aggr>[a-z0-9]+):)?[A-Za-z][\w.]*\{[^{}]*\}(?P<by>\s*by\s*\{[^{}]*\})?"
    r"(?P<modifier>\.as_(?:count|rate)\(\))?$"
)
KEYS = ("apiKey", "applicationKey")
FIELDS = frozenset({"site", "url", "apiKey", "applicationKey", "timeout"})


def connection_problems(connection: Mapping[str, Any]) -> list[str]:
    """What is wrong with a Datadog DataSource's connectionDetails, one `field: message` each."""
    known = ", ".join(sorted(FIELDS))
    problems = [f"{key}: unknown field; slo-bot reads {known}" for key in connection if key not in FIELDS]
    for key in KEYS:
        value = connection.get(key)
        if value is None or value == "":
            problems.append(f"{key}: missing; give it from the environment, e.g. ${{DD_{_env(key)}}}")
        elif not isinstance(value, str):
            problems.append(f"{key}: must be a string")
    site, url = connection.get("site"), connection.get("url")
    if site is not None and url is not None:
        problems.append("url: give site or url, not both")
    if site is not None and not (isinstance(site, str) and _SITE.match(site)):
        problems.append(f"site: {site!r} is not a Datadog site such as datadoghq.eu or us5.datadoghq.com")
    if url is not None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append("url: must be an http(s) URL of the API, e.g. https://api.datadoghq.eu")
        elif parts.username or parts.password or parts.query or parts.fragment:
            problems.append(
                "url: no user info, query string or fragment (the keys go in apiKey, applicationKey)"
            )
    if connection.get("timeout") is not None:
        try:
            timeout_seconds(connection["timeout"])
        except ValueError as exc:
            problems.append(f"timeout: {exc}")
    return problems


def _env(key: str) -> str:
    return "API_KEY" if key == "apiKey" else "APP_KEY"


def api_url(connection: Mapping[str, Any]) -> str:
    """The API's base URL: `url` as given, else `https://api.<site>` (`app.datadoghq.eu` and
    `datadoghq.eu` are both the site whose API is api.datadoghq.eu)."""
    if connection.get("url"):
        return str(connection["url"]).rstrip("/")
    site = str(connection.get("site") or DEFAULT_SITE).removeprefix("app.")
    return f"https://api.{site}"


def client_options(connection: Mapping[str, Any]) -> dict[str, Any]:
    """`httpx.Client(**client_options(ds.connection))`: API URL, keys and timeout.

    Raises ValueError listing the problems of an invalid connection."""
    import httpx  # here, not at the top: `slo-bot validate` checks connections and sends nothing

    problems = connection_problems(connection)
    if problems:
        raise ValueError("; ".join(problems))
    timeout = connection.get("timeout")
    seconds = DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout_seconds(timeout)
    return {
        "base_url": api_url(connection),
        "headers": {
            "User-Agent": "slo-bot",
            "Accept": "application/json",
            "DD-API-KEY": connection["apiKey"],
            "DD-APPLICATION-KEY": connection["applicationKey"],
        },
        "timeout": httpx.Timeout(seconds),
    }


def secrets_of(connection: Mapping[str, Any]) -> list[str]:
    """The API and application keys: never shown."""
    return [str(connection[key]) for key in KEYS if isinstance(connection.get(key), str)]


def query_problem(query: str, *, counter: bool) -> str | None:
    """Why slo-bot cannot send `query` as written, or None. A query holding `{{window}}` is sent as
    written with the step's seconds there; any other must be one metric query, to which slo-bot adds
    the rollup (`.as_count().rollup(sum, 60)` for a counter, `.rollup(avg, 60)` for a value)."""
    text = query.strip()
    if WINDOW.search(text):
        return None
    if ".rollup(" in text:
        return "slo-bot adds .rollup(...) with the step itself: remove it, or write .rollup(sum, {{window}})"
    match = _SINGLE.match(text)
    if match is None:
        return (
            "expected one metric query such as sum:trace.http.request.hits{service:web}.as_count(); "
            "a formula (arithmetic, functions) must give its own rollup: .rollup(sum, {{window}}) "
            "after each metric"
        )
    if match["by"]:
        return "`by {...}` returns a series per group: slo-bot needs one (remove by {...})"
    if counter and match["aggr"] != "sum":
        return "a counter query adds events across series: start it with sum: (e.g. sum:requests.count{...})"
    if counter and match["modifier"] == ".as_rate()":
        return "a counter query counts events: use .as_count(), not .as_rate()"
    return None


def render_query(query: str, *, counter: bool, step: timedelta) -> str:
    """The query slo-bot sends for steps of `step` (see `query_problem`)."""
    seconds = str(step // _SECOND)
    text = query.strip()
    if WINDOW.search(text):
        return WINDOW.sub(seconds, text)
    if counter:
        if not text.endswith((".as_count()", ".as_rate()")):
            text += ".as_count()"
        return f"{text}.rollup(sum, {seconds})"
    return f"{text}.rollup(avg, {seconds})"


class DatadogSource:
    """A `Source` over Datadog's `/api/v1/query`; the client carries the API URL, keys and timeout."""

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

    def __init__(
        self,
        datasource: DataSource,
        client: httpx.Client,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.datasource = datasource
        self._client = client
        base = api_url(datasource.connection) if datasource.connection else str(client.base_url).rstrip("/")
        self._endpoint = base + "/api/v1/query"
        self._where = f"Datadog datasource {datasource.name!r} ({base})"
        self._secrets = secrets_of(datasource.connection)
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._limited_until = 0.0  # clock() before which Datadog said this organisation is rate limited

    def fetch_range(
        self,
        metric: MetricQuery,
        *,
        counter: bool,
        start: datetime,
        end: datetime,
        step: timedelta,
    ) -> dict[datetime, float]:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        if step < _SECOND or step % _SECOND:
            raise ValueError(f"step must be a whole number of seconds, not {step}")
        problem = query_problem(metric.query, counter=counter)
        if problem is not None:  # validate refuses these; a stored definition may predate it
            raise BadQuery(f"{self._where}: query {metric.query!r}: {problem}")
        query = render_query(metric.query, counter=counter, step=step)
        seconds = step // _SECOND
        # A point is stamped with the start of its rollup bucket (aligned to Unix time); slo-bot keys
        # a step by its end. Steps ending in (start, end] start at these bucket starts:
        first = ((start - _EPOCH) // step) * seconds
        last = ((end - _EPOCH) // step - 1) * seconds
        values: dict[datetime, float] = {}
        try:
            lo = first
            while lo <= last:
                hi = min(last, lo + (MAX_POINTS - 1) * seconds)
                # `to` just before the bucket after `hi`, which Datadog would include if `to` touched it
                body = self._get(query, lo, hi + seconds - 1)
                for stamp, value in self._points(body, query, seconds):
                    if lo <= stamp <= hi:
                        values[_EPOCH + timedelta(seconds=stamp + seconds)] = value
                lo = hi + seconds
        except SourceError as err:
            # a proxy or Datadog itself may quote the request, keys included, in any error
            err.args = (redaction.mask(str(err), self._secrets),)
            raise
        return dict(sorted(values.items()))

    def _get(self, query: str, lo: int, hi: int) -> Any:
        import httpx  # a lookup in sys.modules: the client passed in has loaded it

        for attempt in (1, 2):
            self._wait_for_rate_limit()
            try:
                response = self._client.get(
                    self._endpoint, params={"from": str(lo), "to": str(hi), "query": query}
                )
            except httpx.TimeoutException as exc:
                raise SourceUnavailable(
                    f"{self._where}: no answer within the timeout ({type(exc).__name__}); "
                    "will retry next tick"
                ) from exc
            except httpx.RequestError as exc:
                raise SourceUnavailable(
                    f"{self._where}: cannot reach it: {exc or type(exc).__name__}; will retry next tick"
                ) from exc
            reset = self._note_rate_limit(response)
            if response.status_code == 429 and attempt == 1 and reset is not None:
                continue  # limited until `reset`: waited for (if short) at the top of the loop
            return self._body(response, query, reset)
        raise AssertionError("unreachable")  # the second attempt always returns or raises

    def _note_rate_limit(self, response: httpx.Response) -> float | None:
        """Seconds until Datadog's limit resets when this answer says none is left (a 429, or
        `X-RateLimit-Remaining: 0`), remembered for every later request; None otherwise."""
        try:
            reset = float(response.headers.get("x-ratelimit-reset", ""))
        except ValueError:
            reset = None
        exhausted = response.status_code == 429 or response.headers.get("x-ratelimit-remaining") == "0"
        if not exhausted:
            return None
        if reset is None or not math.isfinite(reset) or reset < 0:
            reset = 60.0 if response.status_code == 429 else None  # a 429 without a usable reset
        if reset is not None:
            with self._lock:
                self._limited_until = max(self._limited_until, self._clock() + reset)
        return reset

    def _wait_for_rate_limit(self) -> None:
        with self._lock:
            left = self._limited_until - self._clock()
        if left <= 0:
            return
        if left > MAX_RATE_LIMIT_WAIT:
            raise SourceUnavailable(
                f"{self._where}: rate limited by Datadog (HTTP 429 Too Many Requests); the limit resets in "
                f"{math.ceil(left)} s; will retry next tick"
            )
        self._sleep(left)

    def _body(self, response: httpx.Response, query: str, reset: float | None) -> Any:
        """The JSON of a successful answer; raises the right error for anything else."""
        code = response.status_code
        shown = f"HTTP {code} {response.reason_phrase}".rstrip()
        if code in (401, 403):
            raise BadQuery(
                f"{self._where}: Datadog refused the API key or the application key ({shown}); check "
                "apiKey and applicationKey (the application key needs the timeseries_query permission)"
            )
        if code == 429:
            wait = "" if reset is None else f"; the limit resets in {math.ceil(reset)} s"
            raise SourceUnavailable(
                f"{self._where}: rate limited by Datadog ({shown}){wait}; will retry next tick"
            )
        if code >= 500:
            detail = _errors(response)
            raise SourceUnavailable(
                f"{self._where}: {shown}{': ' + detail if detail else ''}; will retry next tick"
            )
        if code == 404:
            raise BadQuery(f"{self._where}: no Datadog API at {self._endpoint} ({shown}); check site or url")
        if 300 <= code < 400:
            where = response.headers.get("location", "?")
            raise BadQuery(
                f"{self._where}: redirected to {where} ({shown}); set site, or url to the API itself"
            )
        if 400 <= code < 500:
            detail = _errors(response) or shown
            raise BadQuery(f"{self._where}: Datadog refused query {query!r}: {detail}")
        try:
            body = response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            self._garbled(f"{shown} with a {kind} body, not Datadog JSON (a proxy or login page?)")
        if not isinstance(body, Mapping):
            self._garbled(f"{shown} with JSON that is not an object")
        if body.get("status") == "error" or body.get("errors"):
            detail = body.get("error") or "; ".join(map(str, body.get("errors") or ())) or "an error"
            raise BadQuery(f"{self._where}: Datadog refused query {query!r}: {detail}")
        if code != 200 or not isinstance(body.get("series"), list):
            self._garbled(f"{shown} with JSON that has no `series` list")
        return body

    def _points(self, body: Any, query: str, step: int) -> list[tuple[int, float]]:
        """The (bucket start in epoch seconds, value) of the one series in `body`."""
        series = body["series"]
        if len(series) > 1:
            scopes = [s.get("scope") if isinstance(s, Mapping) else s for s in series[:2]]
            raise BadQuery(
                f"{self._where}: query {query!r} returns {len(series)} series (e.g. {scopes[0]}, "
                f"{scopes[1]}); slo-bot needs one: aggregate with sum: and no by {{...}}"
            )
        points: list[tuple[int, float]] = []
        for item in series:
            if not isinstance(item, Mapping) or not isinstance(item.get("pointlist"), list):
                self._garbled("a series has no `pointlist` list")
            interval = item.get("interval")
            if isinstance(interval, int | float) and interval not in (step, step * 1000):
                # Datadog chose a coarser rollup than asked: the points would land in the wrong steps
                self._garbled(f"points {interval} apart, not the {step} s asked")
            for pair in item["pointlist"]:
                try:
                    millis, value = pair
                    stamp = round(float(millis)) // 1000
                    number = None if value is None else float(value)
                except (TypeError, ValueError):
                    self._garbled(f"unreadable point {pair!r}")
                if stamp % step:
                    self._garbled(f"a point at {stamp} is off the {step} s rollup grid")
                if number is not None and math.isfinite(number):  # null: no data in that bucket
                    points.append((stamp, number))
        return points

    def _garbled(self, what: str) -> NoReturn:
        raise SourceUnavailable(f"{self._where}: garbled answer: {what}; will retry next tick")


def _errors(response: httpx.Response) -> str:
    """Datadog's own `errors` (or `error`) from a JSON error body, else nothing."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, Mapping):
        return ""
    errors = body.get("errors")
    if isinstance(errors, list):
        return "; ".join(map(str, errors))
    return str(body.get("error") or "")

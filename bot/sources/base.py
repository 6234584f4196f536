"""The contract every monitoring source keeps, and the two ways a source can fail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bot.domain import DataSource, MetricQuery

if TYPE_CHECKING:
    import httpx


class SourceError(Exception):
    """A source could not answer. `str(err)` is written for the person reading the log or the CLI."""


class SourceUnavailable(SourceError):
    """Timeout, connection failure, 5xx, 429 or a garbled answer: retry on the next tick.

    Nothing is stored for the range asked, so an outage never counts as good or bad.
    """


class BadQuery(SourceError):
    """The source understood the request and refused it (syntax error, wrong type, auth): a human must
    fix the configuration. Retrying will not help."""


class PartialAnswer(SourceError):
    """The source answered but warned that the answer may miss data (a Thanos or Mimir partial
    response, a query warning). `values` is what it gave: kept, marked incomplete, asked again."""

    def __init__(
        self,
        message: str,
        values: dict[datetime, float],
        groups: dict[tuple[str, ...], dict[datetime, float]] | None = None,
    ) -> None:
        super().__init__(message)
        self.values = values
        # of a grouped query, by member
        self.groups: dict[tuple[str, ...], dict[datetime, float]] = {(): values} if groups is None else groups


class Source(Protocol):
    """A monitoring API that answers range queries."""

    def fetch_range(
        self,
        metric: MetricQuery,
        *,
        counter: bool,
        start: datetime,
        end: datetime,
        step: timedelta,
    ) -> dict[datetime, float]:
        """Return one value per step end `t` in (start, end] (times that are multiples of `step`).

        For a counter metric the value is the number of events in (t - step, t]; for a gauge, the
        value of the query at `t` with its window set to `step`. Steps with no data are absent from
        the result, never zero.
        """
        ...


@runtime_checkable
class GroupedSource(Protocol):
    """A source that answers one range query per value of some labels (grouped SLOs)."""

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
        """`Source.fetch_range` per member: keys are the values of the labels `by`, in order ("" for a
        series without the label). A member with no series in the range is absent."""
        ...


class HttpSourceType(Protocol):
    """What `bot.sources.HTTP_SOURCES` holds for a source spoken to over HTTP: its class (built with
    the DataSource and an `httpx.Client`) and the checks `validate` runs without sending anything."""

    def __call__(self, datasource: DataSource, client: httpx.Client) -> Source: ...

    @staticmethod
    def connection_problems(connection: Mapping[str, Any]) -> list[str]:
        """`field: message` per problem of the DataSource's connectionDetails."""
        ...

    @staticmethod
    def client_options(connection: Mapping[str, Any]) -> dict[str, Any]:
        """`httpx.Client(**options)` for the DataSource; ValueError when its connection is invalid."""
        ...

    @staticmethod
    def query_problem(query: str, *, counter: bool) -> str | None:
        """Why the source cannot run `query`, or None (checked offline, by `validate`)."""
        ...


# DataSource `spec.type` values slo-bot can read; `bot.sources.SOURCES` maps each to its implementation.
KNOWN_SOURCE_TYPES = frozenset({"Prometheus", "Thanos", "Mimir", "VictoriaMetrics", "Datadog", "Simulated"})

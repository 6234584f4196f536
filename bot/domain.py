"""Domain types shared by every layer: SLOs as the catalogue defines them, and counts read from sources.

Frozen dataclasses, no I/O. Windows are `timedelta`, instants UTC-aware `datetime`, fractions `*_ratio`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


class BudgetingMethod(enum.StrEnum):
    OCCURRENCES = "Occurrences"
    TIMESLICES = "Timeslices"
    RATIO_TIMESLICES = "RatioTimeslices"


class Op(enum.StrEnum):
    LT = "lt"
    LTE = "lte"
    GT = "gt"
    GTE = "gte"

    def holds(self, left: float, right: float) -> bool:
        if self is Op.LT:
            return left < right
        if self is Op.LTE:
            return left <= right
        if self is Op.GT:
            return left > right
        return left >= right


class IndicatorKind(enum.StrEnum):
    RATIO = "ratio"  # good/total or bad/total event counts
    RAW = "raw"  # a precomputed ratio series
    THRESHOLD = "threshold"  # a value compared with each objective's op/value


@dataclass(frozen=True)
class DataSource:
    """A monitoring API: `type` picks the implementation, `connection` is its connectionDetails."""

    name: str
    type: str
    connection: Mapping[str, Any] = field(default_factory=dict, repr=False)  # holds credentials


@dataclass(frozen=True)
class MetricQuery:
    """One series an indicator reads: the query text in the source's own language."""

    source: DataSource
    query: str
    spec: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Indicator:
    name: str
    kind: IndicatorKind
    counter: bool = True
    good: MetricQuery | None = None
    bad: MetricQuery | None = None
    total: MetricQuery | None = None
    raw: MetricQuery | None = None
    raw_type: str = "success"  # "success": raw is good/total; "failure": raw is bad/total
    threshold: MetricQuery | None = None


@dataclass(frozen=True)
class TimeWindow:
    """The SLO period. Rolling windows slide with `now`; calendar windows restart every `duration`."""

    spec: str  # as written: "30d", "4w", "1M"
    duration: timedelta  # nominal length (1M = 30d, 1Q = 90d, 1Y = 365d)
    is_rolling: bool = True
    calendar_start: datetime | None = None  # naive wall-clock time in `time_zone`
    time_zone: str = "UTC"


@dataclass(frozen=True)
class Objective:
    target_ratio: float
    display_name: str | None = None
    op: Op | None = None  # threshold metrics: a value is good when `value op self.value`
    value: float | None = None
    timeslice_target_ratio: float | None = None
    timeslice_window: timedelta | None = None


@dataclass(frozen=True)
class AlertCondition:
    name: str
    severity: str
    op: Op
    threshold: float
    lookback_window: timedelta
    alert_after: timedelta


@dataclass(frozen=True)
class NotificationTarget:
    name: str
    target: str  # "slack", "pagerduty", "opsgenie", "squadcast", "webhook", ...
    description: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict, repr=False)  # holds keys and URLs


@dataclass(frozen=True)
class AlertPolicy:
    name: str
    conditions: tuple[AlertCondition, ...]
    targets: tuple[NotificationTarget, ...] = ()
    alert_when_no_data: bool = False
    alert_when_resolved: bool = True
    alert_when_breaching: bool = True
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SLO:
    name: str
    service: str
    indicator: Indicator
    objective: Objective
    window: TimeWindow
    budgeting_method: BudgetingMethod = BudgetingMethod.OCCURRENCES
    alert_policies: tuple[AlertPolicy, ...] = ()
    page_targets: tuple[NotificationTarget, ...] = ()  # every page also goes here (slo-bot/incident-targets)
    display_name: str | None = None
    description: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, Any] = field(default_factory=dict)
    # a member of a grouped SLO: its definition's name and its label values (`bot.groups`)
    member_of: str | None = None
    group: tuple[tuple[str, str], ...] = ()
    # a composite SLO (objectives with their own indicators): its weighted parts (`bot.composite`)
    parts: tuple[Part, ...] = ()


@dataclass(frozen=True)
class Part:
    """One objective of a composite SLO: an SLO of its own (its indicator and objective, the
    composite's window and method, `member_of` the composite) and its `compositeWeight`."""

    slo: SLO
    weight: float


@dataclass(frozen=True, slots=True)  # slots: a grouped SLO's first tick holds millions of them
class Bucket:
    """Event counts of one SLO over [start, start + resolution).

    `covered` is the time of the bucket the source had data for: a gap is stored with covered 0, so it
    counts as no data, never as good. Slice fields serve the Timeslices budgeting methods.
    """

    start: datetime
    resolution: timedelta
    good: float = 0.0
    total: float = 0.0
    covered: timedelta = timedelta(0)
    good_slices: float = 0.0
    slices: float = 0.0
    ratio_sum: float = 0.0

    @property
    def end(self) -> datetime:
        return self.start + self.resolution

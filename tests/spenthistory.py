"""Known budget histories written straight into the store, and the dates they must give: a rolling SLO
spent for two days, a calendar month spent by one bad hour, and an SLO with budget left whose policy
has no 6h window. Their source is a Prometheus nobody serves (port 9): a bot's ticks fail and leave
this state alone, while the definitions build.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import Session

from bot.buckets import floor_time
from bot.domain import Bucket
from bot.store import db, history, repo
from bot.store.models import AlertRecord, SnapshotRecord
from tests.slack.harness import apply_frozen

MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)

_SLO = """
apiVersion: openslo/v1
kind: SLO
metadata: {{name: {name}}}
spec:
  service: payments
  indicator:
    metadata: {{name: {name}-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: sim, spec: {{query: 'requests_total{{code!~"5.."}}'}}}}}}
        total: {{metricSource: {{metricSourceRef: sim, spec: {{query: requests_total}}}}}}
  timeWindow: [{window}]
  budgetingMethod: Occurrences
  objectives: [{{target: {target}}}]
{extra}"""

ONE_HOUR_POLICY = """  alertPolicies:
    - kind: AlertPolicy
      metadata: {name: fast-only}
      spec:
        conditions:
          - kind: AlertCondition
            metadata: {name: fast}
            spec:
              severity: page
              condition: {kind: burnrate, op: gt, threshold: 14.4, lookbackWindow: 1h, alertAfter: 2m}
"""

CATALOGUE = "---".join(
    [
        """
apiVersion: openslo/v1
kind: DataSource
metadata: {name: sim}
spec:
  type: Prometheus
  connectionDetails: {url: "http://127.0.0.1:9"}
""",
        _SLO.format(name="rolling-spent", window="{duration: 7d, isRolling: true}", target=0.99, extra=""),
        _SLO.format(
            name="calendar-spent",
            window="{duration: 1M, isRolling: false, "
            "calendar: {startTime: 2024-01-01 00:00:00, timeZone: UTC}}",
            target=0.99,
            extra="",
        ),
        _SLO.format(
            name="budget-left",
            window="{duration: 30d, isRolling: true}",
            target=0.999,
            extra=ONE_HOUR_POLICY,
        ),
    ]
)


@dataclass(frozen=True)
class Expected:
    """What the three SLOs' outlooks are, as of `now` (their snapshots' time)."""

    now: datetime
    rolling_spent_since: datetime  # the spent-budget signal's firing: before every snapshot kept
    rolling_back_at: datetime  # the bad hour 5 days ago leaves the 7-day window
    calendar_spent_since: datetime  # the end of the month's one bad hour
    calendar_back_at: datetime  # the next month
    left_average_at: datetime  # 0.6 left at the 30-day average burn 0.4: 45 days
    left_6h_at: datetime  # at the 6h burn of 2.0 (summed from the buckets): 9 days


def month_start(at: datetime) -> datetime:
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _snapshot(slo_id: int, at: datetime, remaining: float, burns: dict[str, float]) -> dict[str, object]:
    return {
        "slo_id": slo_id,
        "evaluated_at": at,
        "sli": 0.99,
        "good": 1.0,
        "total": 1.0,
        "consumed_ratio": 1 - remaining,
        "remaining_ratio": remaining,
        "burn_rates": json.dumps(burns),
        "exhaustion_at": None,
        "state": "exhausted" if remaining <= 0 else "burning",
        "coverage_ratio": 1.0,
        "error": None,
    }


def write(database_url: str, tmp_path: Path) -> Expected:
    """Apply the catalogue and store the histories; returns what their outlooks must say."""
    apply(database_url, tmp_path)
    return store(database_url)


def apply(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "spent.yaml").write_text(CATALOGUE)
    apply_frozen(database_url, tmp_path / "spent.yaml")


def store(database_url: str) -> Expected:
    """Store the histories of the applied catalogue; returns what their outlooks must say."""
    # the next minute, so the snapshots are newer than any a bot evaluated before; and two whole hours
    # into the month at least (the calendar SLO's bad hour). A later `now` is harmless: every date is
    # said relative to the snapshots' time. Buckets end at `base`; the snapshots are half a minute
    # later, so a projection a microsecond short of a minute still shows that minute.
    real = floor_time(datetime.now(UTC), MINUTE) + MINUTE
    base = max(real, month_start(real) + 2 * HOUR + 10 * MINUTE)
    now = base + 30 * timedelta(seconds=1)
    hour = floor_time(now, HOUR)
    engine = db.make_engine(database_url)
    with Session(engine) as session:
        ids = {r.name: r.id or 0 for r in repo.list_slos(session=session)}

        # rolling-spent, 99 % over 7 days: 1,000 events an hour; 1,000 failed in the hour 5 days ago and
        # 863.12 a day ago, 1,863.12 of an allowed 1,680: -10.9 %. Spent in every snapshot of the last
        # 6 hours; its spent-budget signal fired two days ago.
        slo_id = ids["rolling-spent"]
        bad = {hour - 120 * HOUR: 1000.0, hour - 24 * HOUR: 863.12}
        _hourly(session, slo_id, hour - 168 * HOUR, hour, 1000.0, bad)
        burns = {"5m": 0.0, "30m": 0.0, "1h": 0.0, "2h": 0.0, "6h": 0.0, "1d": 3.6, "3d": 1.2}
        rows = [_snapshot(slo_id, now - i * 10 * MINUTE, -0.109, burns) for i in range(35, -1, -1)]
        fired = now - 2 * DAY
        session.add(AlertRecord(slo_id=slo_id, key="budget-0", state="firing", since=fired, fired_at=fired))

        # calendar-spent, 99 % per calendar month (UTC): 600 events an hour; the last whole hour lost
        # 5 % of all the month's events: spent from its end, -400 % left at the end
        slo_id = ids["calendar-spent"]
        start = month_start(now)
        events = 600.0 * ((hour - start) // HOUR) + 10.0 * ((base - hour) // MINUTE)
        _hourly(session, slo_id, start, hour, 600.0, {hour - HOUR: 0.05 * events})
        _minutes(session, slo_id, hour, base, 10.0, 0.0)
        rows.append(_snapshot(slo_id, now, -4.0, {"1h": 0.0, "6h": 0.0}))

        # budget-left, 99.9 % over 30 days, 0.6 left (a 30-day average burn of 0.4); its policy reads
        # the 1h window only: the 6h burn is summed from its minutes, 0.2 % failed = 2.0x
        slo_id = ids["budget-left"]
        _minutes(session, slo_id, base - 7 * HOUR, base, 1000.0, 2.0)
        rows.append(_snapshot(slo_id, now, 0.6, {"5m": 2.0, "1h": 2.0}))
        session.execute(insert(SnapshotRecord), rows)
        session.commit()
    engine.dispose()
    return Expected(
        now=now,
        rolling_spent_since=fired,
        rolling_back_at=hour - 119 * HOUR + 7 * DAY,
        calendar_spent_since=hour,
        calendar_back_at=(start + 32 * DAY).replace(day=1),
        left_average_at=now + 45 * DAY,
        left_6h_at=now + 9 * DAY,
    )


def _hourly(
    session: Session, slo_id: int, start: datetime, end: datetime, total: float, bad: dict[datetime, float]
) -> None:
    buckets = []
    at = start
    while at < end:
        buckets.append(Bucket(at, HOUR, good=total - bad.get(at, 0.0), total=total, covered=HOUR))
        at += HOUR
    history.replace_buckets(session=session, slo_id=slo_id, start=start, end=end, buckets=buckets)


def _minutes(session: Session, slo_id: int, start: datetime, end: datetime, total: float, bad: float) -> None:
    count = (end - start) // MINUTE
    buckets = [
        Bucket(start + i * MINUTE, MINUTE, good=total - bad, total=total, covered=MINUTE)
        for i in range(count)
    ]
    history.replace_buckets(session=session, slo_id=slo_id, start=start, end=end, buckets=buckets)

"""A known week written straight into the store for `slo-bot report` and `/slo report`: three SLOs of
two services, their buckets, breaches (two resolved and acknowledged, one open, one older than the
week) and one SLO whose evaluations fail. The source is a Prometheus nobody serves (port 9)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from bot.buckets import floor_time
from bot.domain import Bucket
from bot.store import db, history, readings, repo
from bot.store.models import BreachRecord, BudgetReadingRecord
from tests.slack.harness import apply_frozen

MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
# what a failing source said: a spreadsheet must not run it, a page must not render it
FAILURE = '=HYPERLINK("http://evil.example") <b>cannot reach it</b>'

_SLO = """
apiVersion: openslo/v1
kind: SLO
metadata: {{name: {name}}}
spec:
  service: {service}
  indicator:
    metadata: {{name: {name}-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{metricSourceRef: nobody, spec: {{query: 'requests_total{{code!~"5.."}}'}}}}}}
        total: {{metricSource: {{metricSourceRef: nobody, spec: {{query: requests_total}}}}}}
  timeWindow: [{window}]
  budgetingMethod: Occurrences
  objectives: [{{target: {target}}}]
"""
CATALOGUE = "---".join(
    [
        """
apiVersion: openslo/v1
kind: DataSource
metadata: {name: nobody}
spec:
  type: Prometheus
  connectionDetails: {url: "http://127.0.0.1:9"}
""",
        _SLO.format(
            name="checkout-availability",
            service="checkout",
            window="{duration: 30d, isRolling: true}",
            target=0.999,
        ),
        _SLO.format(
            name="checkout-latency",
            service="checkout",
            window="{duration: 1M, isRolling: false, "
            "calendar: {startTime: 2024-01-01 00:00:00, timeZone: UTC}}",
            target=0.99,
        ),
        _SLO.format(
            name="search-availability",
            service="search",
            window="{duration: 7d, isRolling: true}",
            target=0.995,
        ),
    ]
)


@dataclass(frozen=True)
class Week:
    """What was written, so a test can say what the report must show."""

    written_at: datetime
    reading_at: datetime  # checkout-availability's daily reading before the week began: 80 % left
    latency_events: float  # checkout-latency's events this month (minutes of 10)
    latency_bad: float


def apply(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "review.yaml").write_text(CATALOGUE)
    apply_frozen(database_url, tmp_path / "review.yaml")


def store(database_url: str) -> Week:
    """checkout-availability (99.9 %, 30 days): 3 days of 1,000 events an hour, 45 failed (30 in the
    hour 50 h ago, 10 20 h ago, 5 2 h ago): SLI 99.9375 %, 62.5 % of the budget spent in the week,
    37.5 % left; its breaches: #A 50 h ago (page, acknowledged after 4 min, 30/72 of the budget), #B
    20 h ago (ticket, after 10 min, 10/72), #C 2 h ago (page, open, not acknowledged: 5/72 so far),
    and one 8 days ago, outside the week; its daily readings say 80 % left 2 hours before the week.
    checkout-latency (99 % a calendar month): the last 3 hours (or the month so far) at 10 events a
    minute, 1 failed in each of its last 10 minutes.
    search-availability: no data, its evaluations fail since 30 minutes ago."""
    now = datetime.now(UTC)
    hour, minute = floor_time(now, HOUR), floor_time(now, MINUTE)
    engine = db.make_engine(database_url)
    with Session(engine) as session:
        records = {r.name: r for r in repo.list_slos(session=session)}
        availability = records["checkout-availability"].id or 0
        bad = {hour - 50 * HOUR: 30.0, hour - 20 * HOUR: 10.0, hour - 2 * HOUR: 5.0}
        buckets = [
            Bucket(at, HOUR, good=1000.0 - bad.get(at, 0.0), total=1000.0, covered=HOUR)
            for at in (hour - 72 * HOUR + k * HOUR for k in range(72))
        ]
        history.replace_buckets(
            session=session, slo_id=availability, start=hour - 72 * HOUR, end=hour, buckets=buckets
        )
        breaches = [
            ("page", hour - 50 * HOUR, hour - 49 * HOUR, 4 * MINUTE, 30 / 72),
            ("ticket", hour - 20 * HOUR, hour - 19 * HOUR, 10 * MINUTE, 10 / 72),
            ("page", hour - 2 * HOUR, None, None, None),
            ("page", hour - 8 * DAY, hour - 8 * DAY + HOUR, MINUTE, 0.5),
        ]
        for peak, opened, resolved, acked_after, spent in breaches:
            session.add(
                BreachRecord(
                    slo_id=availability,
                    kind="burn",
                    severity=peak,
                    peak=peak,
                    state="firing" if resolved is None else "resolved",
                    opened_at=opened,
                    resolved_at=resolved,
                    acknowledged_by=None if acked_after is None else "U0ONCALL",
                    acknowledged_at=None if acked_after is None else opened + acked_after,
                    spent_ratio=spent,
                )
            )

        # its daily readings: 80 % left 2 hours before the week began, 90 % 30 hours before
        reading_at = now - 7 * DAY - 2 * HOUR
        for at, left in ((reading_at, 0.8), (now - 7 * DAY - 30 * HOUR, 0.9)):
            session.add(
                BudgetReadingRecord(
                    slo_id=availability, day_s=readings.day_of(at), evaluated_at=at, remaining_ratio=left
                )
            )

        latency = records["checkout-latency"].id or 0
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        start = max(month, minute - 3 * HOUR)
        count = (minute - start) // MINUTE
        minutes = [
            Bucket(start + k * MINUTE, MINUTE, good=10.0 - (k >= count - 10), total=10.0, covered=MINUTE)
            for k in range(count)
        ]
        history.replace_buckets(session=session, slo_id=latency, start=start, end=minute, buckets=minutes)

        search = records["search-availability"]
        repo.record_failure(
            session=session,
            slo_id=search.id or 0,
            at=now - 30 * MINUTE,
            kind="source_unavailable",
            why=FAILURE,
        )
        session.commit()
    engine.dispose()
    return Week(
        written_at=now, reading_at=reading_at, latency_events=10.0 * count, latency_bad=float(min(count, 10))
    )

"""The evaluation schedule: one APScheduler job, coalesced, never overlapping itself."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

# Evaluate a few seconds after each interval boundary: the newest minute's samples have landed.
SETTLE_DELAY = timedelta(seconds=5)


def aligned_start(interval: timedelta, now: datetime, delay: timedelta = SETTLE_DELAY) -> datetime:
    """The first interval boundary (plus `delay`) at or before `now`: ticks land on round times."""
    step = interval.total_seconds()
    boundary = datetime.fromtimestamp(now.timestamp() // step * step, UTC)
    return boundary + (delay if delay < interval else timedelta(0))


def start_scheduler(
    tick: Callable[[], object],
    interval: timedelta,
    *,
    align: bool = True,
    now: datetime | None = None,
) -> BackgroundScheduler:
    """Run `tick` now and then every `interval`.

    A tick that overruns its interval is never started twice (`max_instances=1`); ticks missed
    meanwhile collapse into one (`coalesce`), so a slow source cannot make evaluations pile up.
    """
    now = now or datetime.now(UTC)
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        tick,
        IntervalTrigger(
            seconds=interval.total_seconds(),
            start_date=aligned_start(interval, now) if align else now,
            timezone=UTC,
        ),
        id="evaluate",
        name="evaluate every SLO",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=max(1, int(interval.total_seconds())),
        next_run_time=now,
    )
    scheduler.start()
    return scheduler

"""The evaluation schedule: one APScheduler job, coalesced, never overlapping itself."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)

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
    scheduler = BackgroundScheduler(timezone=UTC, logger=_apscheduler_log())
    scheduler.add_job(
        _timed(tick, interval),
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


class _NoSkipWarning(logging.Filter):
    """APScheduler warns each time a tick falls due while the last one still runs; `_timed` says it
    once per overrun instead, in words that tell an expected slow first tick from a real problem."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in str(record.msg)


def _apscheduler_log() -> logging.Logger:
    """The scheduler's own logger: warnings and errors only (its INFO is a line per job run)."""
    logger = logging.getLogger(f"{__name__}.apscheduler")
    logger.setLevel(logging.WARNING)
    if not any(isinstance(f, _NoSkipWarning) for f in logger.filters):
        logger.addFilter(_NoSkipWarning())
    return logger


def _timed(tick: Callable[[], object], interval: timedelta) -> Callable[[], object]:
    """`tick`, reporting a run longer than `interval` (the ticks due meanwhile are skipped)."""
    first = True

    def run() -> object:
        nonlocal first
        started = time.monotonic()
        try:
            return tick()
        finally:
            elapsed = time.monotonic() - started
            step = interval.total_seconds()
            if elapsed > step:
                skipped = int(elapsed // step)
                if first:  # expected: it backfills every SLO's window from its source
                    log.info(
                        "the first evaluation took %.1f s (it backfills each SLO's window from its "
                        "source); the %d tick(s) due meanwhile were skipped",
                        elapsed,
                        skipped,
                    )
                else:
                    log.warning(
                        "an evaluation took %.1f s, longer than its interval (%g s): %d tick(s) were "
                        "skipped; slow sources or too many SLOs for SLO_BOT_CONCURRENCY?",
                        elapsed,
                        step,
                        skipped,
                    )
            first = False

    return run

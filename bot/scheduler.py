"""The evaluation schedule: one APScheduler job, coalesced, never overlapping itself."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

log = logging.getLogger(__name__)

# Evaluate a few seconds after each interval boundary: the newest minute's samples have landed.
SETTLE_DELAY = timedelta(seconds=5)


def aligned_start(interval: timedelta, now: datetime, delay: timedelta = SETTLE_DELAY) -> datetime:
    """The first interval boundary (plus `delay`) at or before `now`: ticks land on round times."""
    step = interval.total_seconds()
    boundary = datetime.fromtimestamp(now.timestamp() // step * step, UTC)
    return boundary + (delay if delay < interval else timedelta(0))


class AlignedTrigger(BaseTrigger):  # type: ignore[misc]
    """At once, then on every `start + k * interval`.

    APScheduler's IntervalTrigger counts from the previous run, so a first run moved to "now" puts
    every later run off the boundaries, at each replica's own start time plus a multiple of the
    interval; replicas that share a tick's SLOs must tick together, so this trigger returns to the
    boundaries after the first run (hand-written: none of APScheduler's triggers does both)."""

    def __init__(self, interval: timedelta, start: datetime, first: datetime) -> None:
        self.interval = interval
        self.start = start
        self.first = first

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        if previous_fire_time is None:
            return self.first
        elapsed = previous_fire_time - self.start
        steps = elapsed // self.interval + 1
        return self.start + steps * self.interval

    def __str__(self) -> str:
        return f"aligned[{self.interval}]"


def start_scheduler(
    tick: Callable[[], object],
    interval: timedelta,
    *,
    align: bool = True,
    now: datetime | None = None,
) -> BackgroundScheduler:
    """Run `tick` now and then every `interval` (on the interval's boundaries, when `align`).

    A tick that overruns its interval is never started twice (`max_instances=1`); ticks missed
    meanwhile collapse into one (`coalesce`), so a slow source cannot make evaluations pile up.
    """
    now = now or datetime.now(UTC)
    scheduler = BackgroundScheduler(timezone=UTC, logger=_apscheduler_log())
    scheduler.add_job(
        _timed(tick, interval),
        AlignedTrigger(interval, aligned_start(interval, now) if align else now, now),
        id="evaluate",
        name="evaluate every SLO",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=max(1, int(interval.total_seconds())),
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

"""The schedule never overlaps itself: a slow tick makes later ticks wait, never pile up."""

import threading
import time
from datetime import UTC, datetime, timedelta

from bot.scheduler import aligned_start, start_scheduler


def test_a_slow_tick_is_never_run_twice_at_once_and_missed_runs_coalesce() -> None:
    running = 0
    most = 0
    runs = 0
    lock = threading.Lock()

    def slow_tick() -> None:
        nonlocal running, most, runs
        with lock:
            running += 1
            runs += 1
            most = max(most, running)
        time.sleep(0.35)  # a source that answers slower than the interval
        with lock:
            running -= 1

    scheduler = start_scheduler(slow_tick, timedelta(seconds=0.1), align=False)
    time.sleep(1.5)
    scheduler.shutdown(wait=True)
    assert most == 1
    assert 3 <= runs <= 5  # about 1.5 s / 0.35 s, not the 15 the interval would ask for


def test_ticks_land_on_round_times_after_a_settle_delay() -> None:
    now = datetime(2026, 11, 27, 12, 34, 56, tzinfo=UTC)
    assert aligned_start(timedelta(minutes=1), now) == datetime(2026, 11, 27, 12, 34, 5, tzinfo=UTC)
    assert aligned_start(timedelta(seconds=2), now) == now

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


def test_after_the_first_tick_at_start_every_tick_lands_on_an_interval_boundary() -> None:
    # replicas on one database share each tick's SLOs only if they tick together: on boundaries,
    # not at their own start time plus multiples of the interval
    while time.time() % 1 < 0.3 or time.time() % 1 > 0.5:  # start off the boundary
        time.sleep(0.01)
    started = time.time()
    seen: list[float] = []
    scheduler = start_scheduler(lambda: seen.append(time.time()), timedelta(seconds=1))
    time.sleep(3.6)
    scheduler.shutdown(wait=True)
    assert seen[0] - started < 0.2  # the first tick runs at once
    later = seen[1:]
    assert len(later) >= 3
    assert all(t % 1 < 0.15 for t in later), [round(t % 1, 3) for t in later]

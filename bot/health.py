"""What `GET /healthz` says: whether evaluations keep completing, whether the database takes writes,
and how many SLOs failed their last evaluation (also published as gauges in `/metrics`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session

from bot import jobs
from bot.metrics import METRICS
from bot.store import repo

# No completed evaluation for this many intervals is unhealthy: one slow tick is not, a hung one is.
STALE_INTERVALS = 3
# The failure kinds bot/jobs.py records; each gets a gauge, at 0 too, so a recovery is a series at 0.
FAILURE_KINDS = (jobs.UNAVAILABLE, jobs.BAD_QUERY, jobs.CONFIG, jobs.INTERNAL)
PROBE_TIMEOUT_S = 2  # the Docker HEALTHCHECK allows 5 s for the whole answer


def _wall() -> datetime:
    return datetime.now(UTC)


@dataclass
class Heartbeat:
    """The runner's ticks as health sees them: started, each SLO evaluated, completed or failed."""

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = _wall
    born: float = 0.0
    completed: int = 0
    completed_mono: float | None = None
    completed_at: datetime | None = None
    running_mono: float | None = None
    running_at: datetime | None = None
    progressed_mono: float | None = None
    evaluated: int = 0  # SLOs evaluated by the running (or the last) tick
    failure: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.born = self.monotonic()

    def began(self) -> None:
        with self._lock:
            self.running_mono, self.running_at = self.monotonic(), self.wall()
            self.progressed_mono, self.evaluated = None, 0

    def __call__(self, *args: object, **kwargs: object) -> None:
        """A tick hook (bot/jobs.py `TickHook`): one more SLO evaluated, so the tick is moving."""
        with self._lock:
            self.progressed_mono = self.monotonic()
            self.evaluated += 1

    def ended(self, failure: str | None = None) -> None:
        with self._lock:
            self.running_mono = self.running_at = None
            self.failure = failure
            if failure is None:
                self.completed += 1
                self.completed_mono, self.completed_at = self.monotonic(), self.wall()
        if failure is None:
            METRICS.evaluation_completed(time.time())

    def assess(self, interval: timedelta) -> tuple[str, list[str], dict[str, Any]]:
        """("ok" | "starting" | "unhealthy", reasons, facts) as of now."""
        with self._lock:
            now = self.monotonic()
            limit = STALE_INTERVALS * interval.total_seconds()
            reasons: list[str] = []
            status = "ok"
            facts: dict[str, Any] = {
                "evaluation_interval_seconds": interval.total_seconds(),
                "evaluations_completed": self.completed,
                "last_evaluation_completed_at": _iso(self.completed_at),
                "evaluation_running_since": _iso(self.running_at),
            }
            if self.failure is not None:
                reasons.append(f"the last evaluation failed: {self.failure}")
            if self.completed_mono is not None:
                idle = now - self.completed_mono
                if idle > limit:
                    reasons.append(
                        f"no evaluation has completed for {idle:.0f} s "
                        f"(more than {STALE_INTERVALS} evaluation intervals, {limit:g} s)"
                    )
            else:
                age = now - self.born
                # the first tick backfills every SLO's window: healthy while it keeps evaluating SLOs
                quiet = now - (self.progressed_mono or self.running_mono or self.born)
                if self.running_mono is not None:
                    facts["first_evaluation"] = {"slos_evaluated": self.evaluated}
                if age <= limit or (self.running_mono is not None and quiet <= limit):
                    status = "starting"
                else:
                    reasons.append(
                        f"the first evaluation has not completed in {age:.0f} s since the start "
                        f"and has evaluated no SLO for {quiet:.0f} s "
                        f"(more than {STALE_INTERVALS} evaluation intervals, {limit:g} s)"
                    )
        return ("unhealthy" if reasons else status), reasons, facts


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def publish_failing(counts: Mapping[str, int]) -> None:
    """`slo_bot_slos_failing{kind}`: SLOs whose last evaluation failed, by kind (0 for the others)."""
    METRICS.failing({kind: counts.get(kind, 0) for kind in sorted(set(FAILURE_KINDS) | set(counts))})


def refresh_failing(engine: Engine) -> dict[str, int]:
    """Read the failing SLOs by kind from the database and publish them."""
    with Session(engine) as session:
        counts = repo.failing_by_kind(session=session)
    publish_failing(counts)
    return counts


def probe_database(engine: Engine) -> tuple[int, dict[str, int]]:
    """Read the SLO counts, then prove the database takes a write: an UPDATE of no row, rolled back.

    A read-only database (a replica after a failover, `default_transaction_read_only`, a read-only
    SQLite file) or a revoked grant refuses it; a held write lock makes it wait at most 2 s.
    Raises what the database raised; `_Unreadable` wraps a failure before the write.
    """
    try:
        with Session(engine) as session:
            total = repo.count_slos(session=session)
            counts = repo.failing_by_kind(session=session)
    except Exception as err:
        raise _Unreadable(err) from err
    publish_failing(counts)
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        transaction = conn.begin()
        try:
            if sqlite:  # the engine waits 30 s for SQLite's write lock; health cannot
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {PROBE_TIMEOUT_S * 1000}")
            else:
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = '{PROBE_TIMEOUT_S}s'")
            conn.execute(text("UPDATE slo SET failing_since = failing_since WHERE 1 = 0"))
        finally:
            transaction.rollback()
            if sqlite:
                conn.exec_driver_sql("PRAGMA busy_timeout = 30000")  # what bot/store/db.py sets
                conn.rollback()
    return total, counts


class _Unreadable(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def check(
    engine: Engine, heartbeat: Heartbeat, interval: timedelta, scheduler_running: bool
) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body of `GET /healthz`."""
    status, reasons, facts = heartbeat.assess(interval)
    body: dict[str, Any] = {"status": status, "reasons": reasons}
    if not scheduler_running:
        reasons.append("scheduler stopped")
    try:
        total, counts = probe_database(engine)
    except _Unreadable as err:
        reasons.append(f"database unreachable: {describe(err.cause)}")
    except Exception as err:
        reasons.append(f"database cannot be written: {describe(err)}")
    else:
        body.update(slos=total, slos_failing=sum(counts.values()), slos_failing_by_kind=counts)
    body.update(facts)
    if reasons:
        body["status"] = "unhealthy"
    return (503 if reasons else 200), body


def describe(err: BaseException) -> str:
    """The error's class and its first line (drivers append SQL and links on the next ones)."""
    cause = getattr(err, "orig", None) or err  # SQLAlchemy wraps the driver's error
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__

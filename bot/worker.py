"""A background thread that delivers the outbox entries of some kinds: woken when something is
queued, otherwise asleep until the next entry is due. Slack and the incident tools each run one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from bot.fleet import replica_name
from bot.metrics import METRICS
from bot.store import leases, outbox

log = logging.getLogger(__name__)
PURGE_EVERY = timedelta(hours=1)
KEEP_DONE = timedelta(days=7)  # delivered entries kept this long, for a look after an incident
MAX_ROUNDS = 50  # rounds of one pass; the loop comes back at once when more is due
# how long a replica's claim on an entry lasts: longer than any one call takes (their timeouts are
# 10 s, a few calls per entry), short enough that an entry of a killed replica goes soon after
CLAIM_TTL = timedelta(minutes=2)


class OutboxWorker:
    name = "outbox"
    kinds: Sequence[str] = ()

    def __init__(self, engine: Engine, clock: Callable[[], datetime], replica: str | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.replica = replica or replica_name()  # replicas on one database claim each entry they send
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # nothing is sent before this: the destination asked us to wait (429 Retry-After)
        self.paused_until: datetime | None = None

    def deliver_due(self) -> int:
        """Deliver what is due; returns how many entries were settled.

        Order matters within one alert's entries to one destination (a Slack channel, an incident
        tool): only the first pending one of each is taken, so one that waits holds back the later
        ones. Another destination's never do: entries that wait are not even read (`outbox.due`).
        Rounds repeat while they settle something, so an alert's next entry goes in the same pass."""
        delivered = 0
        for _ in range(MAX_ROUNDS):
            now = self.clock()
            if self.paused_until is not None and now < self.paused_until:
                break
            with Session(self.engine) as session:
                entries = [
                    (e.id or 0, e.channel)
                    for e in outbox.due(
                        session=session, kinds=self.kinds, now=now, paused=list(self.paused_destinations())
                    )
                ]
            settled = 0
            for entry_id, destination in entries:
                if self.paused(destination):  # a 429 earlier in this round
                    continue
                if self._claimed(entry_id, self._deliver):
                    settled += 1
            delivered += settled
            if not settled:
                break
        return delivered

    def _claimed(self, entry_id: int, deliver: Callable[[int], bool]) -> bool:
        """`deliver` the entry under this replica's claim; another replica's entry is left alone."""
        with Session(self.engine) as session:
            taken = outbox.claim(
                session=session, entry_id=entry_id, holder=self.replica, now=self.clock(), ttl=CLAIM_TTL
            )
            session.commit()
        if not taken:  # another replica is delivering it (or just did)
            return False
        try:
            return deliver(entry_id)
        finally:
            with Session(self.engine) as session:
                outbox.release(session=session, entry_id=entry_id, holder=self.replica)
                session.commit()

    def paused_destinations(self) -> dict[str, datetime]:
        """Destinations that asked to wait (a 429's Retry-After), and until when."""
        return {}

    def paused(self, destination: str | None) -> bool:
        """Whether the destination asked to wait (a 429's Retry-After)."""
        return False

    def _deliver(self, entry_id: int) -> bool:
        """Deliver one entry; True when it is settled (done, or failed for good)."""
        raise NotImplementedError

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        METRICS.outbox.watch(self.name, self.engine, self.kinds, self.clock, owner=self)
        self._thread = threading.Thread(target=self._loop, name=f"{self.name}-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        METRICS.outbox.unwatch(self.name, owner=self)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        purged_at: datetime | None = None
        while not self._stop.is_set():
            try:
                self.deliver_due()
                paused = self.paused_destinations()
                with Session(self.engine) as session:
                    upcoming = outbox.next_due_at(session=session, kinds=self.kinds, paused=list(paused))
                    if paused:  # a paused destination's entries are due again when its pause ends
                        upcoming = min([*paused.values(), *([upcoming] if upcoming else [])])
                    now = self.clock()
                    if purged_at is None or now - purged_at > PURGE_EVERY:
                        # one replica of the fleet purges per period (the others' deletes would find nothing)
                        if leases.claim_job(
                            session=session,
                            name=f"purge-{self.name}",
                            holder=self.replica,
                            now=now,
                            every=PURGE_EVERY,
                        ):
                            outbox.purge_done(session=session, kinds=self.kinds, before=now - KEEP_DONE)
                        session.commit()
                        purged_at = now
            except Exception:
                log.exception("%s delivery pass failed", self.name)
                upcoming = None
            wait = 5.0
            now = self.clock()
            if upcoming is not None:
                wait = max(0.05, min(wait, (upcoming - now).total_seconds()))
            if self.paused_until is not None and self.paused_until > now:
                wait = max(wait, (self.paused_until - now).total_seconds())
            self._wake.wait(wait)
            self._wake.clear()

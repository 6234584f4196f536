"""Who this process is among the replicas of one deployment, and the lease it evaluates a tick under."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


def replica_name(env: Mapping[str, str] | None = None) -> str:
    """`SLO_BOT_REPLICA`, else host and process id (in Kubernetes the host is the pod's name)."""
    env = os.environ if env is None else env
    return env.get("SLO_BOT_REPLICA") or f"{socket.gethostname()}:{os.getpid()}"


def gone(holders: set[str], me: str, *, everyone_else: bool = False) -> set[str]:
    """The names among `holders` whose process is gone, so what they hold can be freed at once:
    this replica's own name (a restarted pod keeps its SLO_BOT_REPLICA), a `host:pid` of this host
    whose process no longer runs, and with `everyone_else` (SQLite: this process holds the database
    alone) all of them."""
    if everyone_else:
        return set(holders)
    found = {me} & holders
    host = socket.gethostname()
    for name in holders:
        prefix, _, pid = name.rpartition(":")
        if prefix == host and pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            found.add(name)
    return found


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal sent: asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: running
        return True
    return True


def tick_of(now: datetime, interval: timedelta) -> datetime:
    """The interval boundary at or before `now`: the tick every replica evaluating near `now` agrees on."""
    step = interval.total_seconds()
    return datetime.fromtimestamp(now.timestamp() // step * step, UTC)


@dataclass(frozen=True)
class Lease:
    """One replica's part in one tick: it evaluates the SLOs it takes under `holder` for `tick`.

    Leases last `ttl` past their last renewal: a replica killed mid-tick leaves leases that the
    others take over once they expire (within two intervals, as `ttl` is one interval). `stopping`
    set (SIGTERM) means: take no more, hand back what was taken but not started, finish the rest.
    A replica with nothing left to take waits (polling every `poll`) while others still hold SLOs of
    the tick, up to `wait` from the tick's start: what they hand back or lose is taken in this tick."""

    holder: str
    tick: datetime
    ttl: timedelta
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    stopping: threading.Event = field(default_factory=threading.Event)
    poll: timedelta = timedelta(seconds=0.25)
    started: float = field(default_factory=time.monotonic)

    @property
    def wait_left(self) -> float:
        """Seconds this replica may still wait for SLOs of the tick (most of an interval)."""
        return 0.75 * self.ttl.total_seconds() - (time.monotonic() - self.started)

"""The bot's heartbeat: evaluate every SLO, then hand each alert transition to the notifier."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol, TextIO

from sqlalchemy import Engine

from bot import jobs
from bot.alerting import Transition
from bot.app import SourcePool
from bot.health import Heartbeat, describe, refresh_failing
from bot.messages import AlertFacts, alert_message, render_text
from bot.metrics import METRICS

log = logging.getLogger(__name__)


class Notifier(Protocol):
    def alert(self, outcome: jobs.Outcome, transition: Transition) -> None: ...


@dataclass
class ConsoleNotifier:
    """Console mode: each alert transition printed as the Slack message will read."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    seen: list[Transition] = field(default_factory=list)

    def alert(self, outcome: jobs.Outcome, transition: Transition) -> None:
        self.seen.append(transition)
        if outcome.slo is None:
            return
        facts = replace(AlertFacts.of(transition), spent_ratio=outcome.spent.get(transition.key))
        message = alert_message(outcome.slo, facts, outcome.status)
        print(render_text(message) + "\n", file=self.out, flush=True)


class LogNotifier:
    """Slack modes: messages go through the outbox; the log keeps a line per transition."""

    def alert(self, outcome: jobs.Outcome, transition: Transition) -> None:
        log.info("%s %s %s at %s", outcome.name, transition.key, transition.event, transition.at)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runner:
    engine: Engine
    sources: SourcePool
    notifier: Notifier
    concurrency: int
    clock: Callable[[], datetime] = utc_now
    hooks: Sequence[jobs.TickHook] = ()
    after_tick: Callable[[], None] | None = None  # e.g. wake the Slack delivery
    ticks: int = 0
    heartbeat: Heartbeat = field(default_factory=Heartbeat)  # what /healthz judges
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self) -> list[jobs.Outcome]:
        """One evaluation of every SLO. Never raises: a failed tick is logged and retried next time."""
        with self._lock:
            now = self.clock()
            started = time.monotonic()
            self.heartbeat.began()
            try:
                outcomes = jobs.evaluate_all(
                    self.engine,
                    now=now,
                    sources=self.sources,
                    concurrency=self.concurrency,
                    hooks=(*self.hooks, self.heartbeat),
                )
            except Exception as err:  # the database went away, say: keep the schedule alive
                log.exception("evaluation at %s failed", now)
                self.heartbeat.ended(failure=describe(err))
                return []
            for outcome in outcomes:
                for transition in outcome.transitions:
                    try:
                        self.notifier.alert(outcome, transition)
                    except Exception:
                        log.exception("notifying %s %s failed", outcome.name, transition.key)
            METRICS.observe("slo_bot_evaluation_seconds", time.monotonic() - started)
            self.ticks += 1
            self.heartbeat.ended()
            try:
                refresh_failing(self.engine)
            except Exception:  # the gauges keep their last values; /healthz says what is wrong
                log.exception("counting the failing SLOs failed")
            if self.after_tick is not None:
                self.after_tick()
            return outcomes

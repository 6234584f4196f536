"""Breaches: the alert signals of one SLO grouped into the episodes people handle.

A breach is one episode of one SLO. A `burn` breach opens with the SLO's first firing burn-rate
signal (ticket or page), shows the highest severity firing now, and ends once every burn signal has
cleared and stayed clear for one more evaluation. `no-data` is a breach of its own kind (the SLO is
blind, a different problem). Budget thresholds crossed are notices: on the open burn breach when there
is one, else a `budget` breach of their own that ends when the budget is back above every threshold
it crossed (the signals' hysteresis keeps a wobbling budget from flapping).

Pure: the open breaches, the per-signal transitions of one evaluation (`bot.alerting.step`) and the
signals firing afterwards in; the open breaches after and what changed out. The scheduler (through
the store) and `replay` (in memory) drive the same function.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from bot.alerting import FIRING, Transition
from bot.policy import NO_DATA, PAGE, TICKET

EXHAUSTED = "budget-0"  # the budget-threshold signal of a spent budget (0 % left)

BURN = "burn"
NO_DATA_KIND = "no-data"
BUDGET = "budget"
KINDS = (BURN, NO_DATA_KIND, BUDGET)

# what changed; `RAISED`/`LOWERED`: the headline severity moved, `NOTICE`: budget thresholds crossed
OPENED, RAISED, LOWERED, JOINED, LEFT, NOTICE, CLEARING, RESOLVED = (
    "opened",
    "raised",
    "lowered",
    "joined",
    "left",
    "notice",
    "clearing",
    "resolved",
)


def kind_of(key: str) -> str:
    """The breach kind a signal key belongs to."""
    if key.startswith("budget-"):
        return BUDGET
    if key == NO_DATA:
        return NO_DATA_KIND
    return BURN


def rank(key: str) -> int:
    """How severe a signal is within its kind: a page over a ticket, 0 % left over 25 % left."""
    if key.startswith("budget-"):
        try:
            return 100 - int(key.removeprefix("budget-"))
        except ValueError:
            return 0
    return {TICKET: 1, PAGE: 2}.get(key, 1)


def exhausts(keys: Collection[str]) -> bool:
    """Whether these signals include the spent budget's."""
    return EXHAUSTED in keys


def top(keys: Collection[str]) -> str:
    return max(sorted(keys), key=rank)


@dataclass(frozen=True)
class OpenBreach:
    kind: str
    severity: str  # the headline: the most severe signal firing now
    peak: str  # the most severe it has been
    opened_at: datetime
    firing: frozenset[str]  # its signals firing now (budget: the thresholds crossed)
    clear_since: datetime | None = None  # every signal clear since then; ends at the next evaluation


@dataclass(frozen=True)
class Change:
    at: datetime
    slo: str
    kind: str  # of the breach it belongs to
    event: str  # OPENED, RAISED, ... RESOLVED
    severity: str  # the breach's headline after the change (at RESOLVED: its peak)
    opened_at: datetime
    keys: tuple[str, ...] = ()  # the signals concerned
    transitions: tuple[Transition, ...] = field(default=())  # theirs, this evaluation


def advance(
    slo: str,
    breaches: Mapping[str, OpenBreach],
    transitions: Sequence[Transition],
    firing: Collection[str],
    at: datetime,
) -> tuple[dict[str, OpenBreach], list[Change]]:
    """Move the SLO's open breaches (by kind) after one evaluation whose signal steps made
    `transitions`, leaving the signals `firing` (every key whose alert is firing now)."""
    out = dict(breaches)
    changes: list[Change] = []
    by_key = {t.key: t for t in transitions}

    def change(breach: OpenBreach, event: str, keys: Sequence[str] = (), severity: str | None = None) -> None:
        keys = tuple(keys)
        changes.append(
            Change(
                at,
                slo,
                breach.kind,
                event,
                severity or breach.severity,
                breach.opened_at,
                keys,
                tuple(by_key[k] for k in keys if k in by_key),
            )
        )

    for kind in (BURN, NO_DATA_KIND):
        now_firing = frozenset(k for k in firing if kind_of(k) == kind)
        breach = out.get(kind)
        if breach is None:
            if now_firing:
                headline = top(now_firing)
                breach = OpenBreach(kind, headline, headline, at, now_firing)
                out[kind] = breach
                change(breach, OPENED, sorted(now_firing, key=rank, reverse=True))
            continue
        joined = sorted(now_firing - breach.firing, key=rank, reverse=True)
        left = sorted(breach.firing - now_firing, key=rank, reverse=True)
        if not now_firing:
            if breach.clear_since is not None and at > breach.clear_since:
                del out[kind]
                change(breach, RESOLVED, severity=breach.peak)
            else:
                out[kind] = replace(breach, firing=now_firing, clear_since=breach.clear_since or at)
                change(out[kind], CLEARING, left)
            continue
        headline = top(now_firing)
        after = replace(
            breach,
            severity=headline,
            peak=top({breach.peak, headline}),
            firing=now_firing,
            clear_since=None,
        )
        out[kind] = after
        if rank(headline) > rank(breach.severity):
            change(after, RAISED, [headline])
            joined = [k for k in joined if k != headline]
        elif rank(headline) < rank(breach.severity):
            change(after, LOWERED, [breach.severity])
            left = [k for k in left if k != breach.severity]
        if joined:
            change(after, JOINED, joined)
        if left:
            change(after, LEFT, left)

    crossed = frozenset(k for k in firing if kind_of(k) == BUDGET)
    new = sorted((t.key for t in transitions if kind_of(t.key) == BUDGET and t.event == FIRING), key=rank)
    notice = out.get(BUDGET)
    if notice is not None:
        if crossed:
            headline = top(crossed)
            notice = replace(notice, severity=headline, peak=top({notice.peak, headline}), firing=crossed)
            out[BUDGET] = notice
        else:
            del out[BUDGET]  # back above every threshold it crossed, by the margin
            change(notice, RESOLVED, severity=notice.peak)
            notice = None
    if new:
        if BURN in out:
            change(out[BURN], NOTICE, new)  # in the thread of the breach that is burning it
        elif notice is not None:
            change(notice, NOTICE, new)
        else:
            headline = top(crossed or new)
            out[BUDGET] = OpenBreach(BUDGET, headline, headline, at, crossed or frozenset(new))
            change(out[BUDGET], OPENED, new)
    return out, changes

"""What a breach change says in the breach's thread: the same words in Slack and in the terminal.

Reads the store where a note needs it (what the breach cost, when a spent budget comes back); runs
inside the evaluation's transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session

from bot import breaches, episodes, exhaustion
from bot.breaches import Change
from bot.jobs import Tick
from bot.messages import budget_level, exhausted_meaning, label, percent, utc_time
from bot.store.models import BreachRecord
from bot.store.repo import utc

# A signal joining or leaving an open breach is said in its thread at most this often: a flapping
# ticket must not write a line a minute (the message itself always shows the signals as they are).
SIGNAL_NOTE_INTERVAL = timedelta(minutes=10)


def thread_note(
    session: Session,
    tick: Tick,
    change: Change,
    breach: BreachRecord,
    time: Callable[[datetime], str] = utc_time,
) -> str:
    """The thread line a change calls for ("" for none: the updated message says it all)."""
    event, now = change.event, tick.now
    keys = ", ".join(label(k) for k in change.keys)
    reason = "; ".join(t.reason for t in change.transitions if t.reason)
    if event in (breaches.RAISED, breaches.LOWERED, breaches.JOINED, breaches.LEFT):
        # a flapping signal must not write a line a minute: the message always shows the signals
        last = utc(breach.signal_noted_at)
        if last is not None and now - last < SIGNAL_NOTE_INTERVAL:
            return ""
        breach.signal_noted_at = now
        session.add(breach)
        if event == breaches.RAISED:
            return f"Raised to {label(change.severity)}" + (f": {reason}." if reason else ".")
        if event == breaches.JOINED:
            return f"{keys} fired too" + (f": {reason}." if reason else ".")
        return f"{keys} cleared; {label(change.severity)} still firing."
    if event == breaches.NOTICE:
        return budget_notice(session, tick, change, time)
    if event == breaches.RESOLVED and breach.kind == breaches.BURN:
        episode = episodes.episode_of(session, tick.slo, breach, now)  # measured by the evaluation
        return f"Resolved. Budget impact: this breach {episodes.impact_text(episode, tick.slo.window.spec)}."
    return ""


def budget_notice(
    session: Session, tick: Tick, change: Change, time: Callable[[datetime], str] = utc_time
) -> str:
    """Budget thresholds crossed (one or several at once): what is left, and what it means."""
    left = percent(tick.assessment.status.remaining_ratio)
    levels = " and ".join(budget_level(k) for k in change.keys if k != breaches.EXHAUSTED)
    if not breaches.exhausts(change.keys):
        return f"Budget notice: the error budget fell below {levels} ({left} left)."
    passed = f" (below {levels} too)" if levels else ""
    text = f"Budget notice: the error budget is exhausted{passed}: {left} left."
    back = exhaustion.budget_back_at(session, tick.slo, tick.record.id or 0, tick.now)
    return text + " " + exhausted_meaning(tick.slo, back, time)

"""What a breach's conversation hears of maintenance windows: one note when a window of its SLO
starts while the breach is open (from then on its events count neither as good nor as bad).

Runs inside the evaluation's transaction, on the windows the tick read once for every SLO.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from bot.adjustments import current_and_next
from bot.jobs import Tick
from bot.messages import utc_time
from bot.mrkdwn import escape
from bot.store import breaches as breach_store
from bot.store.models import BreachEventRecord, BreachRecord

EVENT = "maintenance"


def window_notes(session: Session, tick: Tick) -> list[tuple[BreachRecord, str]]:
    """The notes to say now, each once per breach and window occurrence (kept in the breach's trail)."""
    if not tick.open:
        return []
    current, _ = current_and_next(tick.exclusions.adjustments, tick.slo, tick.now)
    if not current:  # (most ticks: nothing to say, nothing to read)
        return []
    out: list[tuple[BreachRecord, str]] = []
    for breach in tick.open:
        assert breach.id is not None
        said = set(
            session.exec(
                select(BreachEventRecord.detail).where(
                    col(BreachEventRecord.breach_id) == breach.id, col(BreachEventRecord.event) == EVENT
                )
            ).all()
        )
        for adjustment, (start, end) in current:
            key = f"{adjustment.name} {start.isoformat()}"
            if key in said:
                continue
            breach_store.add_event(session=session, breach_id=breach.id, at=tick.now, event=EVENT, detail=key)
            why = f" ({escape(adjustment.description)})" if adjustment.description else ""
            out.append(
                (
                    breach,
                    f"🛠 Maintenance window {adjustment.name}{why} started at {utc_time(start)}, until "
                    f"{utc_time(end)}: its events count neither as good nor as bad, and open no breach.",
                )
            )
    return out

"""A composite SLO's parts in the store: their rows, and the composite's counts from their buckets.

A part is a row of its own (`group_id` the composite's, `group_key` its label, like a grouped
SLO's member) that holds its buckets and snapshots; it has no lease, signals or breaches: the
composite is fetched, stored and evaluated as one, in its own transaction (`bot.evaluation`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlmodel import Session

from bot import composite, groups, policy, status
from bot.adjustments import Interval
from bot.budget import Status, WindowCounts
from bot.catalogue import CatalogueError
from bot.catalogue.stored import slo_of
from bot.domain import SLO
from bot.store import adjustments, history, repo
from bot.store import groups as group_store
from bot.store.models import SLORecord


def records(session: Session, record: SLORecord, slo: SLO, now: datetime) -> list[SLORecord]:
    """The rows of `slo`'s parts, in its order; those missing are added (the first evaluation, or
    after a change of queries discarded them with the history)."""
    assert record.id is not None
    found = {m.name: m for m in group_store.members(session=session, group_ids=[record.id])[record.id]}
    rows = []
    for part in slo.parts:
        row = found.get(part.slo.name)
        if row is None:
            label = groups.value_of(part.slo.name)
            row = group_store.add_member(
                session=session, definition=record, name=part.slo.name, key=[label], now=now
            )
            session.flush()
        rows.append(row)
    return rows


def counts(
    session: Session,
    rows: Sequence[SLORecord],
    slo: SLO,
    end: datetime,
    windows: Sequence[timedelta],
    excluded: Sequence[Interval] = (),
) -> tuple[dict[timedelta, WindowCounts], list[Mapping[timedelta, WindowCounts]]]:
    """The composite's counts over `windows` (`bot.composite.combine`) and each part's own;
    `excluded` (the composite's maintenance windows, refunds) left out of every part's."""
    own: list[Mapping[timedelta, WindowCounts]] = []
    for row in rows:
        assert row.id is not None
        sums = history.window_sums(session=session, slo_id=row.id, end=end, windows=windows)
        own.append(
            adjustments.subtract_excluded(
                session=session, slo_id=row.id, excluded=excluded, end=end, counts=sums
            )
        )
    shares = [
        composite.PartCounts(p.weight, p.slo.objective.target_ratio, c)
        for p, c in zip(slo.parts, own, strict=True)
    ]
    return composite.combine(shares, slo.budgeting_method, windows), own


def snapshot_parts(
    session: Session,
    rows: Sequence[SLORecord],
    slo: SLO,
    rules: policy.Policy,
    own: Sequence[Mapping[timedelta, WindowCounts]],
    *,
    now: datetime,
    period_start: datetime,
    period_end: datetime,
    period_span: timedelta,
) -> tuple[tuple[str, Status], ...]:
    """Each part's status as of this evaluation, kept as its snapshot (`status` and `/slo show`
    list the parts' SLIs and budgets under the composite) and returned by name (`/metrics`, `check`).
    Their signals go nowhere: the composite alone alerts."""
    statuses: list[tuple[str, Status]] = []
    for row, part, found in zip(rows, slo.parts, own, strict=True):
        assert row.id is not None
        assessed = status.assess(
            part.slo,
            rules,
            found,
            now=now,
            period_start=period_start,
            period_end=period_end,
            period_span=period_span,
        )
        repo.add_snapshot(session=session, slo_id=row.id, status=assessed.status, error=None)
        statuses.append((part.slo.name, assessed.status))
    return tuple(statuses)


def window_sums(
    session: Session,
    slo: SLO,
    slo_id: int,
    end: datetime,
    windows: Sequence[timedelta],
    excluded: Sequence[Interval] = (),
) -> dict[timedelta, WindowCounts]:
    """`history.window_sums` of any SLO less its `excluded` time: a composite's are its parts',
    combined (a part not stored yet counts as no data)."""
    if not slo.parts:
        sums = history.window_sums(session=session, slo_id=slo_id, end=end, windows=windows)
        return adjustments.subtract_excluded(
            session=session, slo_id=slo_id, excluded=excluded, end=end, counts=sums
        )
    rows = {r.name: r for r in group_store.members(session=session, group_ids=[slo_id])[slo_id]}
    return composite.combine(
        [
            composite.PartCounts(
                p.weight,
                p.slo.objective.target_ratio,
                _sums(session, rows.get(p.slo.name), end, windows, excluded),
            )
            for p in slo.parts
        ],
        slo.budgeting_method,
        windows,
    )


def composites_of(session: Session, names: Sequence[str]) -> dict[str, str]:
    """The composite SLO of each of `names` that names a part of one (`checkout-journey[pay]`),
    by the composite's definition: known before its first evaluation stores the part's row."""
    found: dict[str, str] = {}
    for name in names:
        record = repo.get_slo(session=session, name=groups.definition_of(name)) if "[" in name else None
        if record is None or record.group_by:
            continue
        try:
            slo = slo_of(record)
        except CatalogueError:  # a definition that no longer builds has no parts to name
            continue
        if any(p.slo.name == name for p in slo.parts):
            found[name] = record.name
    return found


def part_ids(session: Session, slo: SLO, slo_id: int) -> list[tuple[float, SLO, int | None]]:
    """Each part of a composite as (weight, part SLO, its row's id or None when not stored yet)."""
    rows = {r.name: r.id for r in group_store.members(session=session, group_ids=[slo_id])[slo_id]}
    return [(p.weight, p.slo, rows.get(p.slo.name)) for p in slo.parts]


def _sums(
    session: Session,
    row: SLORecord | None,
    end: datetime,
    windows: Sequence[timedelta],
    excluded: Sequence[Interval],
) -> Mapping[timedelta, WindowCounts]:
    if row is None or row.id is None:
        return {w: WindowCounts(span=w) for w in windows}
    sums = history.window_sums(session=session, slo_id=row.id, end=end, windows=windows)
    return adjustments.subtract_excluded(
        session=session, slo_id=row.id, excluded=excluded, end=end, counts=sums
    )

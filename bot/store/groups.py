"""The member rows of grouped SLOs: found, created when a label value first shows, retired when quiet.

Functions over a caller-owned session, like `bot.store.repo`; they never commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import delete, func, update
from sqlalchemy import select as select_rows
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from bot.domain import Bucket
from bot.store import repo
from bot.store.models import SLORecord

SLOS = SLORecord.__table__  # type: ignore[attr-defined]


def key_of(record: SLORecord) -> tuple[str, ...]:
    """A member's label values, in the order of its definition's group-by."""
    return tuple(json.loads(record.group_key or "[]"))


def members(
    *, session: Session, group_ids: Iterable[int], documents: bool = True
) -> dict[int, list[SLORecord]]:
    """The members of each grouped definition, by definition id: one query for all. Without their
    `documents` (the definition's, repeated in each member row; a tick plans a member from its
    definition): reading them then raises, rather than loading them one member at a time."""
    ids = list(group_ids)
    found: dict[int, list[SLORecord]] = {i: [] for i in ids}
    if not ids:
        return found
    query = select(SLORecord).where(col(SLORecord.group_id).in_(ids)).order_by(col(SLORecord.name))
    if not documents:
        query = query.options(defer(SLORecord.documents, raiseload=True))  # type: ignore[arg-type]
    for record in session.exec(query):
        assert record.group_id is not None
        found[record.group_id].append(record)
    return found


def member_names(*, session: Session, group_ids: Iterable[int]) -> dict[int, list[str]]:
    """The names of each grouped definition's members, by definition id: what a tick needs to know
    of every group before it takes its own (its members' rows are read when a group is stored)."""
    ids = list(group_ids)
    found: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        rows = session.execute(
            select_rows(SLOS.c.group_id, SLOS.c.name).where(SLOS.c.group_id.in_(ids)).order_by(SLOS.c.name)
        )
        for group_id, name in rows:
            found[group_id].append(name)
    return found


def add_member(
    *, session: Session, definition: SLORecord, name: str, key: Sequence[str], now: datetime
) -> SLORecord:
    """A new member of `definition`: its documents, service and checksums, nothing fetched yet."""
    record = SLORecord(
        name=name,
        service=definition.service,
        documents=definition.documents,
        checksum=definition.checksum,
        data_checksum=definition.data_checksum,
        created_at=now,
        updated_at=now,
        group_id=definition.id,
        group_key=json.dumps(list(key)),
    )
    session.add(record)
    return record


def newest_data(buckets: Iterable[Sequence[Bucket]]) -> datetime | None:
    """Where the newest bucket with events ends (None: none). A series that is still scraped but
    counts nothing (a route nobody calls) is quiet too: its budget has nothing in it."""
    ends = [b.end for rng in buckets for b in rng if b.total > 0]
    return max(ends, default=None)


def set_last_data(*, session: Session, seen: Mapping[int, datetime]) -> None:
    """Each member's `last_data_at` moved forward to its newest data, `seen` by id: a statement per
    distinct time (a group's members are usually all seen up to the same minute), not per member."""
    for at, ids in repo.ids_by(seen.items()):
        session.execute(
            update(SLOS)
            .where(SLOS.c.id.in_(ids), (SLOS.c.last_data_at.is_(None)) | (SLOS.c.last_data_at < at))
            .values(last_data_at=at)
        )


def retire(*, session: Session, slo_ids: Sequence[int]) -> None:
    """Remove members with everything they own (buckets, snapshots, signals, breaches: cascades)."""
    if slo_ids:
        session.execute(delete(SLOS).where(SLOS.c.id.in_(list(slo_ids))))


def last_data(*, session: Session, group_id: int) -> dict[int, datetime | None]:
    """Each member's `last_data_at` (UTC), by id."""
    rows = session.execute(select_rows(SLOS.c.id, SLOS.c.last_data_at).where(SLOS.c.group_id == group_id))
    return {slo_id: repo.utc(at) for slo_id, at in rows}


def member_counts(*, session: Session) -> dict[int, int]:
    """How many members each grouped definition has, by its id."""
    rows = session.execute(
        select_rows(SLOS.c.group_id, func.count())
        .where(SLOS.c.group_id.is_not(None))
        .group_by(SLOS.c.group_id)
    )
    return {int(group_id): int(count) for group_id, count in rows}

"""Event-count buckets in the store: write ranges, read them back, sum windows, roll up, trim.

Functions over a caller-owned session, like `bot.store.repo`; the caller commits.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlmodel import Session

from bot.buckets import EPOCH, rollup
from bot.budget import WindowCounts
from bot.domain import Bucket
from bot.store.repo import BUCKETS, epoch


def replace_buckets(
    *, session: Session, slo_id: int, start: datetime, end: datetime, buckets: Sequence[Bucket]
) -> None:
    """Make [start, end) hold exactly `buckets`, whatever resolution was stored there before."""
    session.execute(
        delete(BUCKETS).where(
            BUCKETS.c.slo_id == slo_id,
            BUCKETS.c.start_s >= epoch(start),
            BUCKETS.c.start_s < epoch(end),
        )
    )
    _insert(session, slo_id, buckets)


_COLUMNS = "slo_id, resolution_s, start_s, good, total, covered_s, good_slices, slices, ratio_sum"


def _insert(session: Session, slo_id: int, buckets: Sequence[Bucket]) -> None:
    """Bulk insert through the driver: COPY on PostgreSQL, executemany on SQLite."""
    if not buckets:
        return
    rows = [
        (
            slo_id,
            int(b.resolution.total_seconds()),
            int(b.start.timestamp()),
            b.good,
            b.total,
            int(b.covered.total_seconds()),
            b.good_slices,
            b.slices,
            b.ratio_sum,
        )
        for b in buckets
    ]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor, cursor.copy(f"COPY bucket ({_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    connection.exec_driver_sql(f"INSERT INTO bucket ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def load_buckets(*, session: Session, slo_id: int, since: datetime) -> list[Bucket]:
    """Buckets that end after `since`, oldest first."""
    rows = session.execute(
        select(
            BUCKETS.c.start_s,
            BUCKETS.c.resolution_s,
            BUCKETS.c.good,
            BUCKETS.c.total,
            BUCKETS.c.covered_s,
            BUCKETS.c.good_slices,
            BUCKETS.c.slices,
            BUCKETS.c.ratio_sum,
        )
        .where(BUCKETS.c.slo_id == slo_id, BUCKETS.c.start_s >= epoch(since) - 3600)
        .order_by(BUCKETS.c.start_s)
    )
    since_s = epoch(since)
    return [
        Bucket(
            EPOCH + timedelta(seconds=start_s),
            timedelta(seconds=res),
            good=good,
            total=total,
            covered=timedelta(seconds=covered),
            good_slices=good_slices,
            slices=slices,
            ratio_sum=ratio_sum,
        )
        for start_s, res, good, total, covered, good_slices, slices, ratio_sum in rows
        if start_s + res > since_s
    ]


_SUMMED = "good, total, good_slices, slices, ratio_sum, covered_s"
MAX_RESOLUTION_S = 3600  # no bucket is longer than an hour (bot.buckets.tiers_for)


@functools.cache
def _window_sql(count: int, paramstyle: str) -> str:
    """One statement: the sums of each window i (tagged i), then, tagged -1, the buckets a
    window's start cuts in two. Every part is a range of the primary key."""

    def p(name: str) -> str:
        return f"%({name})s" if paramstyle == "pyformat" else f":{name}"

    scope = f"slo_id = {p('slo')} AND start_s < {p('end')}"
    sums = [
        f"SELECT {i}, 0, 0, SUM(good), SUM(total), SUM(good_slices), SUM(slices), SUM(ratio_sum), "
        f"SUM(covered_s) FROM bucket WHERE {scope} AND start_s >= {p(f's{i}')}"
        for i in range(count)
    ]
    cut = [
        f"SELECT -1, start_s, resolution_s, {_SUMMED} FROM bucket WHERE slo_id = {p('slo')} AND "
        f"start_s >= {p(f's{i}')} - {MAX_RESOLUTION_S} AND start_s < {p(f's{i}')} "
        f"AND start_s + resolution_s > {p(f's{i}')}"
        for i in range(count)
    ]
    return " UNION ALL ".join(sums + cut)


def window_sums(
    *, session: Session, slo_id: int, end: datetime, windows: Sequence[timedelta]
) -> dict[timedelta, WindowCounts]:
    """Sum the buckets of each window [end - w, end) in the database.

    The same arithmetic as `bot.buckets.window_counts` (a bucket cut by a window's start counts in
    proportion), done where the rows are, in one statement of primary-key range scans.
    """
    order = sorted(set(windows))
    end_s = epoch(end)
    starts = [end_s - int(w.total_seconds()) for w in order]
    params: dict[str, int] = {"slo": slo_id, "end": end_s}
    params.update({f"s{i}": s for i, s in enumerate(starts)})
    connection = session.connection()
    sql = _window_sql(len(order), connection.dialect.paramstyle)
    inside: dict[int, list[float]] = {}
    edges: dict[tuple[int, int], list[float]] = {}
    for tag, edge_start, resolution, *values in connection.exec_driver_sql(sql, params):
        numbers = [float(v or 0.0) for v in values]
        if tag == -1:
            edges[(int(edge_start), int(resolution))] = numbers  # a bucket may cut two windows
        else:
            inside[int(tag)] = numbers
    sums: dict[timedelta, WindowCounts] = {}
    for index, (w, start_s) in enumerate(zip(order, starts, strict=True)):
        total = list(inside.get(index, [0.0] * 6))
        for (edge, resolution), numbers in edges.items():
            if edge < start_s < edge + resolution:
                share = (edge + resolution - start_s) / resolution
                total = [t + share * v for t, v in zip(total, numbers, strict=True)]
        good, count, good_slices, slices, ratio_sum, covered = total
        sums[w] = WindowCounts(good, count, good_slices, slices, ratio_sum, timedelta(seconds=covered), w)
    return sums


def roll_up(*, session: Session, slo_id: int, source: timedelta, target: timedelta, before: datetime) -> int:
    """Merge `source`-resolution buckets that start before `before` into `target` ones."""
    source_s = int(source.total_seconds())
    condition = (
        BUCKETS.c.slo_id == slo_id,
        BUCKETS.c.resolution_s == source_s,
        BUCKETS.c.start_s < epoch(before),
    )
    rows = session.execute(
        select(
            BUCKETS.c.start_s,
            BUCKETS.c.good,
            BUCKETS.c.total,
            BUCKETS.c.covered_s,
            BUCKETS.c.good_slices,
            BUCKETS.c.slices,
            BUCKETS.c.ratio_sum,
        ).where(*condition)
    ).all()
    if not rows:
        return 0
    merged = rollup(
        (
            Bucket(
                EPOCH + timedelta(seconds=r[0]),
                source,
                good=r[1],
                total=r[2],
                covered=timedelta(seconds=r[3]),
                good_slices=r[4],
                slices=r[5],
                ratio_sum=r[6],
            )
            for r in rows
        ),
        target,
    )
    session.execute(delete(BUCKETS).where(*condition))
    target_s = int(target.total_seconds())
    session.execute(
        delete(BUCKETS).where(
            BUCKETS.c.slo_id == slo_id,
            BUCKETS.c.resolution_s == target_s,
            BUCKETS.c.start_s.in_([epoch(b.start) for b in merged]),
        )
    )
    _insert(session, slo_id, merged)
    return len(rows)


def trim_buckets(*, session: Session, slo_id: int, before: datetime) -> None:
    """Drop buckets that ended before `before`: outside every window the SLO still reads."""
    session.execute(
        delete(BUCKETS).where(
            BUCKETS.c.slo_id == slo_id,
            BUCKETS.c.start_s + BUCKETS.c.resolution_s <= epoch(before),
        )
    )


def count_buckets(*, session: Session, slo_id: int | None = None) -> int:
    query = select(func.count()).select_from(BUCKETS)
    if slo_id is not None:
        query = query.where(BUCKETS.c.slo_id == slo_id)
    return int(session.execute(query).scalar_one())

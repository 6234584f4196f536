"""Event-count buckets in the store: write ranges, read them back, sum windows, roll up, trim.

Functions over a caller-owned session, like `bot.store.repo`; the caller commits.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select
from sqlmodel import Session

from bot.buckets import EPOCH, rollup
from bot.budget import WindowCounts
from bot.domain import Bucket
from bot.store.repo import BUCKETS, epoch


def replace_buckets(
    *, session: Session, slo_id: int, start: datetime, end: datetime, buckets: Sequence[Bucket]
) -> None:
    """Make [start, end) hold exactly `buckets`, whatever resolution was stored there before."""
    replace_many(session=session, writes=[(slo_id, start, end, buckets)])


Write = tuple[int, datetime, datetime, Sequence[Bucket]]  # (slo_id, start, end, buckets)


def replace_many(*, session: Session, writes: Sequence[Write]) -> None:
    """`replace_buckets` of many ranges (of one SLO or many): one batch of deletes, one insert."""
    if not writes:
        return
    connection = session.connection()
    mark = "%s" if connection.dialect.name == "postgresql" else "?"
    connection.exec_driver_sql(
        f"DELETE FROM bucket WHERE slo_id = {mark} AND start_s >= {mark} AND start_s < {mark}",
        [(slo_id, epoch(start), epoch(end)) for slo_id, start, end, _ in writes],
    )
    # as if written one after the other: a later range replaces what an earlier one wrote in it
    # (an SLO's ranges may overlap: one asked again after a partial answer)
    kept: dict[int, dict[tuple[int, int], Bucket]] = {}
    for slo_id, start, end, buckets in writes:
        mine = kept.setdefault(slo_id, {})
        if mine:
            lo, hi = epoch(start), epoch(end)
            kept[slo_id] = mine = {key: b for key, b in mine.items() if not lo <= key[0] < hi}
        for b in buckets:
            mine[(epoch(b.start), int(b.resolution.total_seconds()))] = b
    _insert(session, [(slo_id, b) for slo_id, mine in kept.items() for b in mine.values()])


_COLUMNS = "slo_id, resolution_s, start_s, good, total, covered_s, good_slices, slices, ratio_sum"


def _insert(session: Session, buckets: Sequence[tuple[int, Bucket]]) -> None:
    """Bulk insert (slo_id, bucket) pairs through the driver: COPY on PostgreSQL, executemany on SQLite."""
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
        for slo_id, b in buckets
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
    found = read_buckets(session, BUCKETS.c.slo_id == slo_id, BUCKETS.c.start_s >= epoch(since) - 3600)
    return [b for b in found if b.end > since]


def read_buckets(session: Session, *conditions: ColumnElement[bool]) -> list[Bucket]:
    """The stored buckets that meet `conditions`, oldest first."""
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
        .where(*conditions)
        .order_by(BUCKETS.c.start_s)
    )
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
    ]


_SUMMED = ("good", "total", "good_slices", "slices", "ratio_sum", "covered_s")
MAX_RESOLUTION_S = 3600  # no bucket is longer than an hour (bot.buckets.tiers_for)

# Window sums read a batch of SLOs at once. A window's sum is that of the segments between the
# starts of the SLO's windows it spans, so every bucket is read once, in primary-key ranges: on
# PostgreSQL a VALUES list joined LATERAL (a plain join is planned as a hash join over the whole
# table), on SQLite a UNION ALL of range sums (its join of a VALUES list sorts every joined row
# to group them).
SQLITE_SEGMENTS = 450  # SQLite allows 500 terms in a compound SELECT


@functools.cache
def _segments_sql(count: int, dialect: str) -> str:
    """Sums of `count` segments, each given as (slo, segment, lo, hi): rows (slo, segment, sums)."""
    sums = ", ".join(f"SUM({column})" for column in _SUMMED)
    if dialect == "postgresql":
        rows = ", ".join(["(%s, %s, %s, %s)"] * count)
        return (
            f"WITH v(slo, segment, lo, hi) AS (VALUES {rows}) SELECT v.slo, v.segment, x.* FROM v "
            f"CROSS JOIN LATERAL (SELECT {sums} FROM bucket WHERE slo_id = v.slo AND start_s >= v.lo "
            f"AND start_s < v.hi) x"
        )
    one = f"SELECT ?, ?, {sums} FROM bucket WHERE slo_id = ? AND start_s >= ? AND start_s < ?"
    return " UNION ALL ".join([one] * count)  # (slo, segment, slo, lo, hi) each


@functools.cache
def _cuts_sql(cuts: int, dialect: str) -> str:
    """The buckets a window's start cuts in two: a VALUES row per (slo, start)."""
    mark = "%s" if dialect == "postgresql" else "?"
    rows = ", ".join([f"({mark}, {mark})"] * cuts)
    columns = ", ".join(f"b.{column}" for column in _SUMMED)
    cut = (
        f"b.slo_id = c.slo AND b.start_s >= c.s - {MAX_RESOLUTION_S} AND b.start_s < c.s "
        f"AND b.start_s + b.resolution_s > c.s"
    )
    select = f"WITH c(slo, s) AS (VALUES {rows}) SELECT c.slo, c.s, b.start_s, b.resolution_s, {columns} "
    if dialect == "postgresql":  # (OFFSET 0: kept a subquery, not planned as a hash join)
        return f"{select}FROM c CROSS JOIN LATERAL (SELECT * FROM bucket b WHERE {cut} OFFSET 0) b"
    return f"{select}FROM c JOIN bucket b ON {cut}"


def window_sums(
    *, session: Session, slo_id: int, end: datetime, windows: Sequence[timedelta]
) -> dict[timedelta, WindowCounts]:
    """Sum the buckets of each window [end - w, end) in the database.

    The same arithmetic as `bot.buckets.window_counts` (a bucket cut by a window's start counts in
    proportion), done where the rows are, in primary-key range scans.
    """
    return window_sums_many(session=session, asks=[(slo_id, end, windows)])[slo_id]


Ask = tuple[int, datetime, Sequence[timedelta]]  # (slo_id, end, windows)


def window_sums_many(*, session: Session, asks: Sequence[Ask]) -> dict[int, dict[timedelta, WindowCounts]]:
    """`window_sums` of many SLOs (one ask each) in a couple of statements for all of them."""
    out: dict[int, dict[timedelta, WindowCounts]] = {slo_id: {} for slo_id, _, _ in asks}
    shapes = [(slo_id, epoch(end), sorted(set(windows))) for slo_id, end, windows in asks if windows]
    if not shapes:
        return out
    segments: list[tuple[int, int, int, int]] = []  # (slo, segment, lo, hi)
    cuts: list[int] = []
    for slo_id, end_s, windows in shapes:
        starts = [end_s - int(w.total_seconds()) for w in windows]  # the latest first
        bounds = zip(starts, [end_s, *starts], strict=False)  # segment k: [start k, start k - 1)
        segments += [(slo_id, k, lo, hi) for k, (lo, hi) in enumerate(bounds)]
        cuts += [value for start_s in starts for value in (slo_id, start_s)]
    connection = session.connection()
    dialect = connection.dialect.name
    chunk = SQLITE_SEGMENTS if dialect == "sqlite" else len(segments)
    summed: dict[tuple[int, int], list[float]] = {}
    for first in range(0, len(segments), chunk):
        part = segments[first : first + chunk]
        params: list[int] = []
        for slo, k, lo, hi in part:
            params += [slo, k, lo, hi] if dialect == "postgresql" else [slo, k, slo, lo, hi]
        for slo, k, *values in connection.exec_driver_sql(_segments_sql(len(part), dialect), tuple(params)):
            summed[(int(slo), int(k))] = [float(v or 0.0) for v in values]
    cut: dict[tuple[int, int], list[tuple[int, int, list[float]]]] = {}
    for slo, start_s, edge, resolution, *values in connection.exec_driver_sql(
        _cuts_sql(len(cuts) // 2, dialect), tuple(cuts)
    ):
        cut.setdefault((int(slo), int(start_s)), []).append(
            (int(edge), int(resolution), [float(v or 0.0) for v in values])
        )
    nothing = [0.0] * len(_SUMMED)
    for slo_id, end_s, windows in shapes:
        spanned = nothing
        for k, w in enumerate(windows):  # the smallest first: each spans one segment more
            start_s = end_s - int(w.total_seconds())
            spanned = [t + v for t, v in zip(spanned, summed.get((slo_id, k), nothing), strict=True)]
            total = spanned
            for edge, resolution, values in cut.get((slo_id, start_s), []):
                share = (edge + resolution - start_s) / resolution
                total = [t + share * v for t, v in zip(total, values, strict=True)]
            good, count, good_slices, slices, ratio_sum, covered = total
            out[slo_id][w] = WindowCounts(
                good, count, good_slices, slices, ratio_sum, timedelta(seconds=covered), w
            )
    return out


def roll_up(*, session: Session, slo_id: int, source: timedelta, target: timedelta, before: datetime) -> int:
    """Merge `source`-resolution buckets that start before `before` into `target` ones."""
    return roll_up_many(session=session, asks=[(slo_id, source, target, before)])


RollUp = tuple[int, timedelta, timedelta, datetime]  # (slo_id, source, target, before)


def roll_up_many(*, session: Session, asks: Sequence[RollUp]) -> int:
    """`roll_up` of many SLOs: one read, two deletes and one insert for all those that share the
    resolutions and the cut-off (a tick's SLOs of one shape); finer resolutions first, so an SLO's
    tiers roll up in turn. Returns how many buckets were merged."""
    shapes: dict[tuple[timedelta, timedelta, datetime], list[int]] = {}
    for slo_id, source, target, before in asks:
        shapes.setdefault((source, target, before), []).append(slo_id)
    merged_count = 0
    for (source, target, before), slo_ids in sorted(shapes.items(), key=lambda item: item[0]):
        condition = (
            BUCKETS.c.slo_id.in_(slo_ids),
            BUCKETS.c.resolution_s == int(source.total_seconds()),
            BUCKETS.c.start_s < epoch(before),
        )
        found: dict[int, list[Bucket]] = {}
        for slo_id, start_s, good, total, covered_s, good_slices, slices, ratio_sum in session.execute(
            select(
                BUCKETS.c.slo_id,
                BUCKETS.c.start_s,
                BUCKETS.c.good,
                BUCKETS.c.total,
                BUCKETS.c.covered_s,
                BUCKETS.c.good_slices,
                BUCKETS.c.slices,
                BUCKETS.c.ratio_sum,
            ).where(*condition)
        ):
            found.setdefault(slo_id, []).append(
                Bucket(
                    EPOCH + timedelta(seconds=start_s),
                    source,
                    good=good,
                    total=total,
                    covered=timedelta(seconds=covered_s),
                    good_slices=good_slices,
                    slices=slices,
                    ratio_sum=ratio_sum,
                )
            )
        if not found:
            continue
        merged = [(slo_id, b) for slo_id, buckets in found.items() for b in rollup(buckets, target)]
        merged_count += sum(len(buckets) for buckets in found.values())
        session.execute(delete(BUCKETS).where(*condition))
        connection = session.connection()
        mark = "%s" if connection.dialect.name == "postgresql" else "?"
        connection.exec_driver_sql(
            f"DELETE FROM bucket WHERE slo_id = {mark} AND resolution_s = {mark} AND start_s = {mark}",
            [(slo_id, int(target.total_seconds()), epoch(b.start)) for slo_id, b in merged],
        )
        _insert(session, merged)
    return merged_count


def trim_buckets(*, session: Session, slo_id: int, before: datetime) -> None:
    """Drop buckets that ended before `before`: outside every window the SLO still reads."""
    trim_many(session=session, asks=[(slo_id, before)])


def trim_many(*, session: Session, asks: Sequence[tuple[int, datetime]]) -> None:
    """`trim_buckets` of many SLOs, (slo_id, before) each: one batch of deletes."""
    if not asks:
        return
    connection = session.connection()
    mark = "%s" if connection.dialect.name == "postgresql" else "?"
    connection.exec_driver_sql(
        f"DELETE FROM bucket WHERE slo_id = {mark} AND start_s + resolution_s <= {mark}",
        [(slo_id, epoch(before)) for slo_id, before in asks],
    )


def count_buckets(*, session: Session, slo_id: int | None = None) -> int:
    query = select(func.count()).select_from(BUCKETS)
    if slo_id is not None:
        query = query.where(BUCKETS.c.slo_id == slo_id)
    return int(session.execute(query).scalar_one())

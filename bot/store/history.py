"""Event-count buckets in the store: write ranges, read them back, sum windows, roll up, trim.

Functions over a caller-owned session, like `bot.store.repo`; the caller commits.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import ColumnElement, Connection, delete, func, select
from sqlmodel import Session

from bot.buckets import EPOCH
from bot.budget import WindowCounts
from bot.domain import Bucket
from bot.store.repo import BUCKETS, epoch, ids_by


def replace_buckets(
    *, session: Session, slo_id: int, start: datetime, end: datetime, buckets: Sequence[Bucket]
) -> None:
    """Make [start, end) hold exactly `buckets`, whatever resolution was stored there before."""
    replace_many(session=session, writes=[(slo_id, start, end, buckets)])


Write = tuple[int, datetime, datetime, Sequence[Bucket]]  # (slo_id, start, end, buckets)


def replace_many(*, session: Session, writes: Sequence[Write]) -> None:
    """`replace_buckets` of many ranges (of one SLO or many): a delete per distinct range, one insert, and
    the running sums of each SLO's rows from its first written one on (see `_Row`)."""
    if not writes:
        return
    # a statement per distinct range (a steady tick writes the same newest minutes for most SLOs)
    for (lo, hi), ids in ids_by((slo_id, (epoch(start), epoch(end))) for slo_id, start, end, _ in writes):
        session.execute(
            delete(BUCKETS).where(BUCKETS.c.slo_id.in_(ids), BUCKETS.c.start_s >= lo, BUCKETS.c.start_s < hi)
        )
    connection = session.connection()
    by_slo: dict[int, list[Write]] = {}
    froms: dict[int, int] = {}  # where each SLO's writes begin
    for write in writes:
        slo_id, start, _, buckets = write
        by_slo.setdefault(slo_id, []).append(write)
        first = min([epoch(start), *(int(b.start.timestamp()) for b in buckets)])
        froms[slo_id] = min(froms.get(slo_id, first), first)
    points = list(froms.items())
    before, after = _probe(connection, points, points)
    # rows made an SLO at a time as they are inserted, never all at once: a first cycle writes
    # ~1,440 buckets a member, and a big group's rows as one list would be its peak memory
    rows = (row for slo_id, lo in points for row in _rows(slo_id, by_slo[slo_id], before.get((slo_id, lo))))
    _insert(session, rows)
    _recompute(session, [point for point in points if point in after])


def _rows(slo_id: int, writes: Sequence[Write], found: _Row | None) -> Iterator[tuple[float, ...]]:
    """The rows of one SLO's `writes`, with running sums on from `found` (the row before them)."""
    # as if written one after the other: a later range replaces what an earlier one wrote in it
    # (an SLO's ranges may overlap: one asked again after a partial answer)
    kept: dict[tuple[int, int], Bucket] = {}
    last = None  # the latest bucket start written
    for _, start, end, buckets in writes:
        lo, hi = epoch(start), epoch(end)
        if last is not None and lo <= last:
            kept = {key: b for key, b in kept.items() if not lo <= key[0] < hi}
        # (a bucket's key from its timestamp: the hot loop of a first cycle's ~1,440 buckets an SLO)
        keys = [(int(b.start.timestamp()), int(b.resolution.total_seconds())) for b in buckets]
        kept.update(zip(keys, buckets, strict=True))
        last = max(last if last is not None else lo, lo, max(keys, default=(lo,))[0])
    if not kept:
        return
    spots, ordered = zip(*sorted(kept.items()), strict=True)
    del kept
    columns = _columns(ordered)
    cums = [
        itertools.accumulate(column, initial=base)
        for column, base in zip(columns, found.cum if found else [0.0] * len(_SUMMED), strict=True)
    ]
    for cum in cums:
        next(cum)  # (the base itself)
    starts = (start_s for start_s, _ in spots)
    resolutions = (resolution_s for _, resolution_s in spots)
    yield from zip(itertools.repeat(slo_id), resolutions, starts, *columns, *cums)


def _columns(buckets: Sequence[Bucket]) -> list[list[float]]:
    """The buckets' own sums, a list per column of `_SUMMED`."""
    return [
        [b.good for b in buckets],
        [b.total for b in buckets],
        [int(b.covered.total_seconds()) for b in buckets],
        [b.good_slices for b in buckets],
        [b.slices for b in buckets],
        [b.ratio_sum for b in buckets],
    ]


# The bucket's own sums, in the order of their columns and of the running sums' (`_CUMS`)
_SUMMED = ("good", "total", "covered_s", "good_slices", "slices", "ratio_sum")
_CUMS = tuple(f"cum_{column}" for column in _SUMMED)
_COLUMNS = ", ".join(("slo_id", "resolution_s", "start_s", *_SUMMED, *_CUMS))


class _Row(NamedTuple):
    """A stored bucket with its running sums: `cum` is `own` summed over the SLO's buckets up to and
    including this one, in (start_s, resolution_s) order, so the buckets of [a, b) sum to the running
    sums of the last bucket before b less those of the last before a. (A named tuple: a tick reads
    about ten an SLO.)"""

    start_s: int
    resolution_s: int
    own: Sequence[float]
    cum: Sequence[float]


def _insert(session: Session, rows: Iterable[tuple[float, ...]]) -> None:
    """Bulk insert rows of `_COLUMNS` through the driver: COPY on PostgreSQL, executemany on SQLite
    (`INSERT_CHUNK` rows at a time: `rows` may be made as they are inserted)."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return
    rows = itertools.chain([first], rows)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor, cursor.copy(f"COPY bucket ({_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join(["?"] * (3 + 2 * len(_SUMMED)))
    while chunk := list(itertools.islice(rows, INSERT_CHUNK)):
        connection.exec_driver_sql(f"INSERT INTO bucket ({_COLUMNS}) VALUES ({marks})", chunk)


INSERT_CHUNK = 10_000


def _recompute(session: Session, asks: Sequence[tuple[int, int]]) -> None:
    """Set the running sums of each (slo_id, from_s)'s rows from `from_s` on again (after a write
    with older rows after it, or a roll-up that replaced a row): from the last row before, in SQL."""
    if not asks:
        return
    connection = session.connection()
    mark = "%s" if connection.dialect.name == "postgresql" else "?"
    last = ", ".join(_CUMS)
    sets = ", ".join(f"{c} = r.{c}" for c in _CUMS)
    sums = ", ".join(
        f"COALESCE(base.{c}, 0) + SUM(b.{o}) OVER w AS {c}" for o, c in zip(_SUMMED, _CUMS, strict=True)
    )
    connection.exec_driver_sql(
        f"WITH base AS (SELECT {last} FROM bucket WHERE slo_id = {mark} AND start_s < {mark} "
        "ORDER BY start_s DESC, resolution_s DESC LIMIT 1) "
        f"UPDATE bucket SET {sets} FROM (SELECT b.slo_id AS s, b.start_s AS st, b.resolution_s AS rs, {sums} "
        f"FROM bucket b LEFT JOIN base ON 1 = 1 WHERE b.slo_id = {mark} AND b.start_s >= {mark} "
        "WINDOW w AS (ORDER BY b.start_s, b.resolution_s ROWS UNBOUNDED PRECEDING)) AS r "
        "WHERE bucket.slo_id = r.s AND bucket.start_s = r.st AND bucket.resolution_s = r.rs",
        [(slo_id, from_s, slo_id, from_s) for slo_id, from_s in asks],
    )


# Probes find one row per (slo_id, x) by primary-key index: the last bucket that starts before x, or
# the first that starts at or after it. On PostgreSQL arrays unnested and joined LATERAL (a plain
# join is planned as a hash join over the whole table; arrays keep the statement one short text,
# which the driver converts once and the server prepares once, however many probes it carries).
# On SQLite the points go in as one JSON parameter and the rows come out as one text value, written
# with printf: CPython's sqlite3 releases the interpreter lock around every step of a statement (a
# row read) and then waits for it behind the fetch threads, up to a switch interval (5 ms) a row.
# A steady tick's ~10,000 probe rows (0.15 s of work alone) took 0.83-1.15 s of it read as rows,
# 0.51-0.89 s as one value; with two busy threads beside it, 14-25 s against 0.3 s. Numbers are
# written with 17 significant digits ('%!.17g'), which read back as the same doubles (SQLite's JSON
# functions write 15, which do not): of 600,000 random doubles, every one between 1e-100 and 1e100
# read back exactly.
# (JSON and row values: SQLite 3.38 or later, or an older one built with JSON1.)
Point = tuple[int, int]  # (slo_id, x)


def _probe_one(slo: str, x: str, earlier: bool, columns: str, only: str = "") -> str:
    where, order = ("<", "DESC") if earlier else (">=", "ASC")
    return (
        f"SELECT {columns} FROM bucket WHERE slo_id = {slo} AND start_s {where} {x}{only} "
        f"ORDER BY start_s {order}, resolution_s {order} LIMIT 1"
    )


_ROW_COLUMNS = ("start_s", "resolution_s", *_SUMMED, *_CUMS)

# rows (kind 0 or 1, slo, x, the bucket's columns) for arrays of (slo, x) to look before, then after
_PROBE_POSTGRESQL = " UNION ALL ".join(
    f"SELECT {kind}, v.slo, v.x, b.* FROM unnest(%s::bigint[], %s::bigint[]) AS v(slo, x) "
    f"CROSS JOIN LATERAL ({_probe_one('v.slo', 'v.x', kind == 0, ', '.join(_ROW_COLUMNS))}) b"
    for kind in (0, 1)
)

# a JSON array of [kind, slo, x, the bucket's columns] for JSON arrays of [slo, x] to look before,
# then after
_PROBE_SQLITE_ROWS = " UNION ALL ".join(
    f"SELECT printf('[{kind},%d,%d,%d,%d{',%!.17g' * (len(_ROW_COLUMNS) - 2)}]', "
    f"p.slo, p.x, {', '.join(f'b.{c}' for c in _ROW_COLUMNS)}) AS found "
    "FROM (SELECT json_extract(value, '$[0]') AS slo, json_extract(value, '$[1]') AS x "
    "FROM json_each(?)) AS p "
    "JOIN bucket AS b ON b.slo_id = p.slo "
    f"AND (b.start_s, b.resolution_s) = ({_probe_one('p.slo', 'p.x', kind == 0, 'start_s, resolution_s')})"
    for kind in (0, 1)
)
_PROBE_SQLITE = f"SELECT '[' || group_concat(found, ',') || ']' FROM ({_PROBE_SQLITE_ROWS})"


def _probe(
    connection: Connection, before: Sequence[Point] = (), after: Sequence[Point] = ()
) -> tuple[dict[Point, _Row], dict[Point, _Row]]:
    """For each (slo_id, x) of `before`: the SLO's last bucket that starts before x; of `after`: its
    first that starts at or after x. A point with no such bucket is missing from the answer."""
    lists = [list(dict.fromkeys(before)), list(dict.fromkeys(after))]
    found: tuple[dict[Point, _Row], dict[Point, _Row]] = ({}, {})
    width = len(_SUMMED)
    own, cum = slice(5, 5 + width), slice(5 + width, None)
    if connection.dialect.name == "postgresql":
        arrays = tuple([p[i] for p in points] for points in lists for i in (0, 1))
        result = connection.exec_driver_sql(_PROBE_POSTGRESQL, arrays)
        try:
            # the driver's plain tuples, not a result row object each (a tick reads ~10 an SLO)
            rows = result.cursor.fetchall()
        finally:
            result.close()
    else:
        text = connection.exec_driver_sql(
            _PROBE_SQLITE, tuple(json.dumps(points) for points in lists)
        ).scalar()
        rows = json.loads(text) if text is not None else []
    for row in rows:
        found[row[0]][(row[1], row[2])] = _Row(row[3], row[4], row[own], row[cum])
    return found


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


def window_sums(
    *, session: Session, slo_id: int, end: datetime, windows: Sequence[timedelta]
) -> dict[timedelta, WindowCounts]:
    """Sum the buckets of each window [end - w, end) in the database.

    The same arithmetic as `bot.buckets.window_counts` (a bucket cut by a window's start counts in
    proportion), from the running sums of the rows at the window's ends: a few index lookups, not a
    scan of the window.
    """
    return window_sums_many(session=session, asks=[(slo_id, end, windows)])[slo_id]


Ask = tuple[int, datetime, Sequence[timedelta]]  # (slo_id, end, windows)


def window_sums_many(*, session: Session, asks: Sequence[Ask]) -> dict[int, dict[timedelta, WindowCounts]]:
    """`window_sums` of many SLOs (one ask each) in one statement for all of them (`_WINDOWS_SQLITE`,
    `_WINDOWS_POSTGRESQL`): the database finds each window's rows and does its arithmetic."""
    out: dict[int, dict[timedelta, WindowCounts]] = {slo_id: {} for slo_id, _, _ in asks}
    shapes: list[tuple[int, int, list[timedelta]]] = []  # (slo_id, end_s, windows) of each ask
    empty: dict[timedelta, WindowCounts] = {}  # a window with nothing stored before its end
    for slo_id, end, windows in asks:
        if not windows:
            continue
        ordered = sorted(set(windows))
        sums = out[slo_id]
        for w in ordered:
            if w not in empty:
                empty[w] = WindowCounts(span=w)
            sums[w] = empty[w]
        shapes.append((slo_id, epoch(end), ordered))
    if not shapes:
        return out
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        asked = [
            (i, j, end_s - int(w.total_seconds()))
            for i, (_, end_s, ws) in enumerate(shapes)
            for j, w in enumerate(ws)
        ]
        arrays = [[slo_id for slo_id, _, _ in shapes], [end_s for _, end_s, _ in shapes]]
        arrays += [[window[k] for window in asked] for k in (0, 1, 2)]
        result = connection.exec_driver_sql(_WINDOWS_POSTGRESQL, tuple(arrays))
        try:
            rows = result.cursor.fetchall()  # the driver's plain tuples (a tick reads ~9 an SLO)
        finally:
            result.close()
    else:
        asked_json = [
            [slo_id, end_s, [end_s - int(w.total_seconds()) for w in ws]] for slo_id, end_s, ws in shapes
        ]
        text = connection.exec_driver_sql(_WINDOWS_SQLITE, (json.dumps(asked_json),)).scalar()
        rows = json.loads(text) if text is not None else []
    for i, j, good, total, good_slices, slices, ratio_sum, covered_s in rows:
        slo_id, _, ws = shapes[i]
        w = ws[j]
        out[slo_id][w] = WindowCounts(
            good, total, good_slices, slices, ratio_sum, timedelta(seconds=covered_s), w
        )
    return out


# A window's sums, worked out by the database from the running sums of three rows, each found by
# primary key as `_probe` finds them: e, the SLO's last bucket that starts before its end (one for all
# its windows); c, its last before the window's start (the bucket the start cuts counts in proportion);
# h, when there is no c, its first bucket. The sums are e's running sums less c's plus c's share, or
# less the sums before h; an SLO with no e has nothing stored and comes back as no rows. (Done in
# Python, a tick's windows came back as ~10 probed rows of 14 numbers an SLO, which cost the tick's
# thread more to decode and subtract than the database takes to do it; and SQLite works without the
# interpreter lock the fetch threads want.) The same operations in the same order as Python's, on IEEE
# doubles in both databases, clamped at 0 where rounding leaves -1e-9 of nothing. A row is the ask's
# index, the window's index in its ask's sorted windows, and the sums in `WindowCounts`' order.
_WINDOW_SUMMED = ("good", "total", "good_slices", "slices", "ratio_sum", "covered_s")


def _window_sum(column: str, start: str, greatest: str) -> str:
    share = (
        f"(CAST({greatest}(c.start_s + c.resolution_s - {start}, 0) AS DOUBLE PRECISION) / c.resolution_s)"
    )
    return (
        f"CASE WHEN c.slo_id IS NULL THEN e.cum_{column} - (h.cum_{column} - h.{column}) "
        f"ELSE e.cum_{column} - c.cum_{column} + {share} * c.{column} END"
    )


_ALL_COLUMNS = ", ".join(("slo_id", *_ROW_COLUMNS))

# for arrays of the asks' (slo, end) and of their windows' (ask, place, start), counted from 0
_WINDOWS_POSTGRESQL = (
    "SELECT w.i, w.j, "
    + ", ".join(f"GREATEST({_window_sum(c, 'w.st', 'GREATEST')}, 0)" for c in _WINDOW_SUMMED)
    + " FROM unnest(%s::bigint[], %s::bigint[]) WITH ORDINALITY AS a(slo, en, i)"
    + f" CROSS JOIN LATERAL ({_probe_one('a.slo', 'a.en', True, _ALL_COLUMNS)}) e"
    + " JOIN unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS w(i, j, st) ON w.i = a.i - 1"
    + f" LEFT JOIN LATERAL ({_probe_one('a.slo', 'w.st', True, _ALL_COLUMNS)}) c ON true"
    + f" LEFT JOIN LATERAL ({_probe_one('a.slo', 'w.st', False, _ALL_COLUMNS, ' AND c.slo_id IS NULL')}) h"
    + " ON true"
)


def _sqlite_join(alias: str, x: str, earlier: bool) -> str:
    found = _probe_one("a.slo", x, earlier, "start_s, resolution_s")
    return f"{alias}.slo_id = a.slo AND ({alias}.start_s, {alias}.resolution_s) = ({found})"


# a JSON array of the rows for a JSON array of the asks' [slo, end, [each window's start]] (written
# as `_PROBE_SQLITE`'s rows are, and for the same reason); CROSS JOIN keeps SQLite from reordering
# the joins: e is found once an ask, before its windows are unnested
_WINDOWS_SQLITE = (
    "SELECT '[' || group_concat(found, ',') || ']' FROM (SELECT printf('[%d,%d"
    + ",%!.17g" * len(_WINDOW_SUMMED)
    + "]', i, j, "
    + ", ".join(f"iif(s{n} > 0.0, s{n}, 0.0)" for n in range(len(_WINDOW_SUMMED)))
    + ") AS found FROM (SELECT a.i AS i, w.key AS j, "
    + ", ".join(f"{_window_sum(c, 'w.value', 'MAX')} AS s{n}" for n, c in enumerate(_WINDOW_SUMMED))
    + " FROM (SELECT key AS i, json_extract(value, '$[0]') AS slo, json_extract(value, '$[1]') AS en, "
    "json_extract(value, '$[2]') AS starts FROM json_each(?)) AS a"
    + f" CROSS JOIN bucket AS e ON {_sqlite_join('e', 'a.en', True)}"
    + " CROSS JOIN json_each(a.starts) AS w"
    + f" LEFT JOIN bucket AS c ON {_sqlite_join('c', 'w.value', True)}"
    + f" LEFT JOIN bucket AS h ON c.slo_id IS NULL AND {_sqlite_join('h', 'w.value', False)}))"
)


def roll_up(*, session: Session, slo_id: int, source: timedelta, target: timedelta, before: datetime) -> int:
    """Merge `source`-resolution buckets that start before `before` into `target` ones."""
    return roll_up_many(session=session, asks=[(slo_id, source, target, before, None)])


# (slo_id, source, target, before, since): `since`, when known, is where the SLO's `source` buckets
# begin (the cut-off of its last roll-up): the statements then read those few rows, not every row
# of the SLO's before `before` (the key orders an SLO's rows by time, whatever their resolution)
RollUp = tuple[int, timedelta, timedelta, datetime, datetime | None]


def roll_up_many(*, session: Session, asks: Sequence[RollUp]) -> int:
    """`roll_up` of many SLOs: for all those that share the resolutions and the cut-offs (a tick's
    SLOs of one shape), a look and three statements in SQL, whatever their number; finer resolutions
    first, so an SLO's tiers roll up in turn. Returns how many buckets were merged.

    A merged bucket sums its sources (as `bot.buckets.rollup` does) and takes the running sums of
    the last of them. A bucket of the target resolution already stored where one is merged gives
    way to it, and the running sums from there on are summed again."""
    shapes: dict[tuple[timedelta, timedelta, datetime, datetime | None], set[int]] = {}
    for slo_id, source, target, before, since in asks:
        shapes.setdefault((source, target, before, since), set()).add(slo_id)
    connection = session.connection()
    merged_count = 0
    for (source, target, before, since), slo_ids in sorted(shapes.items(), key=_shape_order):
        source_s, target_s, before_s = int(source.total_seconds()), int(target.total_seconds()), epoch(before)
        # (integers of the bot's own written into the text: one statement for any number of SLOs)
        ids = ", ".join(str(int(i)) for i in sorted(slo_ids))
        since_s = None if since is None else epoch(since)
        lower = "" if since_s is None else f" AND start_s >= {since_s}"
        sources = f"slo_id IN ({ids}) AND resolution_s = {source_s} AND start_s < {before_s}{lower}"
        if connection.exec_driver_sql(f"SELECT 1 FROM bucket WHERE {sources} LIMIT 1").first() is None:
            continue  # (a first cycle asks each tier at its own step: most have nothing to merge)
        # (the same bounds, aligned to the target: where a merged bucket may already be stored)
        aligned = "" if since_s is None else f" AND start_s >= {since_s // target_s * target_s}"
        replaced = connection.exec_driver_sql(
            f"DELETE FROM bucket WHERE slo_id IN ({ids}) AND resolution_s = {target_s} "
            f"AND start_s < {before_s}{aligned} AND (slo_id, start_s) IN "
            f"(SELECT slo_id, start_s / {target_s} * {target_s} FROM bucket WHERE {sources})"
        ).rowcount
        # where the running sums are summed again: from each SLO's first merged bucket on
        again = (
            connection.exec_driver_sql(
                f"SELECT slo_id, MIN(start_s) / {target_s} * {target_s} FROM bucket WHERE {sources} "
                "GROUP BY slo_id"
            ).all()
            if replaced
            else []
        )
        sums = ", ".join(f"SUM({c}) AS {c}" for c in _SUMMED)
        connection.exec_driver_sql(
            f"INSERT INTO bucket ({_COLUMNS}) "
            f"SELECT m.slo_id, {target_s}, m.merged_s, {', '.join(f'm.{c}' for c in _SUMMED)}, "
            f"{', '.join(f'last.{c}' for c in _CUMS)} "
            f"FROM (SELECT slo_id, start_s / {target_s} * {target_s} AS merged_s, MAX(start_s) AS last_s, "
            f"{sums} FROM bucket WHERE {sources} GROUP BY slo_id, start_s / {target_s} * {target_s}) m "
            f"JOIN bucket last ON last.slo_id = m.slo_id AND last.resolution_s = {source_s} "
            "AND last.start_s = m.last_s"
        )
        merged_count += connection.exec_driver_sql(f"DELETE FROM bucket WHERE {sources}").rowcount
        _recompute(session, [(int(slo_id), int(from_s)) for slo_id, from_s in again])
    return merged_count


def _shape_order(
    item: tuple[tuple[timedelta, timedelta, datetime, datetime | None], set[int]],
) -> tuple[timedelta, timedelta, datetime, datetime]:
    """Finer resolutions first (an SLO's tiers roll up in turn), then by cut-off."""
    (source, target, before, since), _ = item
    return source, target, before, since or EPOCH


def trim_buckets(*, session: Session, slo_id: int, before: datetime) -> None:
    """Drop buckets that ended before `before`: outside every window the SLO still reads."""
    trim_many(session=session, asks=[(slo_id, before)])


def trim_many(*, session: Session, asks: Sequence[tuple[int, datetime]]) -> None:
    """`trim_buckets` of many SLOs, (slo_id, before) each: a delete per distinct `before`."""
    if not asks:
        return
    for before, ids in ids_by((slo_id, epoch(before)) for slo_id, before in asks):
        session.execute(
            delete(BUCKETS).where(
                BUCKETS.c.slo_id.in_(ids),
                BUCKETS.c.start_s < before,  # (an index range, not all of each SLO's rows)
                BUCKETS.c.start_s + BUCKETS.c.resolution_s <= before,
            )
        )


def count_buckets(*, session: Session, slo_id: int | None = None) -> int:
    query = select(func.count()).select_from(BUCKETS)
    if slo_id is not None:
        query = query.where(BUCKETS.c.slo_id == slo_id)
    return int(session.execute(query).scalar_one())

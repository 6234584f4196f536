"""Burn-down charts drawn from stored history of a known shape: the pixels where the arithmetic says
the lines, the breach band, the maintenance hatch and "now" must be (not only that a PNG exists)."""

from __future__ import annotations

import gc
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import Engine
from sqlmodel import Session

from bot import charts, weekchart
from bot.adjustments import Adjustment
from bot.burndown import BurnDown, load_burn_down
from bot.catalogue import load_paths
from bot.catalogue.stored import slo_of
from bot.checksums import data_checksum
from bot.console import ChartFiles
from bot.domain import Bucket
from bot.store import adjustments as adjustment_store
from bot.store import db, history, repo
from bot.store.models import BreachRecord

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)
START = NOW - 30 * DAY  # the 30-day window's start
PER_MINUTE = 1000.0
# burn 2 from day 5 to day 15 of the window, nothing failing otherwise: the budget left falls from
# 100 % on day 5 to 1 - 2 * 10 / 30 = 33.3 % on day 15 and crosses 50 % on day 12.5
BURNING = (START + 5 * DAY, START + 15 * DAY)
CROSSES_HALF = START + 12.5 * DAY
BREACH = (START + 20 * DAY, START + 21 * DAY)  # a stored page breach, to be shaded
MAINTENANCE = (START + 24 * DAY, START + 25 * DAY, "DB upgrade")

CATALOGUE = """\
apiVersion: openslo/v1
kind: DataSource
metadata: {name: sim}
spec: {type: Simulated, connectionDetails: {seed: 1}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: checkout-availability}
spec:
  service: checkout
  indicator:
    metadata: {name: checkout-requests}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {metricSourceRef: sim, spec: {query: good}}}
        total: {metricSource: {metricSourceRef: sim, spec: {query: total}}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.999}]
"""


def _buckets() -> list[Bucket]:
    """As the store keeps them: hourly past 3 days, 5-minute buckets then, minutes for the last 7 h."""
    found = []
    at = START - 4 * DAY
    while at < NOW:
        step = MINUTE if at >= NOW - 7 * HOUR else 5 * MINUTE if at >= NOW - 3 * DAY - HOUR else HOUR
        total = PER_MINUTE * (step / MINUTE)
        burn = 2.0 if BURNING[0] <= at < BURNING[1] else 0.0
        found.append(Bucket(at, step, good=total * (1 - 0.001 * burn), total=total, covered=step))
        at += step
    return found


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[tuple[Engine, int]]:
    path = tmp_path / "slos.yaml"
    path.write_text(CATALOGUE)
    entry = load_paths([path]).entries[0]
    engine = db.make_engine(f"sqlite:///{tmp_path / 'charts.db'}")
    db.upgrade(engine)
    with Session(engine) as session:
        repo.upsert_slo(
            session=session,
            name=entry.slo.name,
            service=entry.slo.service,
            documents=entry.documents,
            data_checksum=data_checksum(entry.slo),
            now=START,
        )
        session.flush()
        record = repo.get_slo(session=session, name=entry.slo.name)
        assert record is not None and record.id is not None
        history.replace_buckets(
            session=session, slo_id=record.id, start=START - 4 * DAY, end=NOW, buckets=_buckets()
        )
        session.add(
            BreachRecord(
                slo_id=record.id,
                kind="burn",
                severity="page",
                peak="page",
                state="resolved",
                opened_at=BREACH[0],
                resolved_at=BREACH[1],
            )
        )
        session.commit()
        yield engine, record.id
    engine.dispose()


def _data(engine: Engine, slo_id: int) -> BurnDown:
    with Session(engine) as session:
        record = repo.get_slo(session=session, name="checkout-availability")
        assert record is not None
        return load_burn_down(session, slo_of(record), slo_id, NOW)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))


def _blend(colour: str, alpha: float) -> tuple[int, int, int]:
    """`colour` at `alpha` over white, as the shaded bands are drawn."""
    r, g, b = _rgb(colour)
    return tuple(round(alpha * c + (1 - alpha) * 255) for c in (r, g, b))  # type: ignore[return-value]


def _around(image: Image.Image, x: float, y: float, radius: int = 3) -> list[tuple[int, ...]]:
    return [
        image.getpixel((round(x) + dx, round(y) + dy))  # type: ignore[misc]
        for dx in range(-radius, radius + 1)
        for dy in range(-radius, radius + 1)
    ]


def test_the_series_follow_the_stored_history(stored: tuple[Engine, int]) -> None:
    data = _data(*stored)
    assert data.period_start == START and data.now == NOW
    assert data.remaining_now == pytest.approx(1 - 2 * 10 / 30, abs=1e-9)
    at = {t: r for t, r in zip(data.times, data.remaining, strict=True)}
    assert at[START + 5 * DAY] == pytest.approx(1.0)
    assert at[CROSSES_HALF] == pytest.approx(0.5, abs=1e-9)
    one_hour = next(s for s in data.burns if s.window == HOUR)
    assert one_hour.threshold == pytest.approx(14.4)
    burns = dict(zip(data.times, one_hour.values, strict=True))
    assert burns[START + 10 * DAY] == pytest.approx(2.0)  # the hourly buckets spread over their minutes
    assert burns[START + 20 * DAY] == pytest.approx(0.0)
    assert [s.label for s in data.breaches] == [f"#{s.label.split()[0][1:]} PAGE" for s in data.breaches]
    assert len(data.times) <= 721


def test_the_chart_draws_each_thing_where_the_numbers_put_it(stored: tuple[Engine, int]) -> None:
    chart = charts.render(_data(*stored), [MAINTENANCE])
    image = Image.open(io.BytesIO(chart.png)).convert("RGB")
    assert image.size == (1200, 960)  # large enough for a phone to scale down, small to upload
    budget = chart.budget

    # the budget line crosses 50 % on day 12.5: budget-line blue there, white well above and below
    x, y = budget.x_of(CROSSES_HALF), budget.y_of(0.5)
    blue = _rgb(charts.BUDGET_COLOUR)
    assert any(_near(p, blue) for p in _around(image, x, y)), _around(image, x, y)[24]
    assert _near(image.getpixel((round(x), round(budget.y_of(0.9)))), (255, 255, 255), 5)  # type: ignore[arg-type]
    # before the burn it is flat at 100 %, above the ideal line
    assert any(_near(p, blue) for p in _around(image, budget.x_of(START + 3 * DAY), budget.y_of(1.0)))
    # the ideal line: black at 50 % mid-window, where the budget line is not
    middle = START + 15 * DAY
    assert any(_near(p, (0, 0, 0), 60) for p in _around(image, budget.x_of(middle), budget.y_of(0.5)))

    # the breach band: vermillion-tinted over its whole day, not just before or after it
    shade = _blend(charts.VERMILLION, charts.BREACH_ALPHA)
    inside = image.getpixel((round(budget.x_of(BREACH[0] + 12 * HOUR)), round(budget.y_of(0.85))))
    before = image.getpixel((round(budget.x_of(BREACH[0] - 12 * HOUR)), round(budget.y_of(0.85))))
    assert _near(inside, shade, 12), inside  # type: ignore[arg-type]
    assert _near(before, (255, 255, 255), 5), before  # type: ignore[arg-type]
    # ... on the burn panel too
    burn = chart.burn
    low = burn.bottom - 0.5 * (burn.bottom - burn.top)
    band = image.getpixel((round(burn.x_of(BREACH[0] + 12 * HOUR)), round(low)))
    assert _near(band, shade, 12), band  # type: ignore[arg-type]

    # the maintenance window is hatched: dark strokes inside, on white, none just after it
    def dark_pixels(start: datetime, end: datetime) -> int:
        left, right = round(budget.x_of(start)), round(budget.x_of(end))
        top, bottom = round(budget.y_of(0.95)), round(budget.y_of(0.6))
        return sum(
            1
            for px in range(left + 2, right - 1)
            for py in range(top, bottom)
            if sum(image.getpixel((px, py))[:3]) < 3 * 140  # type: ignore[index]
        )

    assert dark_pixels(MAINTENANCE[0], MAINTENANCE[1]) > 100
    assert dark_pixels(MAINTENANCE[1] + 6 * HOUR, MAINTENANCE[1] + 30 * HOUR) == 0

    # "now" is marked: a dotted black line at the right end of the window
    def black_in_column(px: int) -> float:
        rows = range(round(budget.top), round(budget.bottom))
        return sum(1 for py in rows if _near(image.getpixel((px, py)), (0, 0, 0), 60)) / len(rows)  # type: ignore[arg-type]

    x_now = round(budget.x_of(NOW))
    assert max(black_in_column(px) for px in range(x_now - 2, x_now + 2)) > 0.3
    assert black_in_column(round(budget.x_of(NOW - 2 * DAY))) < 0.05  # a dotted line, only at now


def test_nothing_is_cut_at_the_right_edge(stored: tuple[Engine, int]) -> None:
    """The date under the window's end ("01 Dec") was cut in half by the image's edge: a calendar
    window that ends at midnight has its last date right at the panel's edge."""
    from dataclasses import replace

    data = _data(*stored)
    chart = charts.render(replace(data, period_end=datetime(2026, 12, 1, tzinfo=UTC)))
    image = Image.open(io.BytesIO(chart.png)).convert("RGB")
    width, height = image.size
    # the row of dates under the lower panel: no ink in the image's last columns
    rows = range(round(chart.burn.bottom) + 4, min(height, round(chart.burn.bottom) + 50))
    edge = [image.getpixel((px, py)) for px in range(width - 4, width) for py in rows]
    assert all(_near(p, (255, 255, 255), 30) for p in edge)  # type: ignore[arg-type]


def test_a_drawn_chart_leaves_no_figure_behind(stored: tuple[Engine, int]) -> None:
    """A running bot draws chart after chart: each figure and its pixels go as soon as it is drawn,
    not at the garbage collector's next full pass (measured before: a dozen figures, +60 MB)."""
    from matplotlib.figure import Figure

    data = _data(*stored)
    for _ in range(3):
        assert charts.render(data).png.startswith(b"\x89PNG")
        assert [o for o in gc.get_objects() if isinstance(o, Figure)] == []
    week = weekchart.render_week([data], NOW - 7 * DAY, NOW, "Week")
    assert week.png.startswith(b"\x89PNG")
    assert [o for o in gc.get_objects() if isinstance(o, Figure)] == []


def test_the_alt_text_says_what_the_chart_shows(stored: tuple[Engine, int]) -> None:
    chart = charts.render(_data(*stored), [MAINTENANCE])
    text = chart.alt_text
    assert text.startswith("Burn-down chart of checkout-availability (checkout), 99.9 % over 30d.")
    assert "Budget left at 30 Nov 12:00 UTC: 33.3 % (ahead of the ideal line's 0.0 %)." in text
    assert "Burn rate now: 1h 0.00x, 6h 0.00x, 1d 0.00x, 3d 0.00x." in text
    assert "PAGE 20 Nov 12:00–21 Nov 12:00" in text
    assert "Maintenance: DB upgrade 24 Nov 12:00–25 Nov 12:00." in text
    assert chart.filename == "checkout-availability-burn-down-20261130-1200.png"


def test_a_thirty_day_chart_is_drawn_well_under_a_second(stored: tuple[Engine, int]) -> None:
    engine, slo_id = stored
    charts.render(_data(engine, slo_id))  # the first loads matplotlib
    started = time.perf_counter()
    for _ in range(3):
        charts.render(_data(engine, slo_id))
    each = (time.perf_counter() - started) / 3
    assert each < 0.8, f"{each:.2f} s a chart"  # bench/chart_bench.py measures it properly


def test_a_maintenance_window_is_hatched_and_its_events_count_nowhere(stored: tuple[Engine, int]) -> None:
    engine, slo_id = stored
    window = (START + 8 * DAY, START + 10 * DAY)  # two days of the burn, declared as maintenance
    with Session(engine) as session:
        adjustment = Adjustment(
            "db-upgrade", window[0], window[1] - window[0], slos=("checkout-availability",)
        )
        adjustment_store.replace_declared(session=session, adjustments=[adjustment], now=START)
        session.commit()
    data = _data(engine, slo_id)
    assert data.maintenance == ((window[0], window[1], "db-upgrade"),)
    # 8 days at burn 2 are left of the 28 days that count: 1 - 16 / 28
    assert data.remaining_now == pytest.approx(1 - 16 / 28, abs=1e-9)
    with Session(engine) as session:  # what the evaluation says: its window sums less the excluded
        sums = history.window_sums(session=session, slo_id=slo_id, end=NOW, windows=[30 * DAY])
        counts = adjustment_store.subtract_excluded(
            session=session, slo_id=slo_id, excluded=[window], end=NOW, counts=sums
        )[30 * DAY]
    assert data.remaining_now == pytest.approx(1 - (1 - counts.good / counts.total) / 0.001, abs=1e-6)
    chart = charts.render(data)
    assert "Maintenance: db-upgrade 08 Nov 12:00–10 Nov 12:00." in chart.alt_text
    image = Image.open(io.BytesIO(chart.png)).convert("RGB")
    budget = chart.budget
    left, right = round(budget.x_of(window[0])), round(budget.x_of(window[1]))
    rows = range(round(budget.y_of(1.0)), round(budget.y_of(0.95)))
    strokes = sum(
        1 for px in range(left + 2, right - 1) for py in rows if sum(image.getpixel((px, py))) < 420
    )  # type: ignore[arg-type]
    assert strokes > 10


def test_an_slo_without_events_says_so(stored: tuple[Engine, int]) -> None:
    engine, slo_id = stored
    with Session(engine) as session:
        history.trim_buckets(session=session, slo_id=slo_id, before=NOW + DAY)
        session.commit()
    data = _data(engine, slo_id)
    assert data.remaining_now is None
    chart = charts.render(data)
    assert "No events in the window yet." in chart.alt_text
    assert Image.open(io.BytesIO(chart.png)).size == (1200, 960)


def test_console_mode_writes_charts_under_the_chart_directory(
    stored: tuple[Engine, int], tmp_path: Path
) -> None:
    files = ChartFiles(tmp_path / "charts" / "nested")
    path = files.write(_data(*stored), "route=/pay,method=POST breach 3")
    assert path.parent == tmp_path / "charts" / "nested"
    assert path.name == "route_pay_method_POST_breach_3-20261130-1200.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

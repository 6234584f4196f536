"""The weekly digest's chart: one line per SLO in its own colour, where its budget left says."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from PIL import Image

from bot import weekchart
from bot.burndown import BurnDown

END = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
START = END - timedelta(days=7)


def _burn_down(name: str, remaining: list[float]) -> BurnDown:
    times = tuple(START + timedelta(hours=i) for i in range(len(remaining)))
    return BurnDown(
        slo=name,
        service="svc",
        objective_ratio=0.999,
        window_spec="30d",
        period_start=END - timedelta(days=30),
        period_end=END,
        now=END,
        times=times,
        remaining=tuple(remaining),
        burns=(),
        breaches=(),
    )


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def _near(image: Image.Image, x: float, y: float, colour: str, reach: int = 4) -> bool:
    want = _rgb(colour)
    for dx in range(-reach, reach + 1):
        for dy in range(-reach, reach + 1):
            got = image.getpixel((round(x) + dx, round(y) + dy))[:3]  # type: ignore[index]
            if all(abs(a - b) <= 40 for a, b in zip(got, want, strict=True)):
                return True
    return False


def test_each_slo_is_a_line_of_its_own_colour_at_its_budget_left() -> None:
    hours = 7 * 24 + 1
    falling = [1.0 - 0.8 * i / (hours - 1) for i in range(hours)]  # 100 % to 20 % over the week
    flat = [0.6] * hours
    chart = weekchart.render_week(
        [_burn_down("checkout", falling), _burn_down("search", flat)], START, END, "Week"
    )
    image = Image.open(io.BytesIO(chart.png)).convert("RGB")
    panel = chart.budget
    middle = START + timedelta(days=3.5)
    # checkout in the first colour at 60 % in mid-week, search in the second at 60 % all week
    assert _near(image, panel.x_of(middle), panel.y_of(0.6), weekchart.LINE_COLOURS[0])
    assert _near(image, panel.x_of(START + timedelta(days=1)), panel.y_of(0.6), weekchart.LINE_COLOURS[1])
    assert _near(image, panel.x_of(START + timedelta(days=6)), panel.y_of(0.6), weekchart.LINE_COLOURS[1])
    assert not _near(image, panel.x_of(START + timedelta(days=1)), panel.y_of(0.3), weekchart.LINE_COLOURS[0])
    assert _near(
        image,
        panel.x_of(END - timedelta(hours=2)),
        panel.y_of(0.2 + 0.8 * 2 / 168),
        weekchart.LINE_COLOURS[0],
    )
    assert "checkout from 100% to 20%" in chart.alt_text and "search from 60% to 60%" in chart.alt_text


def test_a_week_without_data_still_draws_and_says_so() -> None:
    chart = weekchart.render_week([_burn_down("quiet", [])], START, END, "Week")
    assert chart.png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "quiet: no data" in chart.alt_text

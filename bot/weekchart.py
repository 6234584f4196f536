"""The weekly digest's one chart: the budget left of each of a channel's SLOs over the week, one
line each, drawn headless as PNG like `bot.charts` (same palette, type sizes and figure size)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.burndown import BurnDown
from bot.charts import (
    BLACK,
    BLUE,
    DPI,
    FONT,
    GREEN,
    ORANGE,
    PURPLE,
    SKY,
    VERMILLION,
    Chart,
    drawn,
    panel_of,
    style_axes,
)

LINE_COLOURS = (BLUE, VERMILLION, GREEN, ORANGE, PURPLE, SKY, BLACK)  # Okabe-Ito, yellow left out
MAX_LINES = len(LINE_COLOURS)  # the least budget left first; more lines would not be told apart


def render_week(items: Sequence[BurnDown], start: datetime, end: datetime, title: str) -> Chart:
    """Budget left of each SLO in [start, end]: the first MAX_LINES of `items` (give the least
    budget left first), each in its own colour and named in the legend."""
    return drawn(lambda figure: _render_week(figure, items, start, end, title))


def _render_week(figure: Any, items: Sequence[BurnDown], start: datetime, end: datetime, title: str) -> Chart:
    from matplotlib.ticker import PercentFormatter

    figure.subplots_adjust(left=0.125, right=0.975, top=0.9, bottom=0.3)
    ax = figure.subplots()
    style_axes(ax)
    shown = list(items)[:MAX_LINES]
    lowest = 0.0
    plotted = 0
    for data, colour in zip(shown, LINE_COLOURS, strict=False):
        points = [
            (t, v)
            for t, v in zip(data.times, data.remaining, strict=True)
            if start <= t <= end and v is not None
        ]
        if not points:
            continue
        lowest = min(lowest, *(v for _, v in points))
        ax.plot([t for t, _ in points], [v for _, v in points], color=colour, linewidth=3, label=data.slo)
        plotted += 1
    ax.axhline(0.0, color=BLACK, linewidth=1.5)
    ax.set_xlim(start, end)
    ax.set_ylim(min(-0.05, lowest - 0.05), 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel("budget left", fontsize=FONT)
    ax.xaxis.set_major_formatter(_day_format())
    if plotted:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=FONT - 2, frameon=False)
    else:
        ax.text(0.5, 0.5, "no data this week", transform=ax.transAxes, ha="center", fontsize=FONT + 2)
    figure.suptitle(title, fontsize=FONT + 3, fontweight="bold")
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    panel = panel_of(figure, ax)
    return Chart(out.getvalue(), alt_text(shown, start, end), f"digest-{end:%Y%m%d-%H%M}.png", panel, panel)


def _day_format() -> object:
    from matplotlib.dates import DateFormatter

    return DateFormatter("%a %d")  # type: ignore[no-untyped-call]


def alt_text(items: Sequence[BurnDown], start: datetime, end: datetime) -> str:
    """What the chart shows, for screen readers: each SLO's budget at the week's start and end."""
    parts = []
    for data in items:
        week = [
            v for t, v in zip(data.times, data.remaining, strict=True) if start <= t <= end and v is not None
        ]
        if week:
            parts.append(f"{data.slo} from {week[0]:.0%} to {week[-1]:.0%}")
        else:
            parts.append(f"{data.slo}: no data")
    return f"Budget left over the week to {end:%Y-%m-%d %H:%M} UTC: " + "; ".join(parts) + "."

"""Burn-down charts drawn as PNG: a `BurnDown` in, image bytes and their alt text out.

Drawn headless with matplotlib's Agg backend, which is imported on the first chart only (it takes a
few hundred milliseconds to load; no command that draws nothing should pay for it). Sized for a phone
screen: large type, thick lines, and the Okabe-Ito palette, which colour-blind readers tell apart.
"""

from __future__ import annotations

import gc
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.burndown import BurnDown, Span
from bot.durations import format_duration

# Okabe & Ito (2008), "Color Universal Design": distinct under every common colour-vision deficiency
BLACK, ORANGE, SKY, GREEN, YELLOW, BLUE, VERMILLION, PURPLE = (
    "#000000",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
)
BUDGET_COLOUR = BLUE
BURN_COLOURS = (VERMILLION, ORANGE, GREEN, SKY, PURPLE, BLACK)  # the policy's windows, shortest first
BREACH_COLOURS = {"page": VERMILLION, "ticket": ORANGE, "no-data": "#7F7F7F"}  # budget notices: PURPLE
BREACH_ALPHA = 0.22
WIDTH, HEIGHT, DPI = 8.0, 6.4, 150  # inches: 1200 x 960 pixels, about 3:2.4 as Slack previews it
FONT = 15


@dataclass(frozen=True)
class Panel:
    """Where one panel of the chart sits in the image (pixels, y down) and what its axes span."""

    left: float
    top: float
    right: float
    bottom: float
    x_from: datetime
    x_to: datetime
    y_from: float
    y_to: float

    def x_of(self, at: datetime) -> float:
        return self.left + (self.right - self.left) * ((at - self.x_from) / (self.x_to - self.x_from))

    def y_of(self, value: float) -> float:
        """Pixel row of `value` on a linear axis (the budget panel)."""
        return self.bottom - (self.bottom - self.top) * (value - self.y_from) / (self.y_to - self.y_from)


@dataclass(frozen=True)
class Chart:
    png: bytes
    alt_text: str
    filename: str
    budget: Panel  # the geometry of the drawing, for whoever needs to point into it
    burn: Panel


def render(data: BurnDown, maintenance: Sequence[tuple[datetime, datetime, str]] = ()) -> Chart:
    """Draw the chart: budget left over the period above, burn rates below, breaches shaded,
    `maintenance` spans (start, end, label) hatched, now marked."""
    return drawn(lambda figure: _render(figure, data, maintenance))


def _render(figure: Any, data: BurnDown, maintenance: Sequence[tuple[datetime, datetime, str]]) -> Chart:
    # fixed margins, not a layout engine: the labels are of known size, and constrained layout
    # measured every text of the figure again, which took half the time of a chart
    # (right: room for half of the date under the window's end, "01 Dec", which 0.975 clipped)
    figure.subplots_adjust(left=0.125, right=0.94, top=0.915, bottom=0.095, hspace=0.1)
    budget_ax, burn_ax = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    style_axes(budget_ax, burn_ax)
    _budget_panel(budget_ax, data)
    _burn_panel(burn_ax, data)
    maintenance = [*data.maintenance, *maintenance]
    for ax in (budget_ax, burn_ax):
        _spans(ax, data, maintenance, labelled=ax is budget_ax)
        ax.axvline(data.now, color=BLACK, linewidth=2, linestyle=":", zorder=4)
    budget_ax.set_xlim(data.period_start, max(data.period_end, data.now))
    _dates(burn_ax, data)
    figure.suptitle(
        f"{data.slo}: error budget, {data.window_spec} window", fontsize=FONT + 3, fontweight="bold"
    )
    out = io.BytesIO()
    # zlib's fastest level: a chart of flat colours compresses nearly as well, in a fraction of the time
    figure.savefig(out, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    budget, burn = (panel_of(figure, ax) for ax in (budget_ax, burn_ax))
    stamp = data.now.strftime("%Y%m%d-%H%M")
    return Chart(
        out.getvalue(), alt_text(data, maintenance), f"{data.slo}-burn-down-{stamp}.png", budget, burn
    )


def drawn(paint: Callable[[Any], Chart]) -> Chart:
    """The chart `paint` draws on a new figure, which is taken apart once drawn. A figure, its axes
    and their artists refer to each other, so counting references never frees them, only the
    garbage collector's full pass, which a busy process runs seldom: measured with
    bench/chart_bench.py, a dozen drawn figures lived at once, each with its 1200 x 960 pixel canvas
    (+114 MB over 200 charts; +50 MB when each goes as soon as it is drawn)."""
    figure = figure_class()(figsize=(WIDTH, HEIGHT), dpi=DPI)
    try:
        return paint(figure)
    finally:
        from matplotlib.backend_bases import FigureCanvasBase

        figure.clear()
        FigureCanvasBase(figure)  # replaces the drawn canvas: its pixels go now
        del figure
        # the cleared artists: a full pass (a few ms where the program's own objects are frozen, as
        # `slo-bot run` does; about 40 ms where they are not, as in a one-off command)
        gc.collect()


def figure_class() -> Any:
    """matplotlib's Figure, loaded headless. The first load on a machine builds a font cache and
    says so as a WARNING log line: a one-off delay of the first chart, not a problem to report."""
    fonts = logging.getLogger("matplotlib.font_manager")
    level = fonts.level
    fonts.setLevel(logging.ERROR)
    try:
        import matplotlib

        matplotlib.use("Agg")  # headless: never a display, never a GUI toolkit
        from matplotlib.figure import Figure
    finally:
        fonts.setLevel(level)
    return Figure


def style_axes(*axes: Any) -> None:
    for ax in axes:
        ax.tick_params(labelsize=FONT - 2, length=6, width=1.5)
        ax.grid(True, color="#DDDDDD", linewidth=1)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)


def _budget_panel(ax: Any, data: BurnDown) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.plot(
        [data.period_start, data.period_end],
        [1.0, 0.0],
        color=BLACK,
        linewidth=1.8,
        linestyle="--",
        label="ideal",
        zorder=2,
    )
    points = [(t, r) for t, r in zip(data.times, data.remaining, strict=True) if r is not None]
    if points:
        ax.plot(*zip(*points, strict=True), color=BUDGET_COLOUR, linewidth=3.5, label="budget left", zorder=3)
    else:
        ax.text(0.5, 0.5, "no data in the window yet", transform=ax.transAxes, ha="center", fontsize=FONT)
    lowest = min([0.0, *(r for _, r in points)])
    # room above 100 %, which no budget line reaches, for the labels of breaches and maintenance
    ax.set_ylim(min(-0.05, lowest - 0.05), 1.3)
    ax.set_yticks([t / 4 for t in range(5)] if lowest >= -0.25 else ax.get_yticks()[ax.get_yticks() <= 1])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel("budget left", fontsize=FONT)
    now = data.remaining_now
    if now is not None:
        ax.annotate(
            f"{now * 100:.1f} %",
            (data.now, now),
            xytext=(-8, 10 if now < 0.85 else -22),
            textcoords="offset points",
            ha="right",
            fontsize=FONT,
            fontweight="bold",
            color=BUDGET_COLOUR,
            zorder=6,
            # (legible where the line runs behind it, as it does left of `now`)
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
        )
    ax.legend(loc="lower left", fontsize=FONT - 3, frameon=True, framealpha=0.9)


def _burn_panel(ax: Any, data: BurnDown) -> None:
    from matplotlib.ticker import NullLocator

    top = 1.0
    for series, colour in zip(data.burns, BURN_COLOURS, strict=False):
        name = format_duration(series.window)
        points = [(t, v) for t, v in zip(data.times, series.values, strict=True) if v is not None]
        if points:
            ax.plot(*zip(*points, strict=True), color=colour, linewidth=2.2, label=name, zorder=3)
            top = max(top, *(v for _, v in points))
        if series.threshold is not None:
            ax.axhline(series.threshold, color=colour, linewidth=1.5, linestyle="--", zorder=2)
            top = max(top, series.threshold)
    # burn 0..1 linear (a healthy SLO), above that logarithmic: 1x, 6x and 14.4x all stay readable
    ax.set_yscale("symlog", linthresh=1.0, linscale=0.6)
    ax.set_ylim(0, top * 1.6)
    # ticks at the thresholds the rules fire at, written as people say them: 14.4x, 6x, 1x (with a times sign)
    marks = sorted({0.0, 1.0, *(s.threshold for s in data.burns if s.threshold is not None)})
    marks = [m for i, m in enumerate(marks) if i == 0 or m >= marks[i - 1] * 1.6 or m <= 1.0]
    ax.set_yticks(marks, [f"{m:g}×" for m in marks])
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_ylabel("burn rate (×)", fontsize=FONT)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(
            loc="upper left", fontsize=FONT - 3, ncol=min(4, len(data.burns)), frameon=True, framealpha=0.9
        )


def _spans(
    ax: Any, data: BurnDown, maintenance: Sequence[tuple[datetime, datetime, str]], labelled: bool
) -> None:
    labels: list[tuple[datetime, datetime, str, str]] = []
    for span in data.breaches:
        end = span.end or data.now
        start = max(span.start, data.period_start)
        if end < data.period_start:
            continue
        # a 10-minute breach in a 30-day chart would be under a pixel wide: shown at least this wide
        least = (max(data.period_end, data.now) - data.period_start) / 150
        if end - start < least:
            start = max(data.period_start, end - least)
        colour = BREACH_COLOURS.get(span.severity, PURPLE)
        ax.axvspan(start, end, color=colour, alpha=BREACH_ALPHA, linewidth=0, zorder=1)
        labels.append((start, end, span.label, colour))
    for start, end, label in maintenance:
        ax.axvspan(start, end, facecolor="none", edgecolor="#555555", hatch="//", linewidth=0, zorder=1)
        labels.append((start, end, label, "#333333"))
    if labelled:
        # "now" is a label like the spans' (they may end at now too): the rows keep them apart
        _labels(ax, data, [*labels, (data.now, data.now, "now", BLACK)])


LABEL_ROWS = (0.945, 0.86)  # axes fractions of the strip above 100 % in the budget panel


def _labels(ax: Any, data: BurnDown, labels: list[tuple[datetime, datetime, str, str]]) -> None:
    """Each span's label above it, in the strip over 100 %: in the first of two rows where it
    overlaps no other label (else the row it overlaps least); near an edge of the chart it leans
    inwards, so it is never cut off."""
    left, right = data.period_start, max(data.period_end, data.now)
    # the label's width as a share of the axes: bold type is about 0.62 em a character, plus its box
    axes_px = (0.975 - 0.125) * WIDTH * DPI
    ends = [float("-inf")] * len(LABEL_ROWS)
    for start, end, text, colour in sorted(labels):
        middle = start + (end - start) / 2
        where = (middle - left) / (right - left)
        width = ((len(text) * 0.62 + 1) * (FONT - 3) * DPI / 72) / axes_px
        align = "left" if where < 0.12 else "right" if where > 0.88 else "center"
        anchor = {"left": start, "right": end, "center": middle}[align]
        x = (anchor - left) / (right - left)
        x0 = {"left": x, "right": x - width, "center": x - width / 2}[align]
        row = next((i for i, e in enumerate(ends) if e <= x0), min(range(len(ends)), key=lambda i: ends[i]))
        ends[row] = x0 + width
        ax.annotate(
            text,
            (anchor, LABEL_ROWS[row]),
            xycoords=("data", "axes fraction"),
            ha=align,
            fontsize=FONT - 3,
            fontweight="bold",
            color="#222222",
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": colour, "alpha": 0.9},
            zorder=7,
        )


def _dates(ax: Any, data: BurnDown) -> None:
    from matplotlib.dates import AutoDateLocator, DateFormatter

    length = max(data.period_end, data.now) - data.period_start
    locator = AutoDateLocator(minticks=3, maxticks=7)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    shown = "%d %b" if length > timedelta(days=2) else "%H:%M"
    ax.xaxis.set_major_formatter(DateFormatter(shown))  # type: ignore[no-untyped-call]
    ax.set_xlabel("UTC", fontsize=FONT - 2)


def panel_of(figure: Any, ax: Any) -> Panel:
    box = ax.get_window_extent()
    height = figure.bbox.height
    x_from, x_to = ax.get_xlim()
    y_from, y_to = ax.get_ylim()
    from matplotlib.dates import num2date

    return Panel(
        left=box.x0,
        top=height - box.y1,
        right=box.x1,
        bottom=height - box.y0,
        x_from=num2date(x_from),  # type: ignore[no-untyped-call]
        x_to=num2date(x_to),  # type: ignore[no-untyped-call]
        y_from=y_from,
        y_to=y_to,
    )


def alt_text(data: BurnDown, maintenance: Sequence[tuple[datetime, datetime, str]] = ()) -> str:
    """What the chart shows, in words, for a screen reader (Slack's `alt_txt`)."""
    objective = f"{data.objective_ratio * 100:g} % over {data.window_spec}"
    parts = [f"Burn-down chart of {data.slo} ({data.service}), {objective}."]
    now = data.remaining_now
    if now is None:
        parts.append("No events in the window yet.")
    else:
        ideal = data.ideal_at(data.now)
        pace = "ahead of" if now >= ideal else "behind"
        parts.append(
            f"Budget left at {data.now:%d %b %H:%M} UTC: {now * 100:.1f} % "
            f"({pace} the ideal line's {ideal * 100:.1f} %)."
        )
    burns = [
        f"{format_duration(s.window)} {s.values[-1]:.2f}x"
        for s in data.burns
        if s.values and s.values[-1] is not None
    ]
    if burns:
        parts.append("Burn rate now: " + ", ".join(burns) + ".")
    shown = [s for s in data.breaches if (s.end or data.now) >= data.period_start]
    if shown:
        parts.append(f"Breaches in the window: {', '.join(_span_words(s, data.now) for s in shown)}.")
    else:
        parts.append("No breaches in the window.")
    if maintenance:
        parts.append(
            "Maintenance: "
            + ", ".join(f"{label} {start:%d %b %H:%M}–{end:%d %b %H:%M}" for start, end, label in maintenance)
            + "."
        )
    return " ".join(parts)


def _span_words(span: Span, now: datetime) -> str:
    if span.end is None:
        return f"{span.label} since {span.start:%d %b %H:%M}"
    return f"{span.label} {span.start:%d %b %H:%M}–{span.end:%d %b %H:%M}"

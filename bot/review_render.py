"""A `bot.review.Review` as a reader gets it: JSON, CSV, a markdown table, HTML (Jinja2, autoescaped),
and the lines of `/slo report`. Pure: a review in, text out."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import jinja2

from bot.messages import span, utc_time
from bot.review import BreachLine, Review, SLOReview

FORMATS = ("markdown", "json", "csv", "html")
PERIOD_NAMES = {"7d": "the last 7 days", "30d": "the last 30 days", "quarter": "the quarter so far"}
COLUMNS = (
    "SLO",
    "Service",
    "Objective",
    "SLI",
    "Data",
    "Failed",
    "Budget left",
    "Change",
    "Spent in period",
    "Breaches",
    "Time to acknowledge",
    "Failing",
)


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def title(review: Review) -> str:
    scope = f" of {review.service}" if review.service else ""
    return f"SLO report{scope}: {PERIOD_NAMES[review.period]}"


def span_text(review: Review) -> str:
    return f"{utc_time(review.start)} to {utc_time(review.end)}"


# --- JSON and CSV: numbers as numbers (ratios as fractions, times ISO 8601 UTC, durations in seconds)


def _breach_json(b: BreachLine) -> dict[str, Any]:
    return {
        "number": b.number,
        "kind": b.kind,
        "severity": b.severity,
        "opened_at": iso(b.opened_at),
        "resolved_at": iso(b.resolved_at),
        "time_to_acknowledge_s": _seconds(b.time_to_acknowledge),
        "budget_spent": _round(b.spent_ratio),
    }


def slo_json(s: SLOReview) -> dict[str, Any]:
    return {
        "slo": s.slo,
        "service": s.service,
        "objective": s.objective,
        "window": s.window,
        "sli": _round(s.sli, 8),
        "good": s.good,
        "total": s.total,
        "failed": s.failed,
        "coverage": _round(s.coverage_ratio, 4),
        "budget": {
            "remaining": _round(s.budget_remaining),
            "remaining_at_start": _round(s.budget_remaining_at_start),
            "start_measured_at": iso(s.budget_start_measured_at),
            "change": _round(s.budget_change),
            "spent_in_period": _round(s.budget_spent_in_period),
        },
        "breaches": {
            "count": len(s.breaches),
            "acknowledged": s.acknowledged,
            "median_time_to_acknowledge_s": _seconds(s.median_time_to_acknowledge),
            "top": [_breach_json(b) for b in s.top_breaches],
        },
        "failing_since": iso(s.failing_since),
        "failure": s.failure,
    }


def render_json(review: Review) -> str:
    data = {
        "period": review.period,
        "start": iso(review.start),
        "end": iso(review.end),
        "service": review.service,
        "slos": [slo_json(s) for s in review.slos],
    }
    return json.dumps(data, indent=2)


CSV_FIELDS = (
    "period",
    "period_start",
    "period_end",
    "slo",
    "service",
    "objective",
    "window",
    "sli",
    "good",
    "total",
    "failed",
    "coverage",
    "budget_remaining",
    "budget_remaining_at_start",
    "budget_start_measured_at",
    "budget_change",
    "budget_spent_in_period",
    "breaches",
    "acknowledged",
    "median_time_to_acknowledge_s",
    "most_spent_breach",
    "most_spent_breach_budget",
    "failing_since",
    "failure",
)


def _cell(text: str | None) -> str | None:
    """Text a spreadsheet would run as a formula (`=`, `+`, `@`: a server's error message, say) is
    kept as text."""
    return "'" + text if text and text[0] in "=+@\t\r" else text


def render_csv(review: Review) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for s in review.slos:
        data = slo_json(s)
        top = s.top_breaches[0] if s.top_breaches else None
        writer.writerow(
            {
                "period": review.period,
                "period_start": iso(review.start),
                "period_end": iso(review.end),
                **{k: data[k] for k in ("slo", "service", "objective", "window", "sli", "good", "total")},
                "failed": data["failed"],
                "coverage": data["coverage"],
                **{f"budget_{k}": v for k, v in data["budget"].items()},
                "breaches": len(s.breaches),
                "acknowledged": s.acknowledged,
                "median_time_to_acknowledge_s": data["breaches"]["median_time_to_acknowledge_s"],
                "most_spent_breach": top.number if top else None,
                "most_spent_breach_budget": _round(top.spent_ratio) if top else None,
                "failing_since": data["failing_since"],
                "failure": _cell(s.failure),
            }
        )
    return out.getvalue()


# --- words: markdown, HTML and Slack read the same cells ---------------------------------------------


def _pct(ratio: float | None, digits: int = 1) -> str:
    return "n/a" if ratio is None else f"{ratio * 100:.{digits}f} %"


def _points(change: float | None) -> str:
    return "n/a" if change is None else f"{change * 100:+.1f} pts"


def _change(s: SLOReview, time: Callable[[datetime], str]) -> str:
    """-12.3 pts; from a daily reading before the period's start: "-12.3 pts since <its time>"."""
    measured = s.budget_start_measured_at
    text = _points(s.budget_change)
    if s.budget_change is None or measured is None or measured == s.period_start:
        return text
    return f"{text} since {time(measured)}"


def _ack(s: SLOReview) -> str:
    median = s.median_time_to_acknowledge
    if not s.breaches:
        return "-"
    acked = f"{s.acknowledged} of {len(s.breaches)} acknowledged"
    return acked if median is None else f"{acked}, median {span(median)}"


def cells(s: SLOReview, time: Callable[[datetime], str] = utc_time) -> dict[str, Any]:
    """One SLO's figures as text, the same in every human format."""
    objective_digits = 3 if s.objective is not None and s.objective > 0.99 else 1
    top = [
        {
            "number": b.number,
            "severity": b.severity,
            "opened": time(b.opened_at),
            "lasted": span(b.resolved_at - b.opened_at) if b.resolved_at else "still open",
            "ack": "not acknowledged" if b.time_to_acknowledge is None else span(b.time_to_acknowledge),
            "spent": _pct(b.spent_ratio),
        }
        for b in s.top_breaches
    ]
    return {
        "slo": s.slo,
        "service": s.service,
        "objective": _pct(s.objective, objective_digits),
        "sli": _pct(s.sli, 3),
        "short": s.sli is not None and s.objective is not None and s.sli < s.objective,
        "coverage": _pct(s.coverage_ratio, 0),
        "failed": f"{s.failed:,.0f}",
        "remaining": _pct(s.budget_remaining),
        "change": _change(s, time),
        "spent": _pct(s.budget_spent_in_period),
        "breaches": str(len(s.breaches)),
        "ack": _ack(s),
        "failure": "" if s.failing_since is None else f"since {time(s.failing_since)}: {s.failure or '?'}",
        "top": top,
    }


def _md(text: str) -> str:
    """A table cell: its pipes escaped, and HTML (which markdown renders) shown as text."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(review: Review) -> str:
    lines = [f"# {title(review)}", "", f"{span_text(review)}.", ""]
    if not review.slos:
        return "\n".join([*lines, "No SLO."]) + "\n"
    keys = ("slo", "service", "objective", "sli", "coverage", "failed", "remaining", "change", "spent")
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "|".join("---" for _ in COLUMNS) + "|")
    rows = [cells(s) for s in review.slos]
    for row in rows:
        values = [row[k] for k in keys] + [row["breaches"], row["ack"], row["failure"]]
        lines.append("| " + " | ".join(_md(v) for v in values) + " |")
    for row in rows:
        if row["top"]:
            lines += ["", f"## {_md(row['slo'])}: breaches that spent most", ""]
            for b in row["top"]:
                ack = b["ack"] if b["ack"] == "not acknowledged" else f"acknowledged after {b['ack']}"
                lines.append(
                    f"- #{b['number']} {b['severity']} at {b['opened']}, {b['lasted']}, {ack}: "
                    f"{b['spent']} of the budget"
                )
    return "\n".join(lines) + "\n"


_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("bot", "templates"),
    autoescape=True,  # SLO names, services and a server's error text are data, never markup
    undefined=jinja2.StrictUndefined,
)


def render_html(review: Review) -> str:
    template = _TEMPLATES.get_template("review.html.j2")
    return template.render(
        title=title(review),
        span=span_text(review),
        service=review.service,
        columns=COLUMNS,
        rows=[cells(s) for s in review.slos],
    )


def render(review: Review, form: str) -> str:
    renderers = {"markdown": render_markdown, "json": render_json, "csv": render_csv, "html": render_html}
    return renderers[form](review)


def slack_lines(review: Review, time: Callable[[datetime], str], escape: Callable[[str], str]) -> list[str]:
    """`/slo report`: a line per SLO, markdown-ish (Slack's mrkdwn)."""
    lines = []
    for s in review.slos:
        row = cells(s, time)
        icon = "⚪" if s.sli is None else ("🔴" if row["short"] else "🟢")
        sli = f"SLI {row['sli']} (objective {row['objective']}, data for {row['coverage']} of the period)"
        left = f"budget {row['remaining']} left ({row['change']}; {row['spent']} spent in the period)"
        text = (
            f"{icon} `{escape(s.slo)}` ({escape(s.service)}): {sli} · {left} · {row['breaches']} breach(es)"
        )
        if s.breaches:
            text += f", {row['ack']}"
            worst = row["top"][0]
            text += f"; most spent: #{worst['number']} ({worst['spent']})"
        if row["failure"]:
            text += f"\n    ⚠️ not evaluated {escape(row['failure'])}"
        lines.append(text)
    return lines

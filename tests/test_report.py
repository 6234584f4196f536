"""`slo-bot report` on a known week stored through the real store (SQLite and PostgreSQL): every
format parsed back (JSON, CSV, HTML, markdown) says the same numbers."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bot import cli
from tests import reviewhistory


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("SLO_BOT_CONFIG", raising=False)

    def call(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.fixture
def week(database_url: str, tmp_path: Path) -> reviewhistory.Week:
    reviewhistory.apply(database_url, tmp_path)
    return reviewhistory.store(database_url)


def _latency_remaining(week: reviewhistory.Week) -> float | None:
    if not week.latency_events:  # (the first minute of a month: nothing stored yet)
        return None
    return 1 - (week.latency_bad / week.latency_events) / 0.01


def test_json_has_the_weeks_sli_budget_breaches_and_failures(run, week: reviewhistory.Week) -> None:
    code, out, _ = run("report", "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert report["period"] == "7d" and report["service"] is None
    slos = {s["slo"]: s for s in report["slos"]}
    assert list(slos) == ["checkout-availability", "checkout-latency", "search-availability"]
    checkout = slos["checkout-availability"]
    assert (checkout["good"], checkout["total"], checkout["failed"]) == (71955.0, 72000.0, 45.0)
    assert checkout["sli"] == pytest.approx(0.999375)
    assert checkout["objective"] == 0.999 and checkout["window"] == "30d"
    assert checkout["coverage"] == pytest.approx(72 / 168, abs=1e-4)  # 3 days of the week stored
    assert checkout["budget"]["remaining"] == pytest.approx(0.375)
    assert checkout["budget"]["spent_in_period"] == pytest.approx(0.625)
    # a rolling window's failures of a week ago are gone from the buckets: its daily reading of then says
    assert checkout["budget"]["remaining_at_start"] == 0.8
    assert checkout["budget"]["start_measured_at"] == week.reading_at.isoformat().replace("+00:00", "Z")
    assert checkout["budget"]["change"] == pytest.approx(0.375 - 0.8)
    breaches = checkout["breaches"]
    assert breaches["count"] == 3 and breaches["acknowledged"] == 2  # the one 8 days ago is not in it
    assert breaches["median_time_to_acknowledge_s"] == 7 * 60  # 4 and 10 minutes
    top = breaches["top"]
    assert [(b["severity"], b["time_to_acknowledge_s"]) for b in top] == [
        ("page", 240.0),
        ("ticket", 600.0),
        ("page", None),
    ]
    assert [b["budget_spent"] for b in top] == pytest.approx([30 / 72, 10 / 72, 5 / 72], abs=1e-6)
    assert top[2]["resolved_at"] is None  # still open: its cost so far, from the buckets
    search = slos["search-availability"]
    assert search["sli"] is None and search["total"] == 0 and search["coverage"] == 0
    assert search["failure"] == reviewhistory.FAILURE and search["failing_since"].endswith("Z")
    assert checkout["failure"] is None


def test_the_quarter_says_how_a_calendar_budget_moved(run, week: reviewhistory.Week) -> None:
    code, out, _ = run("report", "--window", "quarter", "--format", "json", "--service", "checkout")
    assert code == 0
    report = json.loads(out)
    assert report["period"] == "quarter" and report["service"] == "checkout"
    assert report["start"][5:] in ("01-01T00:00:00Z", "04-01T00:00:00Z", "07-01T00:00:00Z", "10-01T00:00:00Z")
    slos = {s["slo"]: s for s in report["slos"]}
    assert set(slos) == {"checkout-availability", "checkout-latency"}
    budget = slos["checkout-latency"]["budget"]
    # the month at the quarter's start begins there: its whole budget; the change is what it lost since
    expected = _latency_remaining(week)
    assert budget["remaining"] == pytest.approx(expected)
    assert budget["remaining_at_start"] == 1.0
    assert budget["change"] == (None if expected is None else pytest.approx(expected - 1.0))


def test_csv_parses_back_to_the_same_numbers_and_runs_no_formula(run, week: reviewhistory.Week) -> None:
    code, out, _ = run("report", "--format", "csv")
    assert code == 0
    rows = {r["slo"]: r for r in csv.DictReader(io.StringIO(out))}
    checkout = rows["checkout-availability"]
    assert checkout["period"] == "7d" and checkout["period_start"].endswith("Z")
    assert float(checkout["sli"]) == pytest.approx(0.999375)
    assert float(checkout["failed"]) == 45.0
    assert float(checkout["budget_remaining"]) == pytest.approx(0.375)
    assert float(checkout["budget_spent_in_period"]) == pytest.approx(0.625)
    assert float(checkout["budget_change"]) == pytest.approx(-0.425)
    assert checkout["budget_start_measured_at"] == week.reading_at.isoformat().replace("+00:00", "Z")
    assert rows["checkout-latency"]["budget_change"] == ""  # no reading, a month begun after the start
    assert (checkout["breaches"], checkout["acknowledged"]) == ("3", "2")
    assert float(checkout["median_time_to_acknowledge_s"]) == 420.0
    assert float(checkout["most_spent_breach_budget"]) == pytest.approx(30 / 72, abs=1e-6)
    search = rows["search-availability"]
    assert search["sli"] == "" and search["failure"] == "'" + reviewhistory.FAILURE


class _Tables(HTMLParser):
    """The text of every table cell, by table id (or class) and row."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.current: list[list[str]] | None = None
        self.cell: list[str] | None = None
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        if tag == "table":
            key = found.get("id") or f"{found.get('class')}:{found.get('data-slo')}"
            self.current = self.tables.setdefault(str(key), [])
        elif tag == "tr" and self.current is not None:
            self.current.append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None and self.current is not None:
            self.current[-1].append("".join(self.cell))
            self.cell = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def test_html_is_one_table_of_slos_and_the_costliest_breaches_escaped(run, week: reviewhistory.Week) -> None:
    code, out, _ = run("report", "--format", "html")
    assert code == 0
    assert "<b>" not in out and "&lt;b&gt;cannot reach it&lt;/b&gt;" in out  # autoescaped
    parser = _Tables()
    parser.feed(out)
    header, *rows = parser.tables["slos"]
    table = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
    checkout = table["checkout-availability"]
    assert checkout["SLI"] == "99.938 %" and checkout["Objective"] == "99.900 %"
    assert checkout["Budget left"] == "37.5 %" and checkout["Spent in period"] == "62.5 %"
    assert checkout["Change"] == f"-42.5 pts since {week.reading_at:%Y-%m-%d %H:%M} UTC"
    assert checkout["Failed"] == "45" and checkout["Breaches"] == "3"
    assert checkout["Time to acknowledge"] == "2 of 3 acknowledged, median 7 min"
    assert table["search-availability"]["SLI"] == "n/a"
    assert table["search-availability"]["Failing"].endswith(reviewhistory.FAILURE)
    _, *breaches = parser.tables["breaches:checkout-availability"]
    assert all(b[0].startswith("#") for b in breaches)
    assert [(b[1], b[3], b[4], b[5]) for b in breaches] == [
        ("page", "1 h 00 min", "4 min", "41.7 %"),
        ("ticket", "1 h 00 min", "10 min", "13.9 %"),
        ("page", "still open", "not acknowledged", "6.9 %"),
    ]


def test_markdown_is_a_table_and_the_costliest_breaches(run, week: reviewhistory.Week) -> None:
    code, out, _ = run("report", "--format", "markdown", "--window", "30d")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "# SLO report: the last 30 days"
    header = next(i for i, line in enumerate(lines) if line.startswith("| SLO |"))
    names = [c.strip() for c in lines[header].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[header + 2 : header + 5]]
    table = {r[0]: dict(zip(names, r, strict=True)) for r in rows}
    assert table["checkout-availability"]["SLI"] == "99.938 %"
    assert table["checkout-availability"]["Data"] == "10 %"  # 3 of 30 days
    assert table["checkout-availability"]["Change"] == "n/a"  # no reading from 30 days ago
    assert "## checkout-availability: breaches that spent most" in lines
    assert any(
        line.startswith("- #") and "acknowledged after 4 min: 41.7 % of the budget" in line for line in lines
    )


def test_an_unknown_service_is_said_with_a_suggestion(run, week: reviewhistory.Week) -> None:
    code, out, err = run("report", "--service", "chekout")
    assert code == 1 and out == "" and "did you mean checkout?" in err
    with pytest.raises(SystemExit) as exited:  # argparse's own refusal, with the choices
        run("report", "--window", "week")
    assert exited.value.code == 2


def test_a_maintenance_window_leaves_its_events_out_of_the_report(
    run, week: reviewhistory.Week, database_url: str
) -> None:
    from datetime import UTC, datetime

    from sqlmodel import Session

    from bot.adjustments import Adjustment
    from bot.buckets import HOUR, floor_time
    from bot.store import adjustments, db

    hour = floor_time(week.written_at, HOUR)
    engine = db.make_engine(database_url)
    with Session(engine) as session:  # over the hour of 30 failures, 50 hours ago
        window = Adjustment("upgrade", hour - 50 * HOUR, HOUR, slos=("checkout-availability",))
        adjustments.replace_declared(session=session, adjustments=[window], now=datetime.now(UTC))
        session.commit()
    engine.dispose()
    code, out, _ = run("report", "--format", "json")
    assert code == 0
    checkout = {s["slo"]: s for s in json.loads(out)["slos"]}["checkout-availability"]
    assert (checkout["good"], checkout["total"], checkout["failed"]) == (70985.0, 71000.0, 15.0)
    assert checkout["budget"]["remaining"] == pytest.approx(1 - (15 / 71000) / 0.001)
    assert checkout["coverage"] == pytest.approx(71 / 167, abs=1e-4)  # its hour is not the store's gap

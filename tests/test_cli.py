"""The command line on the built-in simulated source: what a person at a terminal sees."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from bot import cli
from tests import spenthistory

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "checkout.yaml"
AT = "2026-11-23T14:16:00Z"  # Monday 14:16 UTC: the example's weekly incident is on


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


def test_apply_is_idempotent_and_prune_removes_what_is_gone(run, tmp_path: Path) -> None:
    code, out, _ = run("apply", str(EXAMPLE))
    assert code == 0
    assert sorted(out.split()) == sorted(
        [
            "created:",
            "checkout-availability",
            "created:",
            "search-availability",
            "created:",
            "checkout-good-minutes",
        ]
    )
    code, out, err = run("apply", str(EXAMPLE))
    assert (code, out) == (0, "")
    assert "0 created, 0 updated, 3 unchanged" in err
    only_search = tmp_path / "search.yaml"
    documents = EXAMPLE.read_text().split("\n---\n")
    gone = ("  name: checkout-availability\n", "  name: checkout-good-minutes\n")
    only_search.write_text("\n---\n".join(d for d in documents if not any(g in d for g in gone)))
    code, out, _ = run("apply", "--prune", str(only_search))
    assert code == 0
    assert "deleted: checkout-availability" in out and "deleted: checkout-good-minutes" in out
    code, out, _ = run("status", "--json")
    assert [row["slo"] for row in json.loads(out)] == ["search-availability"]


def test_validate_prints_one_line_per_problem_and_never_a_traceback(run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: x\nspec:\n  service: [\n")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x00\xff\xfe garbage")
    code, out, err = run("validate", str(bad), str(binary), str(tmp_path / "missing.yaml"))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{bad}:6: yaml: YAML syntax error")
    assert all(line.split(":")[1].isdigit() for line in lines)
    assert "Traceback" not in out + err
    assert run("validate", str(EXAMPLE))[0] == 0


def test_apply_of_an_invalid_catalogue_changes_nothing(run, tmp_path: Path) -> None:
    run("apply", str(EXAMPLE))
    broken = tmp_path / "broken.yaml"
    broken.write_text(EXAMPLE.read_text().replace("target: 0.999", "target: 99.9"))
    code, out, err = run("apply", str(broken))
    assert code == 1 and "spec.objectives[0].target" in out and "nothing applied" in err
    code, out, _ = run("check", "--at", AT, "--json")
    rows = {r["slo"]: r for r in json.loads(out)}
    assert rows["checkout-availability"]["objective"] == 0.999


def test_check_prints_the_spec_json_and_a_table(run) -> None:
    run("apply", str(EXAMPLE))
    # 14:10: the fast-burn condition holds, pending for its alertAfter of 5 minutes ...
    code, out, _ = run("check", "--at", "2026-11-23T14:10:00Z", "--json")
    alerts = {r["slo"]: r["alerts"] for r in json.loads(out)}["checkout-availability"]
    assert [a["severity"] for a in alerts] == ["budget-50"]  # about half the budget is spent
    code, out, _ = run("check", "--at", AT, "--json")
    assert code == 0
    rows = {r["slo"]: r for r in json.loads(out)}
    # ... at 14:16 it is firing: its condition holds from 14:09, so it fired at 14:14, which `check --at`
    # finds from the data alone, as an evaluation every minute would have
    page = {"severity": "page", "state": "firing", "since": "2026-11-23T14:14:00Z"}
    assert page in rows["checkout-availability"]["alerts"]
    row = rows["search-availability"]
    assert set(row) == {
        "slo",
        "service",
        "objective",
        "window",
        "evaluated_at",
        "sli",
        "good",
        "total",
        "budget",
        "burn_rates",
        "exhaustion_at",
        "alerts",
        "state",
    }
    assert row["window"] == "28d" and row["objective"] == 0.99
    assert row["evaluated_at"] == AT
    assert set(row["burn_rates"]) == {"5m", "30m", "1h", "2h", "6h", "1d", "3d"}
    assert 0 < row["sli"] < 1 and row["good"] < row["total"]
    # checkout has its own AlertPolicy: one burnrate condition over 1h (and 1h / 12)
    assert set(rows["checkout-availability"]["burn_rates"]) == {"5m", "1h"}
    code, out, _ = run("check", "--at", AT, "--slo", "search-availability")
    assert code == 0
    assert out.splitlines()[0].split()[:4] == ["SLO", "SERVICE", "OBJECTIVE", "SLI"]
    assert out.splitlines()[1].startswith("search-availability")
    code, out, _ = run("status")
    assert code == 0 and "checkout-good-minutes" in out
    # `check --at` is read-only: it opened no alert and is not what status shows
    code, out, _ = run("status", "--json")
    stored = {r["slo"]: r for r in json.loads(out)}
    assert stored["checkout-availability"]["alerts"] == []
    assert stored["checkout-availability"]["evaluated_at"] is None


def test_unknown_names_and_bad_times_get_a_useful_answer(run) -> None:
    code, _, err = run("check")
    assert code == 1 and "slo-bot apply" in err
    run("apply", str(EXAMPLE))
    code, _, err = run("check", "--slo", "checkout-availabilty")
    assert code == 1 and "did you mean checkout-availability" in err
    code, _, err = run("check", "--at", "yesterday")
    assert code == 2 and "ISO 8601" in err
    code, _, err = run("replay", "--from", AT, "--to", "2026-11-23T14:00:00Z")
    assert code == 2 and "--to must be after --from" in err


def test_db_upgrade(run) -> None:
    code, out, _ = run("db", "upgrade")
    assert code == 0 and "at head" in out


def _minute(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M}"


def test_status_says_when_budgets_run_out_since_when_they_are_spent_and_when_back(
    run, database_url: str, tmp_path: Path
) -> None:
    expected = spenthistory.write(database_url, tmp_path)
    code, out, _ = run("status")
    assert code == 0
    lines = out.splitlines()
    assert "RUNS OUT (AVG | 6H BURN)" in lines[0]
    row = {line.split()[0]: line for line in lines[1:4]}
    # 0.6 left: at the 30-day average burn (0.4) in 45 days, at the 6h burn (2.0x) in 9 days
    left = f"{_minute(expected.left_average_at)} | {_minute(expected.left_6h_at)}"
    assert row["budget-left"].endswith(left), row["budget-left"]
    assert row["rolling-spent"].endswith("spent") and row["calendar-spent"].endswith("spent")
    said = {line.split(":")[1].strip(): line for line in lines if line.startswith("budget: ")}
    assert said["rolling-spent"] == (
        f"budget: rolling-spent: exhausted since {_minute(expected.rolling_spent_since)} UTC, "
        f"back at {_minute(expected.rolling_back_at)} UTC if nothing more fails"
    )
    assert said["calendar-spent"] == (
        f"budget: calendar-spent: exhausted since {_minute(expected.calendar_spent_since)} UTC, "
        f"back at {_minute(expected.calendar_back_at)} UTC when the period resets"
    )
    assert "budget-left" not in said
    # the JSON of SPEC.md is unchanged: `exhaustion_at` stays the 1h burn's (none here)
    code, out, _ = run("status", "--json")
    rows = {r["slo"]: r for r in json.loads(out)}
    assert rows["rolling-spent"]["budget"]["remaining"] == -0.109
    assert "exhausted_since" not in rows["rolling-spent"]

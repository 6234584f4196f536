"""A composite SLO in Slack through the real HTTP endpoint of `slo-bot run`: `/slo show` lists its
parts with their weights, objectives and the SLIs the bot stored; `/slo status` has one line for it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from bot import cli
from bot.store import db
from bot.store.models import SLORecord, SnapshotRecord
from tests.fakeslack import FakeSlack
from tests.promharness import History
from tests.slack.conftest import BotFactory
from tests.slack.test_commands import Asker
from tests.test_composite_prometheus import CATALOGUE


def test_slo_show_lists_the_parts_under_the_composite(
    tmp_path: Path,
    database_url: str,
    prometheus_fixed: str,
    prom_history_fixed: History,
    start_bot: BotFactory,
    slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    history = prom_history_fixed
    text = (
        CATALOGUE.replace("GOOD", history.good_selector)
        .replace("TOTAL", history.total_selector)
        .replace("BAD", history.bad_selector)
    )
    path = tmp_path / "journey.yaml"
    path.write_text(text)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PROMETHEUS_URL", prometheus_fixed)
    monkeypatch.delenv("SLO_BOT_CONFIG", raising=False)
    assert cli.main(["apply", str(path)]) == 0
    bot = start_bot(None, env={"PROMETHEUS_URL": prometheus_fixed})
    ask = Asker(bot)
    engine = db.make_engine(database_url)

    def stored_slis() -> dict[str, set[str]]:
        """Every SLI the bot stored for each part, as `/slo show` writes it."""
        with Session(engine) as session:
            rows = session.exec(
                select(SLORecord.name, SnapshotRecord.sli).join(
                    SnapshotRecord, col(SnapshotRecord.slo_id) == SLORecord.id
                )
            ).all()
        found: dict[str, set[str]] = {}
        for name, sli in rows:
            found.setdefault(name, set()).add("no data" if sli is None else f"SLI {sli * 100:.4f} %")
        return found

    try:
        shown = ask("show checkout-journey")
        for _ in range(30):  # the first tick of the bot may still be under way
            if "not evaluated yet" not in shown:
                break
            time.sleep(1.0)
            shown = ask("show checkout-journey")
        slis = stored_slis()
    finally:
        engine.dispose()
    assert "99.225 % over 30d" in shown
    assert "*Parts* (weighted by their burn against their own objectives):" in shown
    lines = {
        line.split("`")[1]: line for line in shown.splitlines() if line.startswith("• `checkout-journey[")
    }
    assert list(lines) == ["checkout-journey[live]", "checkout-journey[yesterday]"]
    assert "weight 25 %, objective 99.9 %: SLI " in lines["checkout-journey[live]"]
    assert "weight 75 %, objective 99 %: SLI " in lines["checkout-journey[yesterday]"]
    for name, line in lines.items():
        sli = line.split(": ", 2)[2].split(",")[0]
        assert sli in slis[name], (sli, slis[name])  # what the bot evaluated, not made up
        assert "of its budget left" in line
    assert "failed requests" not in shown  # a composite's events have no one budget of requests

    status = ask("status")
    assert "`checkout-journey`" in status and "checkout-journey[" not in status
    assert "1 SLO(s)" in status

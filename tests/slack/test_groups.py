"""`/slo status` of a grouped SLO through the real HTTP endpoint of `slo-bot run`: one line for the
group with its worst members; the group's name lists its members; a member's name shows it alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from bot import cli
from bot.store import db, repo
from tests.fakeslack import FakeSlack
from tests.slack.conftest import BotFactory
from tests.slack.test_commands import Asker
from tests.test_groups_prometheus import CATALOGUE, END, _evaluate
from tests.test_groups_prometheus import shop_prometheus as shop_prometheus  # a fixture


def test_slo_status_folds_a_group_and_answers_for_a_member(
    tmp_path: Path,
    database_url: str,
    shop_prometheus: str,
    start_bot: BotFactory,
    slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PROMETHEUS_URL", shop_prometheus)
    monkeypatch.delenv("SLO_BOT_CONFIG", raising=False)
    path = tmp_path / "shop.yaml"
    path.write_text(CATALOGUE)
    assert cli.main(["apply", str(path)]) == 0
    engine = db.make_engine(database_url)
    try:
        _evaluate(engine, END)
        with Session(engine) as session:
            members = [r.name for r in repo.list_slos(session=session, members=True) if r.group_id]
    finally:
        engine.dispose()
    assert len(members) == 8
    bot = start_bot(None, env={"PROMETHEUS_URL": shop_prometheus})
    ask = Asker(bot)

    status = ask("status")
    lines = [line for line in status.splitlines() if "`checkout`" in line]
    assert len(lines) == 1, status
    assert "4 routes: worst /new" in lines[0] and "/pay" in lines[0]
    assert "checkout[" not in status
    assert "3 SLO(s)" in status  # checkout, checkout-windowed and pay-only

    listing = ask("list")
    assert "`checkout` (4 by route)" in listing and "`pay-only`" in listing

    one = ask("status checkout[/cart]")
    assert "`checkout[/cart]`" in one and "/pay" not in one and "1 SLO(s)" in one
    group = ask("status checkout")
    assert sorted(line.split("`")[1] for line in group.splitlines() if "`checkout[" in line) == [
        "checkout[/cart]",
        "checkout[/new]",
        "checkout[/pay]",
        "checkout[/search]",
    ]

"""`/slo maintenance` through the real HTTP endpoint of `slo-bot run` and the fake Slack: responders
make, list and cancel one-off windows; the open breach's thread hears a window start; `/slo show`
shows it; the rows are the audit trail."""

from __future__ import annotations

import contextlib
import io
import json
import os

from sqlmodel import Session, select

from bot import cli
from bot.store import db
from bot.store.models import AdjustmentRecord
from tests.fakeslack import FakeSlack
from tests.slack.conftest import BotFactory
from tests.slack.harness import ALERTS, RESPONDER, SECOND, STRANGER, catalogue, home_opened
from tests.slack.test_commands import Asker


def _windows(database_url: str) -> list[AdjustmentRecord]:
    engine = db.make_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(AdjustmentRecord).order_by(AdjustmentRecord.id)).all())
    finally:
        engine.dispose()


def _status(database_url: str) -> str:
    out = io.StringIO()
    saved = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = database_url
    try:
        with contextlib.redirect_stdout(out):
            assert cli.main(["status"]) == 0
    finally:
        if saved is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = saved
    return out.getvalue()


def test_responders_make_list_and_cancel_maintenance_windows(
    start_bot: BotFactory, slack: FakeSlack, database_url: str
) -> None:
    bot = start_bot(catalogue())
    slack.wait_calls("chat.postMessage", 1)  # the page of checkout-availability is out
    page = slack.messages(ALERTS)[0]
    ask = Asker(bot)

    # refusals and bad input: a clear answer, nothing stored
    assert "Only members of <#C0ALERTS>" in ask("maintenance checkout-availability now 2h", user=STRANGER)
    assert "`2x` is not a duration" in ask("maintenance checkout-availability now 2x")
    assert "is not `now` nor a time" in ask("maintenance checkout-availability tomorrow 2h")
    assert "longer than the longest window" in ask("maintenance checkout-availability now 8d")
    assert "Did you mean `checkout-availability`" in ask("maintenance checkout-availabilty now 2h")
    assert "Usage: `/slo maintenance SLO START DURATION" in ask("maintenance checkout-availability")
    assert _windows(database_url) == []

    made = ask("maintenance checkout-availability now 2h database upgrade")
    assert made.startswith("🛠 Maintenance window #") and "on `checkout-availability`" in made
    (row,) = _windows(database_url)
    assert (row.created_by, row.description, row.duration_s, row.origin) == (
        RESPONDER,
        "database upgrade",
        7200,
        "slack",
    )

    # the open breach's thread hears it once, at the next evaluation
    def notes() -> list[dict[str, object]]:
        return [m for m in slack.messages(ALERTS) if "Maintenance window" in str(m.get("text"))]

    slack.wait_until(lambda: notes(), what="the maintenance note in the breach's thread")
    (note,) = notes()
    assert note["thread_ts"] == page["ts"] and "(database upgrade)" in str(note["text"])
    assert "count neither as good nor as bad" in str(note["text"])

    shown = ask("show checkout-availability")
    assert "In maintenance now" in shown and "database upgrade" in shown
    listing = ask("maintenance list")
    assert f"#{row.id} `checkout-availability`" in listing and f"by <@{RESPONDER}>" in listing
    # the App Home says it above the SLOs, and `slo-bot status` below its table
    assert bot.event(home_opened(RESPONDER, "Ev0HOMEMAINT")).status_code == 200
    slack.wait_calls("views.publish", 1)
    home = json.dumps(slack.views[RESPONDER][0], ensure_ascii=False)
    assert "In maintenance now*: `checkout-availability` (database upgrade)" in home
    assert home.index("In maintenance now") < home.index("search-latency")
    status = _status(database_url)
    assert "in maintenance now: checkout-availability: checkout-availability-" in status
    assert "(database upgrade)" in status

    # cancelling: a responder only, once; the trail keeps who
    assert "Only members" in ask(f"maintenance cancel {row.id}", user=STRANGER)
    assert "Which window?" in ask("maintenance cancel")
    assert (
        ask(f"maintenance cancel #{row.id}", user=SECOND) == f"🛠 Maintenance window #{row.id} is cancelled."
    )
    assert "cancelled already" in ask(f"maintenance cancel {row.id}", user=SECOND)
    assert "no maintenance window #999" in ask("maintenance cancel 999")
    (row,) = _windows(database_url)
    assert row.cancelled_by == SECOND and row.cancelled_at is not None
    assert f"cancelled by <@{SECOND}>" in ask("maintenance list")
    assert "In maintenance now" not in ask("show checkout-availability")
    assert len(notes()) == 1

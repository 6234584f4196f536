"""Weekly digest schedules: parsing, due times across daylight-saving changes, and one digest per
due time whatever the number of replicas (store on SQLite and PostgreSQL, in process)."""

from __future__ import annotations

import contextlib
import io
import json
import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlmodel import Session, select

from bot import cli, jobs
from bot.adjustments import Adjustment
from bot.digest import Schedule, ScheduleError, last_due, next_due, parse_schedule
from bot.slack import digests as slack_digests
from bot.slack.uploads import draw_week
from bot.sources.pool import SourcePool
from bot.store import adjustments as adjustment_store
from bot.store import digests, repo
from bot.store import groups as group_store
from bot.store.models import OutboxRecord, SLORecord
from tests.test_jobs import CATALOGUE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("monday 09:00 Europe/Berlin", Schedule(0, time(9, 0), "Europe/Berlin")),
        ("Fri 17:30", Schedule(4, time(17, 30), "UTC")),
        ("sun 0:05 America/New_York", Schedule(6, time(0, 5), "America/New_York")),
    ],
)
def test_a_schedule_is_a_weekday_a_local_time_and_a_zone(text: str, expected: Schedule) -> None:
    assert parse_schedule(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("monday", "is not a schedule"),
        ("mo 09:00", "is not a day of the week"),
        ("t 09:00", "is not a day of the week"),  # tuesday or thursday
        ("monday 9am", "is not a time of day"),
        ("monday 24:00", "is not a time of day"),
        ("monday 09:00 Europe/Berlinn", "is not a time zone"),
    ],
)
def test_a_schedule_that_does_not_say_when_is_refused_with_why(text: str, says: str) -> None:
    with pytest.raises(ScheduleError, match=says):
        parse_schedule(text)


BERLIN_MONDAY_9 = parse_schedule("monday 09:00 Europe/Berlin")


@pytest.mark.parametrize(
    ("now", "last", "following"),
    [
        # winter (CET, UTC+1): 09:00 is 08:00 UTC
        (
            datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
            datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
            datetime(2026, 12, 7, 8, 0, tzinfo=UTC),
        ),
        (
            datetime(2026, 11, 30, 7, 59, tzinfo=UTC),
            datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
            datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
        ),
        # across the spring change of Sunday 2027-03-28: the Monday after is summer time, 07:00 UTC
        (
            datetime(2027, 3, 29, 7, 30, tzinfo=UTC),
            datetime(2027, 3, 29, 7, 0, tzinfo=UTC),
            datetime(2027, 4, 5, 7, 0, tzinfo=UTC),
        ),
        (
            datetime(2027, 3, 28, 12, 0, tzinfo=UTC),
            datetime(2027, 3, 22, 8, 0, tzinfo=UTC),
            datetime(2027, 3, 29, 7, 0, tzinfo=UTC),
        ),
        # and back on Sunday 2026-10-25: the Monday before was 07:00 UTC, the one after 08:00 UTC
        (
            datetime(2026, 10, 26, 7, 30, tzinfo=UTC),
            datetime(2026, 10, 19, 7, 0, tzinfo=UTC),
            datetime(2026, 10, 26, 8, 0, tzinfo=UTC),
        ),
    ],
)
def test_a_digest_keeps_its_local_hour_across_daylight_saving_changes(
    now: datetime, last: datetime, following: datetime
) -> None:
    assert last_due(BERLIN_MONDAY_9, now) == last
    assert next_due(BERLIN_MONDAY_9, now) == following


def test_a_local_time_the_spring_change_skips_comes_an_hour_later_and_never_twice() -> None:
    night = parse_schedule("sunday 02:30 Europe/Berlin")  # 02:00-03:00 does not exist on 2027-03-28
    due = next_due(night, datetime(2027, 3, 27, tzinfo=UTC))
    assert due == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)  # 03:30 summer time
    assert next_due(night, due) == datetime(2027, 4, 4, 0, 30, tzinfo=UTC)
    repeated = parse_schedule("sunday 02:30 Europe/Berlin")  # 02:00-03:00 happens twice on 2026-10-25
    assert next_due(repeated, datetime(2026, 10, 24, tzinfo=UTC)) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert next_due(repeated, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)) == datetime(
        2026, 11, 1, 1, 30, tzinfo=UTC
    )


SET_AT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # a Friday
MONDAY_DUE = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # 09:00 in Berlin


def _posts(engine: Engine) -> list[OutboxRecord]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxRecord).where(OutboxRecord.kind == "channel_post")))


def _evaluated(tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any) -> None:
    """tests.test_jobs' three SLOs applied and evaluated an hour before the digest is due."""
    path = tmp_path / "slos.yaml"
    path.write_text(CATALOGUE)
    monkeypatch.setenv("DATABASE_URL", database_url)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(["apply", str(path)]) == 0
    sources = SourcePool()
    try:
        jobs.evaluate_all(engine, now=MONDAY_DUE - timedelta(hours=1), sources=sources, concurrency=2)
    finally:
        sources.close()


def test_each_due_digest_goes_once_whichever_replicas_look_and_lists_the_channels_slos(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    _evaluated(tmp_path, database_url, engine, monkeypatch)
    with Session(engine) as session:
        digests.set_schedule(
            session=session,
            channel="C0DIGEST",
            schedule=BERLIN_MONDAY_9.text(),
            origin=digests.SLACK,
            by="U1",
            now=SET_AT,
        )
        session.commit()

    with Session(engine) as session:  # a maintenance window of beta's during the week
        adjustment_store.add_one_off(
            session=session,
            adjustment=Adjustment(
                name="db-upgrade",
                first_start=MONDAY_DUE - timedelta(days=2),
                duration=timedelta(hours=2),
                slos=("beta",),
            ),
            by="U1",
            now=SET_AT,
        )
        session.commit()

    def tick(at: datetime, replica: str) -> list[str]:
        return slack_digests.send_due(engine, at, replica, "C0DIGEST", slack_digests.queue)

    assert tick(MONDAY_DUE - timedelta(minutes=1), "a") == []  # not yet
    assert tick(MONDAY_DUE + timedelta(seconds=30), "a") == ["C0DIGEST"]
    assert tick(MONDAY_DUE + timedelta(seconds=31), "b") == []  # the other replica: sent already
    assert tick(MONDAY_DUE + timedelta(minutes=5), "a") == []
    (post,) = _posts(engine)
    assert post.channel == "C0DIGEST"
    text = post.payload
    assert "Weekly SLO digest" in text and "monday 09:00 Europe/Berlin" in text
    for name in ("alpha", "beta", "gamma"):  # the default channel gets every SLO without a channel
        assert f"`{name}`" in text
    assert "SLI" in text and "budget" in text
    assert "`beta`: maintenance db-upgrade" in text and "`alpha`: maintenance" not in text
    # then its chart: the same SLOs, the least budget left first, over the digest's week
    with Session(engine) as session:
        charts = list(session.exec(select(OutboxRecord).where(OutboxRecord.kind == "chart")))
        names = {r.id: r.name for r in repo.list_slos(session=session)}
    (chart,) = charts
    assert chart.channel == "C0DIGEST" and (chart.id or 0) > (post.id or 0)
    spec = json.loads(chart.payload)
    assert sorted(names[i] for i in spec["digest"]) == ["alpha", "beta", "gamma"]
    in_message = list(dict.fromkeys(re.findall(r"`(alpha|beta|gamma)`", text)))
    assert [names[i] for i in spec["digest"]] == in_message  # in the message's order
    with Session(engine) as session:
        drawn = draw_week(session, spec)
    assert drawn.png[:8] == b"\x89PNG\r\n\x1a\n" and "alpha" in drawn.alt_text
    # a week later, once more
    assert tick(MONDAY_DUE + timedelta(days=7, seconds=1), "b") == ["C0DIGEST"]
    assert len(_posts(engine)) == 2


def test_a_new_schedule_waits_for_its_next_due_time(database_url: str, engine: Engine) -> None:
    with Session(engine) as session:
        digests.set_schedule(
            session=session,
            channel="C0X",
            schedule="monday 09:00 UTC",
            origin=digests.SLACK,
            by="U1",
            now=datetime(2026, 11, 30, 9, 5, tzinfo=UTC),  # five minutes after this week's
        )
        session.commit()
    assert (
        slack_digests.send_due(
            engine, datetime(2026, 11, 30, 9, 6, tzinfo=UTC), "a", None, slack_digests.queue
        )
        == []
    )
    assert slack_digests.send_due(
        engine, datetime(2026, 12, 7, 9, 0, tzinfo=UTC), "a", None, slack_digests.queue
    ) == ["C0X"]


def test_an_slos_digest_annotation_gives_its_channel_a_digest_and_validate_checks_it(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    annotated = CATALOGUE.replace(
        "metadata: {name: alpha}",
        "metadata: {name: alpha, annotations: "
        '{slo-bot/channel: C0ALPHA, slo-bot/digest: "fri 16:00 Europe/Berlin"}}',
    )
    assert annotated != CATALOGUE
    bad = tmp_path / "bad.yaml"
    bad.write_text(annotated.replace("fri 16:00", "friyay 16:00"))
    assert cli.main(["validate", str(bad)]) != 0
    said = capsys.readouterr()
    err = said.out + said.err
    assert f"{bad}:" in err and "'friyay' is not a day of the week" in err
    path = tmp_path / "slos.yaml"
    path.write_text(annotated)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert cli.main(["apply", str(path)]) == 0
    first = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)  # a Thursday
    assert slack_digests.send_due(engine, first, "a", None, slack_digests.queue) == []
    with Session(engine) as session:
        (found,) = digests.all_digests(session=session)
    assert (found.channel, found.schedule, found.origin) == (
        "C0ALPHA",
        "friday 16:00 Europe/Berlin",
        "catalogue",
    )
    friday = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)  # 16:00 in Berlin
    assert slack_digests.send_due(engine, friday, "a", None, slack_digests.queue) == ["C0ALPHA"]
    (post,) = _posts(engine)
    assert "`alpha`" in post.payload and "`beta`" not in post.payload


def test_console_mode_prints_the_digest_and_writes_its_chart(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    _evaluated(tmp_path, database_url, engine, monkeypatch)
    with Session(engine) as session:
        digests.set_schedule(
            session=session,
            channel="#sre",
            schedule="monday 09:00 Europe/Berlin",
            origin=digests.SLACK,
            by="U1",
            now=SET_AT,
        )
        session.commit()
    out = io.StringIO()
    charts = tmp_path / "charts"
    sent = slack_digests.send_due(engine, MONDAY_DUE, "a", "#sre", slack_digests.printer(out, charts))
    assert sent == ["#sre"]
    printed = out.getvalue()
    assert "Weekly digest for #sre:" in printed and "`alpha`" in printed
    (written,) = charts.glob("digest-sre-*.png")
    assert f"chart: {written}" in printed and written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


GROUPED = """
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout
  annotations: {slo-bot/group-by: route, slo-bot/channel: C0SHOP, slo-bot/digest: "fri 16:00 UTC"}
spec:
  service: shop
  indicator:
    metadata: {name: shop-good}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec: {query: 'shop_requests_total{code!~"5.."}'}
        total:
          metricSource:
            type: Prometheus
            spec: {query: 'shop_requests_total'}
  timeWindow: [{duration: 1d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
"""


def _grouped(tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any, routes: int) -> None:
    """The grouped `checkout` applied, with a member per route as its first tick would add them."""
    path = tmp_path / "grouped.yaml"
    path.write_text(GROUPED)
    monkeypatch.setenv("DATABASE_URL", database_url)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(["apply", str(path)]) == 0
    with Session(engine) as session:
        (definition,) = repo.list_slos(session=session)
        for n in range(routes):
            group_store.add_member(
                session=session, definition=definition, name=f"checkout[/r{n}]", key=[f"/r{n}"], now=SET_AT
            )
        session.commit()


def test_a_grouped_slos_digest_lists_its_members_in_its_definitions_channel(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    _grouped(tmp_path, database_url, engine, monkeypatch, routes=3)
    thursday = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert slack_digests.send_due(engine, thursday, "a", None, slack_digests.queue) == []
    with Session(engine) as session:
        (found,) = digests.all_digests(session=session)
    assert (found.channel, found.schedule) == ("C0SHOP", "friday 16:00 UTC")
    friday = datetime(2026, 12, 4, 16, 0, 5, tzinfo=UTC)
    assert slack_digests.send_due(engine, friday, "a", None, slack_digests.queue) == ["C0SHOP"]
    (post,) = _posts(engine)
    for n in range(3):
        assert f"`checkout[/r{n}]`" in post.payload
    assert "No SLO sends its alerts" not in post.payload


def test_a_ticks_look_for_due_digests_reads_no_member_of_a_group(
    tmp_path: Path, database_url: str, engine: Engine, monkeypatch: Any
) -> None:
    """Every replica looks after every tick: with thousands of members, reading each member's row
    (and the definition it repeats) each time cost a replica tens of MB and most of a second."""
    _grouped(tmp_path, database_url, engine, monkeypatch, routes=20)
    loaded: list[str] = []

    def on_load(record: SLORecord, _context: object) -> None:
        loaded.append(record.name)

    event.listen(SLORecord, "load", on_load)
    try:
        thursday = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
        assert slack_digests.send_due(engine, thursday, "a", None, slack_digests.queue) == []
    finally:
        event.remove(SLORecord, "load", on_load)
    assert loaded == ["checkout"]
    with Session(engine) as session:
        (found,) = digests.all_digests(session=session)
    assert found.channel == "C0SHOP"

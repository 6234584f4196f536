"""Schema migrations as an operator meets them: read-only commands never migrate, starting replicas
do not race, and a database newer than the code is refused with a sentence, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from bot.store import db
from tests.dbharness import PG_ADMIN

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "checkout.yaml"


def _head_and_previous() -> tuple[str, str]:
    script = ScriptDirectory.from_config(db.alembic_config(db.make_engine("sqlite://")))
    head = script.get_revision("head")
    assert head is not None and isinstance(head.down_revision, str)
    return head.revision, head.down_revision


def _revision(url: str) -> str | None:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            if not engine.dialect.has_table(conn, "alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def _slo_bot(url: str, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("SLO_BOT_CONFIG", None)
    env.pop("SLACK_BOT_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd or ROOT,
    )


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """An empty PostgreSQL database of its own (no schema at all), dropped afterwards."""
    name = f"slobot_fault_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'slo-bot.db'}"
    url: str = request.getfixturevalue("fresh_postgres")
    return url


def test_read_only_commands_never_migrate_a_database_that_is_behind(fresh_url: str) -> None:
    head, previous = _head_and_previous()
    engine = db.make_engine(fresh_url)
    command.upgrade(db.alembic_config(engine), previous)
    engine.dispose()

    for argv in (
        ("status",),
        ("status", "--json"),
        ("replay", "--from", "2026-11-23T00:00:00Z", "--to", "2026-11-23T01:00:00Z"),
    ):
        result = _slo_bot(fresh_url, *argv)
        assert result.returncode == 1, (argv, result.stdout, result.stderr)
        assert "slo-bot db upgrade" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert _revision(fresh_url) == previous, argv

    # validate reads files only: a database behind, or none at all, is no business of it
    result = _slo_bot(fresh_url, "validate", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert _revision(fresh_url) == previous

    result = _slo_bot(fresh_url, "db", "upgrade")
    assert result.returncode == 0 and "at head" in result.stdout, result.stderr
    assert _revision(fresh_url) == head
    result = _slo_bot(fresh_url, "status", "--json")
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


def test_status_on_an_empty_database_says_to_upgrade_and_creates_nothing(
    fresh_url: str, tmp_path: Path
) -> None:
    result = _slo_bot(fresh_url, "status")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "slo-bot db upgrade" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "slo-bot.db").exists()  # SQLite: not even an empty file
    assert _revision(fresh_url) is None


def test_commands_that_write_migrate_first(fresh_url: str) -> None:
    head, _ = _head_and_previous()
    result = _slo_bot(fresh_url, "apply", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert _revision(fresh_url) == head


# Started together and released at one instant, as replicas of a Deployment are: each process runs the
# real `slo-bot db upgrade` (the same upgrade `run`, `apply` and `check` do first).
RACER = """
import os, sys, time
from pathlib import Path
import bot.cli
Path(sys.argv[1]).touch()
while not Path(sys.argv[2]).exists():
    time.sleep(0.005)
sys.exit(bot.cli.main(["db", "upgrade"]))
"""


def test_replicas_upgrading_a_fresh_database_at_once_all_succeed(fresh_url: str, tmp_path: Path) -> None:
    racers = 4
    head, _ = _head_and_previous()
    go = tmp_path / "go"
    env = {**os.environ, "DATABASE_URL": fresh_url}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path / f"ready-{i}"), str(go)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(racers)
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{i}").exists() for i in range(racers)):
        assert time.monotonic() < deadline, "the racers never got ready"
        time.sleep(0.05)
    go.touch()
    results = [(p.wait(timeout=120), *p.communicate()) for p in processes]
    for code, out, err in results:
        assert code == 0, err
        assert "at head" in out
    assert _revision(fresh_url) == head


def test_a_database_newer_than_the_code_is_refused_with_a_sentence(fresh_url: str) -> None:
    engine = db.make_engine(fresh_url)
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_a_newer_slo_bot'"))
    engine.dispose()

    for argv in (("db", "upgrade"), ("status",), ("apply", str(EXAMPLE)), ("check",), ("run",)):
        result = _slo_bot(fresh_url, *argv)
        assert result.returncode == 1, (argv, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        assert "9999_from_a_newer_slo_bot" in result.stderr and "newer" in result.stderr, result.stderr
    assert _revision(fresh_url) == "9999_from_a_newer_slo_bot"


def test_0007_turns_each_fired_alert_into_a_breach_and_moves_what_belonged_to_it(fresh_url: str) -> None:
    """An operator upgrading with an open, acknowledged page keeps its Slack message, its incident, its
    queued outbox call and its acknowledgement: all now belong to breach #N, N the alert's id."""
    engine = db.make_engine(fresh_url)
    command.upgrade(db.alembic_config(engine), "0006")
    at = "2026-11-23 10:00:00+00:00"
    later = "2026-11-23 11:00:00+00:00"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO slo (id, name, service, documents, checksum, data_checksum, created_at,"
                " updated_at) VALUES (1, 'api-availability', 'api', '[]', 'c', 'd', :at, :at)"
            ),
            {"at": at},
        )
        # id 7: a page firing, acknowledged; id 8: a ticket that fired and resolved; id 9: still pending
        conn.execute(
            text(
                "INSERT INTO alert (id, slo_id, key, state, since, fired_at, resolved_at, burn_rates, reason,"
                " acknowledged_by, acknowledged_at, noted_at, escalated_at, spent_ratio) VALUES"
                " (7, 1, 'page', 'firing', :at, :at, NULL, '{\"1h\": 15.0}', 'burning fast',"
                "  'U123', :later, NULL, NULL, NULL),"
                " (8, 1, 'ticket', 'resolved', :at, :at, :later, '{}', 'burning slowly',"
                "  NULL, NULL, NULL, NULL, 0.125),"
                " (9, 1, 'budget-25', 'pending', :at, NULL, NULL, '{}', '', NULL, NULL, NULL, NULL, NULL)"
            ),
            {"at": at, "later": later},
        )
        conn.execute(
            text(
                "INSERT INTO alert_event (alert_id, at, event, actor, burn_rates, detail) VALUES"
                " (7, :at, 'firing', NULL, '{}', ''),"
                " (7, :later, 'acknowledged', 'U123', '{}', 'from Slack'),"
                " (8, :at, 'firing', NULL, '{}', ''),"
                " (8, :later, 'resolved', NULL, '{}', '')"
            ),
            {"at": at, "later": later},
        )
        conn.execute(
            text(
                "INSERT INTO slack_message (id, alert_id, channel, posted_channel, ts)"
                " VALUES (3, 7, '#api-oncall', 'C0API', '1700000000.000100')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO incident (id, alert_id, target, kind, dedup_key, state, created_at, updated_at)"
                " VALUES (4, 7, 'pagerduty-api', 'pagerduty', 'slo-bot/api-availability/page', 'triggered',"
                " :at, :at)"
            ),
            {"at": at},
        )
        conn.execute(
            text(
                "INSERT INTO outbox (id, kind, alert_id, channel, payload, status, attempts, in_flight,"
                " next_attempt_at, created_at) VALUES"
                " (5, 'alert_message', 7, '#api-oncall', '{}', 'pending', 0, false, :at, :at),"
                " (6, 'thread_note', 8, '#api-oncall', '{}', 'done', 1, false, :at, :at)"
            ),
            {"at": at},
        )
    command.upgrade(db.alembic_config(engine), "head")

    with engine.begin() as conn:
        breaches = {
            row.id: row
            for row in conn.execute(
                text(
                    "SELECT id, slo_id, kind, severity, peak, state, acknowledged_by, acknowledged_at,"
                    " spent_ratio, burn_rates, reason FROM breach ORDER BY id"
                )
            )
        }
        assert sorted(breaches) == [7, 8]  # the pending alert never fired: no breach
        page, ticket = breaches[7], breaches[8]
        assert (page.slo_id, page.kind, page.severity, page.peak, page.state) == (
            1,
            "burn",
            "page",
            "page",
            "firing",
        )
        assert page.acknowledged_by == "U123" and page.acknowledged_at is not None
        assert page.reason == "burning fast" and "15.0" in page.burn_rates
        assert (ticket.kind, ticket.severity, ticket.state) == ("burn", "ticket", "resolved")
        assert ticket.acknowledged_by is None and ticket.spent_ratio == 0.125

        signals = conn.execute(text("SELECT id, breach_id FROM alert ORDER BY id")).all()
        assert [tuple(row) for row in signals] == [(7, 7), (8, 8), (9, None)]
        assert conn.execute(text("SELECT breach_id, channel, ts FROM slack_message")).all() == [
            (7, "#api-oncall", "1700000000.000100")
        ]
        assert conn.execute(text("SELECT breach_id, dedup_key, severity FROM incident")).all() == [
            (7, "slo-bot/api-availability/page", "page")
        ]
        assert conn.execute(text("SELECT id, breach_id FROM outbox ORDER BY id")).all() == [(5, 7), (6, 8)]
        assert conn.execute(text("SELECT breach_id, event, actor, detail FROM breach_event")).all() == [
            (7, "acknowledged", "U123", "from Slack")
        ]
        # the signal trail keeps the signal's own transitions only
        assert conn.execute(text("SELECT alert_id, event FROM alert_event ORDER BY id")).all() == [
            (7, "firing"),
            (8, "firing"),
            (8, "resolved"),
        ]

        # breaches opened from now on are numbered after the migrated ones (PostgreSQL: the sequence moved on)
        fresh = conn.execute(
            text(
                "INSERT INTO breach (slo_id, kind, severity, peak, state, opened_at, burn_rates, reason)"
                " VALUES (1, 'no-data', 'no-data', 'no-data', 'firing', :at, '{}', '') RETURNING id"
            ),
            {"at": later},
        ).scalar_one()
        assert fresh == 9
    engine.dispose()


def test_0008_adds_grouped_slos_keeping_every_slo_and_goes_back(fresh_url: str) -> None:
    """An SLO stored before grouped SLOs existed is an SLO of its own after the upgrade; a definition's
    members go with it (the foreign key cascades); the downgrade drops the columns again."""
    engine = db.make_engine(fresh_url)
    config = db.alembic_config(engine)
    command.upgrade(config, "0007")
    at = "2026-11-23 10:00:00+00:00"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO slo (id, name, service, documents, checksum, data_checksum, created_at,"
                " updated_at) VALUES (1, 'api-availability', 'api', '[]', 'c', 'd', :at, :at)"
            ),
            {"at": at},
        )
    command.upgrade(config, "0008")
    with engine.begin() as conn:
        row = conn.execute(text("SELECT name, group_by, group_id FROM slo")).one()
        assert tuple(row) == ("api-availability", None, None)
        conn.execute(text("UPDATE slo SET group_by = 'route' WHERE id = 1"))
        conn.execute(
            text(
                "INSERT INTO slo (id, name, service, documents, checksum, data_checksum, created_at,"
                " updated_at, group_id, group_key) VALUES"
                " (2, 'api-availability[/pay]', 'api', '[]', 'c', 'd', :at, :at, 1, '[\"/pay\"]')"
            ),
            {"at": at},
        )
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("PRAGMA foreign_keys=ON"))
        conn.execute(text("DELETE FROM slo WHERE id = 1"))
        assert conn.execute(text("SELECT count(*) FROM slo")).scalar() == 0
    command.downgrade(config, "0007")
    command.upgrade(config, "head")
    assert _revision(fresh_url) == _head_and_previous()[0]
    engine.dispose()


def test_0014_gives_stored_buckets_their_running_sums_and_goes_back(fresh_url: str) -> None:
    """Buckets stored before running sums existed sum to the same windows after the upgrade; the
    table stays WITHOUT ROWID on SQLite (its rows kept in primary-key order); the downgrade drops the
    columns again."""
    from datetime import UTC, datetime, timedelta

    from sqlmodel import Session

    from bot.store import history

    engine = db.make_engine(fresh_url)
    config = db.alembic_config(engine)
    command.upgrade(config, "0013")
    at = "2026-11-23 10:00:00+00:00"
    end = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    end_s = int(end.timestamp())
    with engine.begin() as conn:
        for slo in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO slo (id, name, service, documents, checksum, data_checksum, created_at,"
                    " updated_at) VALUES (:id, :name, 'api', '[]', 'c', 'd', :at, :at)"
                ),
                {"id": slo, "name": f"s{slo}", "at": at},
            )
            # two hours of hourly buckets, then 60 one-minute ones: (good, total) known
            rows = [(end_s - 3 * 3600 + h * 3600, 3600, 90.0 * slo, 100.0 * slo) for h in range(2)]
            rows += [(end_s - 3600 + m * 60, 60, 1.0 * slo, 2.0 * slo) for m in range(60)]
            for start_s, resolution_s, good, total in rows:
                conn.execute(
                    text(
                        "INSERT INTO bucket (slo_id, resolution_s, start_s, good, total, covered_s,"
                        " good_slices, slices, ratio_sum) VALUES (:slo, :res, :start, :good, :total,"
                        " :res, 0, 0, 0)"
                    ),
                    {"slo": slo, "res": resolution_s, "start": start_s, "good": good, "total": total},
                )
    command.upgrade(config, "0014")
    windows = [timedelta(minutes=30), timedelta(minutes=90), timedelta(hours=3)]
    with Session(engine) as session:
        for slo in (1, 2):
            sums = history.window_sums(session=session, slo_id=slo, end=end, windows=windows)
            assert (sums[windows[0]].good, sums[windows[0]].total) == (30.0 * slo, 60.0 * slo)
            # half of the second hour counts: its start is cut by the window's
            assert (sums[windows[1]].good, sums[windows[1]].total) == (105.0 * slo, 170.0 * slo)
            assert (sums[windows[2]].good, sums[windows[2]].total) == (240.0 * slo, 320.0 * slo)
            assert sums[windows[2]].covered == timedelta(hours=3)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'bucket'")).scalar()
            assert "WITHOUT ROWID" in str(ddl)
    command.downgrade(config, "0013")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM bucket")).scalar() == 2 * 62
    command.upgrade(config, "head")
    engine.dispose()

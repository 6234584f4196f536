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

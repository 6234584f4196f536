"""Commands find a current schema without Alembic (`db.at_head`), taking the newest migration file's
number for the head. That holds while the migrations are a linear chain numbered like their files:
these tests fail on a migration that breaks the convention, before a database could be left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from bot.store import db


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(db.alembic_config(db.make_engine("sqlite://")))


def test_the_newest_migration_file_is_alembics_head() -> None:
    assert db.newest_revision() == _script().get_current_head()


def test_each_migration_is_named_after_its_revision_and_follows_the_one_before() -> None:
    files = sorted((db.MIGRATIONS / "versions").glob("*.py"))
    chain = [r for r in files if r.name != "__init__.py"]
    script = _script()
    previous = None
    for path in chain:
        number = path.name.split("_", 1)[0]
        revision = script.get_revision(number)
        assert revision is not None, f"{path.name}: its revision is not {number!r}"
        assert Path(str(revision.path)).name == path.name, f"revision {number} lives in another file"
        assert revision.down_revision == previous, f"{path.name} does not follow {previous}"
        previous = number
    assert len(chain) == len(list(script.walk_revisions()))


def _set_revision(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


def test_a_current_schema_is_seen_and_any_other_is_left_to_alembic(engine: Engine) -> None:
    assert db.at_head(engine)  # the fixture's database is upgraded
    try:
        _set_revision(engine, "0001")  # behind
        assert not db.at_head(engine)
        with pytest.raises(db.SchemaError, match="slo-bot db upgrade"):
            db.require_current(engine)
        _set_revision(engine, "ffff")  # a newer slo-bot's
        assert not db.at_head(engine)
        with pytest.raises(db.SchemaError, match="does not know"):
            db.require_current(engine)
    finally:  # (the PostgreSQL database is the session's)
        _set_revision(engine, db.newest_revision())
    assert db.at_head(engine)

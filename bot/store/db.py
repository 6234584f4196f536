"""Database engine and schema upgrades (Alembic), for SQLite and PostgreSQL alike."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, event, text
from sqlmodel import create_engine

# Alembic (its imports cost about what SQLAlchemy's do) loads only when a schema is to be upgraded or
# is not current (see `at_head`), not with the engine: a command on a current database runs without it.
if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 here, whatever SQLAlchemy's default is."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (status, /slo) never wait for a tick
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    # (the stream of now: Config's default is the sys.stdout of when alembic was first imported)
    config = Config(stdout=sys.stdout)
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


# Any fixed number will do: the key of the PostgreSQL advisory lock held while migrations run.
MIGRATION_LOCK_KEY = 0x510B07


class SchemaError(Exception):
    """The database's schema is not the one this code works with; the message says what to do."""


def lock_for_migrations(connection: Connection) -> None:
    """Hold every other migrating process back until this connection's transaction ends.

    Replicas starting together would otherwise all see an empty database and all create the same
    tables. PostgreSQL: an advisory lock released with the transaction. SQLite: the database's write
    lock, taken at once (`BEGIN IMMEDIATE`), so the migration is also one transaction there.
    """
    _lock_until_commit(connection, MIGRATION_LOCK_KEY)


# The key of the advisory lock held while a catalogue is stored (another key than the migrations':
# `run` applies its catalogue after its migrations, in a transaction of its own).
CATALOGUE_LOCK_KEY = 0x510B08


def lock_for_catalogue(connection: Connection) -> None:
    """Hold every other process storing a catalogue back until this connection's transaction ends.

    Replicas starting together apply the same SLO_BOT_CONFIG: each would see an SLO missing, insert
    it, and all but one would fail on its unique name. Same locks as `lock_for_migrations`.
    """
    _lock_until_commit(connection, CATALOGUE_LOCK_KEY)


def _lock_until_commit(connection: Connection, key: int) -> None:
    """PostgreSQL: the advisory lock `key`, released with the transaction. SQLite: the database's
    write lock, taken at once (`BEGIN IMMEDIATE`), so the transaction reads what it then writes over."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _describe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def newest_revision() -> str:
    """The newest migration's revision, from the file names alone (importing the migrations to walk
    Alembic's graph costs a fifth of a second). The migrations are a linear chain numbered 0001,
    0002, ..., each file named after its revision; tests/store/test_schema_head.py pins this.
    """
    numbers = [path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py")]
    assert numbers, f"no migrations in {MIGRATIONS}"  # the package ships them
    return max(numbers)


def at_head(engine: Engine) -> bool:
    """Whether the database's schema is the newest migration's, asked without Alembic.

    False also when the database has no schema, several revisions or an unknown one: Alembic then
    decides, upgrades or says what is wrong, as it always did.
    """
    with engine.connect() as connection:
        if not connection.dialect.has_table(connection, "alembic_version"):
            return False
        found = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return found == [newest_revision()]


def _revisions(engine: Engine) -> tuple[str | None, str, set[str]]:
    """The database's revision (None: no schema yet), the code's newest, and every one the code knows."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(engine))
    known = {revision.revision for revision in script.walk_revisions()}
    head = script.get_current_head()
    assert head is not None  # the package ships its migrations
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current, head, known


def _refuse_newer(engine: Engine, current: str | None, head: str, known: set[str]) -> None:
    if current is not None and current not in known:
        raise SchemaError(
            f"the database ({_describe(engine)}) is at schema revision {current}, which this slo-bot "
            f"does not know (its newest is {head}): a newer slo-bot has upgraded it. Run that version, "
            f"or restore the database from before the upgrade"
        )


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration; a no-op when it is there already.

    Raises SchemaError when the database was upgraded by a newer slo-bot.
    """
    if at_head(engine):
        return
    current, head, known = _revisions(engine)
    _refuse_newer(engine, current, head, known)
    if current != head:
        from alembic import command

        command.upgrade(alembic_config(engine), "head")


def require_current(engine: Engine) -> None:
    """For commands that only read: check the schema is at the newest migration, changing nothing.

    Raises SchemaError saying what to run when the database is behind (or empty) or newer.
    """
    database = engine.url.database
    on_disk = engine.dialect.name == "sqlite" and database and database != ":memory:"
    if on_disk and not Path(str(database)).exists():  # connecting would create an empty file
        raise SchemaError(f"no database at {database}: run `slo-bot db upgrade` (or `slo-bot apply`)")
    if at_head(engine):
        return
    current, head, known = _revisions(engine)
    _refuse_newer(engine, current, head, known)
    if current != head:
        where = "has no slo-bot schema yet" if current is None else f"is at schema revision {current}"
        raise SchemaError(
            f"the database ({_describe(engine)}) {where}; this slo-bot needs {head}: "
            f"run `slo-bot db upgrade` (read-only commands never change the database)"
        )


class AnotherProcess(Exception):
    """A second `slo-bot run` on one SQLite database; the message says what to do instead."""


@contextlib.contextmanager
def single_process(engine: Engine) -> Iterator[None]:
    """On SQLite, hold the database for this process alone while the block runs.

    Replicas share the work through PostgreSQL's row locks; SQLite has none to share with, and two
    processes evaluating one file would each evaluate every SLO. The lock is the kernel's (`flock` on
    a file beside the database), so a process killed with SIGKILL leaves nothing to clean up.
    PostgreSQL, or an in-memory SQLite: nothing to hold.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    path = Path(f"{database}.run-lock")
    with path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise AnotherProcess(
                f"another `slo-bot run` ({holder}) is using the SQLite database {database}; SQLite "
                "serves one process: stop it first, or run several replicas on PostgreSQL "
                "(DATABASE_URL=postgresql://...), where they share the SLOs between them"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}\n")
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

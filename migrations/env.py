"""Alembic environment: the engine comes from the caller (`bot.store.db.upgrade`) or DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlmodel import SQLModel

from bot.settings import DEFAULT_URL
from bot.store import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from bot.store.db import lock_for_migrations, make_engine

config = context.config
engine = config.attributes.get("engine") or make_engine(os.environ.get("DATABASE_URL", DEFAULT_URL))

with engine.connect() as connection:
    # SQLite: batch mode recreates a table to alter it, and dropping the old one would cascade to every
    # row referring to it (the messages, incidents and trail of an alert): no foreign key actions while
    # migrating (the pragma is a no-op inside a transaction, so it comes first), a check at the end
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            render_as_batch=sqlite,
            compare_type=True,
            # one transaction for all the steps, on SQLite too (whose DDL is transactional once
            # lock_for_migrations has begun the transaction): a failed step leaves the schema as it was
            transactional_ddl=True,
        )
        with context.begin_transaction():
            # before Alembic reads the current revision: a second process waits, then finds the work done
            lock_for_migrations(connection)
            context.run_migrations()
            if sqlite:
                dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if dangling:
                    raise RuntimeError(f"the migration left rows referring to missing ones: {dangling}")
        connection.commit()
    finally:
        if sqlite:  # the connection goes back to the pool, and on to the application
            connection.rollback()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()

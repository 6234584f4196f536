"""Alembic environment: the engine comes from the caller (`bot.store.db.upgrade`) or DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlmodel import SQLModel

from bot.store import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from bot.store.db import DEFAULT_URL, lock_for_migrations, make_engine

config = context.config
engine = config.attributes.get("engine") or make_engine(os.environ.get("DATABASE_URL", DEFAULT_URL))

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # one transaction for all the steps, on SQLite too (whose DDL is transactional once
        # lock_for_migrations has begun the transaction): a failed step leaves the schema as it was
        transactional_ddl=True,
    )
    with context.begin_transaction():
        # before Alembic reads the current revision: a second process waits, then finds the work done
        lock_for_migrations(connection)
        context.run_migrations()
    connection.commit()

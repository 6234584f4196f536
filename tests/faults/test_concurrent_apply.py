"""Replicas starting together each apply the same SLO_BOT_CONFIG (deploy/ starts three). An apply
that begins while another is storing the same SLOs waits for it and finds them stored; it used to
insert them too and die on their unique name (`duplicate key value violates unique constraint
"ix_slo_name"`), so a fresh fleet's pods crashed once on their first start."""

from __future__ import annotations

import io
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot import cli
from bot.settings import Settings
from bot.store import repo

ROOT = Path(__file__).resolve().parents[2]


def test_an_apply_beside_another_in_flight_waits_and_stores_each_slo_once(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(ROOT / "examples" / "checkout.yaml", tmp_path / "checkout.yaml")
    stored_one = threading.Event()  # the first apply has written an SLO and not committed yet
    go_on = threading.Event()
    upsert = repo.upsert_slo

    def slow_upsert(**kwargs: Any) -> str:
        result = upsert(**kwargs)
        if threading.current_thread().name == "first" and not stored_one.is_set():
            kwargs["session"].flush()  # written (the next upsert's query would autoflush it), not committed
            stored_one.set()
            go_on.wait(30)
        return result

    monkeypatch.setattr(repo, "upsert_slo", slow_upsert)
    outcomes: dict[str, object] = {}
    printed: dict[str, str] = {}

    def apply() -> None:
        name = threading.current_thread().name
        ctx = cli.Context(Settings(database_url=database_url))
        out = io.StringIO()
        try:
            outcomes[name] = cli.apply_files([str(tmp_path)], ctx, out=out)
        except Exception as err:  # what the second replica died of
            outcomes[name] = err
        finally:
            printed[name] = out.getvalue()
            ctx.close()

    first = threading.Thread(target=apply, name="first")
    first.start()
    assert stored_one.wait(30)
    second = threading.Thread(target=apply, name="second")
    second.start()
    second.join(timeout=1.0)
    assert second.is_alive(), "the second apply must wait for the first one's uncommitted SLOs"
    go_on.set()
    first.join(30)
    second.join(30)

    assert outcomes == {"first": cli.EXIT_OK, "second": cli.EXIT_OK}
    assert "created: checkout-availability" in printed["first"]
    assert printed["second"] == ""  # nothing created or updated: it found them all stored
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        names = connection.execute(text("SELECT name FROM slo ORDER BY name")).scalars().all()
    engine.dispose()
    assert len(names) == len(set(names)) >= 2

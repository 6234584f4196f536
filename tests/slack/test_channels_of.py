"""Who may act on an SLO whose definition does not build here (an unset secret): the members of its
own `slo-bot/channel`, read from the stored documents, never the default channel instead."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from bot.conversation import Conversation
from bot.slack.commands import channels_of
from bot.slack.deps import SlackDeps
from bot.store import repo

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _documents(channel_annotation: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "openslo/v1",
            "kind": "DataSource",
            "metadata": {"name": "prom"},
            "spec": {"type": "Prometheus", "connectionDetails": {"url": "${PROM_URL_NEVER_SET}"}},
        },
        {
            "apiVersion": "openslo/v1",
            "kind": "SLO",
            "metadata": {"name": "api-availability", "annotations": channel_annotation},
            "spec": {"service": "api"},
        },
    ]


def _channels(engine: Engine, annotations: dict[str, str], default: str | None) -> list[str]:
    deps = SlackDeps(
        engine=engine,
        clock=lambda: NOW,
        responders=None,  # type: ignore[arg-type]
        wake_delivery=lambda: None,
        conversation=Conversation([]),
        default_channel=default,
    )
    with Session(engine) as session:
        repo.upsert_slo(
            session=session,
            name="api-availability",
            service="api",
            documents=_documents(annotations),
            data_checksum="x",
            now=NOW,
        )
        session.commit()
        record = repo.get_slo(session=session, name="api-availability")
        assert record is not None
        return channels_of(session, record, deps)


def test_an_slo_that_does_not_build_keeps_its_own_channel(engine: Engine) -> None:
    assert _channels(engine, {"slo-bot/channel": "C0OWN"}, "C0DEFAULT") == ["C0OWN"]


def test_without_a_channel_of_its_own_the_default_channel_decides(engine: Engine) -> None:
    assert _channels(engine, {}, "C0DEFAULT") == ["C0DEFAULT"]

"""Composition root: builds the database engine, HTTP clients and sources from the environment."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Engine

from bot.domain import DataSource
from bot.durations import parse_duration
from bot.sources import HTTP_SOURCES, LOCAL_SOURCES, Source
from bot.sources.base import BadQuery
from bot.sources.prometheus import client_options
from bot.store.db import DEFAULT_URL, make_engine

DEFAULT_CONCURRENCY = 16


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_URL
    config_paths: tuple[str, ...] = ()
    eval_interval_s: float = 60.0
    concurrency: int = DEFAULT_CONCURRENCY
    default_channel: str | None = None
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    responders: tuple[str, ...] = ()
    host: str = "0.0.0.0"
    pagerduty_webhook_secret: str | None = None
    opsgenie_webhook_token: str | None = None

    @property
    def mode(self) -> str:
        """`socket`, `http` or `console`, from the Slack credentials present."""
        if self.slack_bot_token and self.slack_app_token:
            return "socket"
        if self.slack_bot_token and self.slack_signing_secret:
            return "http"
        return "console"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        config = env.get("SLO_BOT_CONFIG", "")
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_URL,
            config_paths=tuple(p for p in config.split(":") if p),
            eval_interval_s=parse_duration(env.get("SLO_BOT_EVAL_INTERVAL") or "1m").total_seconds(),
            concurrency=int(env.get("SLO_BOT_CONCURRENCY") or DEFAULT_CONCURRENCY),
            default_channel=env.get("SLO_BOT_DEFAULT_CHANNEL") or None,
            slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            slack_app_token=env.get("SLACK_APP_TOKEN") or None,
            slack_api_url=env.get("SLACK_API_URL") or "https://slack.com/api/",
            responders=tuple(
                r.strip() for r in (env.get("SLO_BOT_RESPONDERS") or "").split(",") if r.strip()
            ),
            host=env.get("SLO_BOT_HOST") or "0.0.0.0",
            pagerduty_webhook_secret=env.get("PAGERDUTY_WEBHOOK_SECRET") or None,
            opsgenie_webhook_token=env.get("OPSGENIE_WEBHOOK_TOKEN") or None,
        )


@dataclass
class SourcePool:
    """One source (and one HTTP client, with its connection pool) per distinct DataSource."""

    max_connections: int = DEFAULT_CONCURRENCY
    _sources: dict[str, Source] = field(default_factory=dict)
    _clients: list[httpx.Client] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, datasource: DataSource) -> Source:
        key = json.dumps(
            [datasource.name, datasource.type, datasource.connection], sort_keys=True, default=str
        )
        with self._lock:
            source = self._sources.get(key)
            if source is None:
                source = self._build(datasource)
                self._sources[key] = source
            return source

    def _build(self, datasource: DataSource) -> Source:
        if datasource.type in LOCAL_SOURCES:
            return LOCAL_SOURCES[datasource.type](datasource)
        try:
            options = client_options(datasource.connection)
        except ValueError as err:  # e.g. its caFile has gone: a person must fix the DataSource
            raise BadQuery(f"{datasource.type} datasource {datasource.name!r}: {err}") from err
        limits = httpx.Limits(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        client = httpx.Client(limits=limits, **options)
        self._clients.append(client)
        return HTTP_SOURCES[datasource.type](datasource, client)

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        self._sources.clear()


def incident_client() -> httpx.Client:
    """The one client of the incident tools: a call that hangs is retried from the outbox, not waited on."""
    return httpx.Client(timeout=httpx.Timeout(10.0), follow_redirects=False)


def engine_from(settings: Settings) -> Engine:
    return make_engine(settings.database_url)

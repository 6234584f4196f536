"""One source (and one HTTP client, with its connection pool) per distinct DataSource."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import httpx

from bot.domain import DataSource
from bot.settings import DEFAULT_CONCURRENCY
from bot.sources import HTTP_SOURCES, LOCAL_SOURCES, Source
from bot.sources.base import BadQuery


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
        kind = HTTP_SOURCES[datasource.type]
        try:
            options = kind.client_options(datasource.connection)
        except ValueError as err:  # e.g. its caFile has gone: a person must fix the DataSource
            raise BadQuery(f"{datasource.type} datasource {datasource.name!r}: {err}") from err
        limits = httpx.Limits(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        client = httpx.Client(limits=limits, **options)
        self._clients.append(client)
        return kind(datasource, client)

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        self._sources.clear()

"""How slo-bot's log lines look: human text (the default) or, with SLO_BOT_LOG_FORMAT=json, one JSON
object a line carrying the replica and, where known, the SLO and the tick it belongs to."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import ParamSpec, TextIO, TypeVar

from bot.fleet import replica_name

FORMATS = ("text", "json")
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
# what a JSON line may carry besides time, level, logger and message
CONTEXT_FIELDS = ("slo", "tick")

P = ParamSpec("P")
R = TypeVar("R")

_format = "text"  # as configured
_announcements = logging.getLogger("bot.run")

_fields: ContextVar[Mapping[str, str]] = ContextVar("slo_bot_log_fields", default=MappingProxyType({}))


@contextmanager
def context(**fields: object) -> Iterator[None]:
    """Every line logged inside (in this thread or task) carries `fields`, e.g. `slo=` and `tick=`;
    `None` values are left out. Nests: inner fields add to or override the outer ones."""
    added = {key: str(value) for key, value in fields.items() if value is not None}
    token = _fields.set({**_fields.get(), **added})
    try:
        yield
    finally:
        _fields.reset(token)


def current() -> Mapping[str, str]:
    """The fields of the innermost `context` (e.g. to carry them into a worker thread)."""
    return _fields.get()


class _ContextFilter(logging.Filter):
    """Copies the current `context` onto each record the handler writes: third-party loggers' too."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _fields.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def parse_format(value: str | None) -> str:
    """`text` or `json` from SLO_BOT_LOG_FORMAT (unset or empty: `text`); anything else is refused."""
    fmt = (value or "text").strip().lower()
    if fmt not in FORMATS:
        raise ValueError(f"SLO_BOT_LOG_FORMAT={value!r} is not a log format: use text or json")
    return fmt


def make_handler(fmt: str, stream: TextIO | None = None, *, replica: str | None = None) -> logging.Handler:
    """A handler writing `fmt` lines (see `parse_format`) to `stream` (stderr)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    if parse_format(fmt) == "json":
        from pythonjsonlogger.json import JsonFormatter  # here: text mode starts without it

        handler.setFormatter(
            JsonFormatter(
                ["levelname", "name", "message"],
                rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
                static_fields={"replica": replica or replica_name()},
                timestamp="time",  # ISO 8601 in UTC, from the record's creation time
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(_ContextFilter())
    return handler


def configure(value: str | None = None) -> str:
    """Send every logger's lines (slo-bot's and the libraries': uvicorn, Bolt, APScheduler, httpx) to
    stderr in the format `value` names (default: SLO_BOT_LOG_FORMAT). Like `logging.basicConfig`, it
    leaves alone a root logger someone already configured (an application embedding slo-bot, pytest).
    Returns the format; raises ValueError for an unknown one."""
    global _format
    fmt = parse_format(os.environ.get("SLO_BOT_LOG_FORMAT") if value is None else value)
    logging.basicConfig(level=logging.WARNING, handlers=[make_handler(fmt)])
    logging.getLogger("bot.scheduler").setLevel(logging.INFO)  # its one line about a slow first tick
    _announcements.setLevel(logging.INFO)
    _format = fmt
    return fmt


def announce(text: str) -> None:
    """A line for the operator, e.g. what `run` serves: on stderr as written, or a JSON log line
    (in JSON mode everything a log collector reads from stderr is JSON)."""
    if _format == "json":
        _announcements.info(text)
    else:
        print(text, file=sys.stderr, flush=True)


def carry(function: Callable[P, R], **fields: object) -> Callable[P, R]:
    """`function`, to run in another thread (a pool's) with the caller's `context` plus `fields`."""
    snapshot = {**_fields.get(), **{key: value for key, value in fields.items() if value is not None}}

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with context(**snapshot):
            return function(*args, **kwargs)

    return run

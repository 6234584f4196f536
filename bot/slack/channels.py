"""Channel names to IDs. An SLO may route to `#alerts`: Slack takes a name for a post, but checking
members or looking for a post in a channel's history needs its ID."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)
_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
RELOAD_SECONDS = 60.0  # an unknown name reloads the list at most this often


def is_id(channel: str) -> bool:
    return bool(_ID.match(channel))


@dataclass
class ChannelDirectory:
    client: WebClient
    clock: Callable[[], float] = time.monotonic
    _ids: dict[str, str] = field(default_factory=dict)
    _loaded_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def id_of(self, channel: str) -> str | None:
        """The channel's ID (an ID is returned as it is); None when no channel has that name."""
        if is_id(channel):
            return channel
        name = channel.strip().lstrip("#").lower()
        with self._lock:
            if name in self._ids:
                return self._ids[name]
            if self._loaded_at is not None and self.clock() - self._loaded_at < RELOAD_SECONDS:
                return None
            try:
                self._ids = self._load()
            except SlackApiError as err:
                log.warning("listing channels to find #%s failed: %s", name, err.response.get("error"))
                return None
            finally:
                self._loaded_at = self.clock()
            return self._ids.get(name)

    def _load(self) -> dict[str, str]:
        ids: dict[str, str] = {}
        cursor = None
        while True:
            page = self.client.conversations_list(
                types="public_channel,private_channel", exclude_archived=True, limit=1000, cursor=cursor
            )
            ids.update({c["name"].lower(): c["id"] for c in page.get("channels") or []})
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return ids

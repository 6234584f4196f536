"""Who may acknowledge, silence or subscribe: members of the SLO's own alert channel (never a merely
subscribed one), or a configured list.

`SLO_BOT_RESPONDERS` (user IDs `U…` and user-group IDs `S…`, comma-separated) replaces the
channel-membership rule when set. Memberships are cached for a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.channels import ChannelDirectory, is_id

log = logging.getLogger(__name__)
CACHE_SECONDS = 60.0


@dataclass
class Responders:
    client: WebClient
    allowed: Sequence[str] = ()  # U… and S… ids; empty: channel members
    channels: ChannelDirectory | None = None  # to check channels routed to by `#name`
    clock: Callable[[], float] = time.monotonic
    _cache: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, user: str, channels: Iterable[str]) -> str | None:
        """None when `user` may act; otherwise the reason, written for that user."""
        unreachable = "I could not check your membership with Slack just now; try again in a minute."
        if self.allowed:
            try:
                if user in self.allowed or any(
                    user in self._members(g, self._group_members) for g in self.allowed if g[:1] == "S"
                ):
                    return None
            except SlackApiError as err:
                log.warning("checking whether %s may act failed: %s", user, err)
                return unreachable
            return "Only the responders configured for slo-bot may do this."
        routed = list(dict.fromkeys(c for c in channels if c))
        failed = False
        for channel in routed:  # one channel Slack will not tell about must not veto the others
            checked = channel
            if not is_id(channel):  # routed by `#name`: members are listed by channel ID only
                found = self.channels.id_of(channel) if self.channels else None
                if found is None:
                    continue
                checked = found
            try:
                if user in self._members(checked, self._channel_members):
                    return None
            except SlackApiError as err:
                log.warning("listing the members of %s failed: %s", checked, err.response.get("error"))
                failed = True
        if failed:
            return unreachable
        if not routed:
            return (
                "Only responders may do this, and this SLO has no alert channel of its own to say who "
                "they are: give it a `slo-bot/channel`, or set SLO_BOT_DEFAULT_CHANNEL or "
                "SLO_BOT_RESPONDERS."
            )
        where = ", ".join(f"<#{c}>" if is_id(c) else f"#{c.lstrip('#')}" for c in routed)
        return f"Only members of {where} may do this: they respond to this SLO."

    def _members(self, key: str, load: Callable[[str], frozenset[str]]) -> frozenset[str]:
        now = self.clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached and now - cached[0] < CACHE_SECONDS:
                return cached[1]
        members = load(key)
        with self._lock:
            self._cache[key] = (now, members)
        return members

    def _channel_members(self, channel: str) -> frozenset[str]:
        members: set[str] = set()
        cursor = None
        while True:
            page = self.client.conversations_members(channel=channel, cursor=cursor, limit=1000)
            members.update(page.get("members") or [])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return frozenset(members)

    def _group_members(self, group: str) -> frozenset[str]:
        page = self.client.usergroups_users_list(usergroup=group)
        return frozenset(page.get("users") or [])

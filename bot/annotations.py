"""slo-bot's own settings in `slo-bot/` annotations: each one's parser, shared by validate and run.

A parser takes the annotation as written and returns its value or raises ValueError with a message a
person can act on. The catalogue reports that message at the annotation's line; the code that acts on
a setting calls the same parser, so what validates is what runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from bot.durations import parse_duration

PREFIX = "slo-bot/"
CHANNEL = "slo-bot/channel"
DASHBOARD = "slo-bot/dashboard"
BUDGET_ALERTS = "slo-bot/budget-alerts"
NO_DATA_AFTER = "slo-bot/no-data-after"
MIN_BAD_EVENTS = "slo-bot/min-bad-events"
INCIDENT_TARGETS = "slo-bot/incident-targets"  # on an SLO: AlertNotificationTargets every page goes to
ESCALATE_AFTER = "slo-bot/escalate-after"
ONCALL_GROUP = "slo-bot/oncall-group"
ROUTING_KEY = "slo-bot/routing-key"
GROUP_BY = "slo-bot/group-by"  # on an SLO: one member SLO per value of these labels
DIGEST = "slo-bot/digest"  # on an SLO: its channels' weekly digest, `monday 09:00 Europe/Berlin`
ROUTING_KEY_LENGTH = 32  # a PagerDuty Events API v2 integration key
REGIONS = ("us", "eu")

ONCALL_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")  # a Slack user group ID, not its @handle
_CHANNEL = re.compile(r"^#?[\w.-]{1,80}$")  # an ID (C0123ABCD) or a name (#api-alerts)
_MAX_BUTTON_URL = 3000  # Slack refuses a button whose url is longer


def parse_list(text: str) -> list[str]:
    """`"a, b,,a"` -> `["a", "b"]`: the items of a comma-separated annotation, each once."""
    return list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))


def parse_channels(text: str) -> list[str]:
    """`slo-bot/channel`: channel IDs or #names, comma-separated."""
    channels = parse_list(text)
    for channel in channels:
        if not _CHANNEL.match(channel):
            raise ValueError(
                f"{channel!r} is not a Slack channel: give channel IDs (C0123ABCD) or names "
                "(#api-alerts), separated by commas"
            )
    return channels


def parse_url(text: str) -> str:
    """An http(s) URL with a host, stripped."""
    url = text.strip()
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed `[` in the host
        ok = False
    if not ok:
        raise ValueError("not an http(s) URL with a host")
    return url


def parse_dashboard(text: str) -> str:
    """`slo-bot/dashboard`: the URL of the *View SLO* button."""
    url = parse_url(text)
    if len(url) > _MAX_BUTTON_URL:
        raise ValueError(f"at most {_MAX_BUTTON_URL} characters (Slack's limit for a button's URL)")
    return url


def dashboard_of(annotations: Mapping[str, str]) -> str | None:
    """The SLO's dashboard URL, if it has one (the catalogue refuses one `parse_dashboard` refuses)."""
    text = annotations.get(DASHBOARD, "").strip()
    return parse_dashboard(text) if text else None


def parse_budget_alerts(text: str) -> tuple[float, ...]:
    """`slo-bot/budget-alerts`: `"50,25,0"` (percent of budget left) -> `(0.5, 0.25, 0.0)`; `""`: none."""
    ratios: list[float] = []
    for item in parse_list(text):
        try:
            percent = float(item.removesuffix("%"))
        except ValueError:
            percent = math.nan
        if not 0 <= percent <= 100:
            raise ValueError(
                f"{item!r} is not a percentage from 0 to 100: list the budget left that alerts, "
                'e.g. "50,25,0" (or "" for none)'
            )
        ratios.append(percent / 100)
    distinct = sorted(set(ratios), reverse=True)
    keys = [round(r * 100) for r in distinct]  # each alert's key: budget-50 (bot.policy)
    for key in {k for k in keys if keys.count(k) > 1}:
        same = ", ".join(f"{r * 100:g}" for r in distinct if round(r * 100) == key)
        raise ValueError(f"{same} are one alert (budget-{key}): give percentages that differ by a whole one")
    return tuple(distinct)


def parse_no_data_after(text: str) -> timedelta:
    """`slo-bot/no-data-after`: how long without data before the no-data alert fires."""
    return parse_duration(text)


def parse_min_bad_events(text: str) -> float:
    """`slo-bot/min-bad-events`: the bad events a burn rule's long window needs before it fires."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{text.strip()!r} is not a number of events (0 or more, e.g. 3)")
    return value


_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def parse_group_by(text: str) -> tuple[str, ...]:
    """`slo-bot/group-by`: the labels whose values make the members of a grouped SLO, comma-separated."""
    labels = parse_list(text)
    if not labels:
        raise ValueError("name at least one label, e.g. route (or route, method)")
    for label in labels:
        if not _LABEL_NAME.match(label) or label.startswith("__"):
            raise ValueError(
                f"{label!r} is not a label slo-bot can group by: give Prometheus label names "
                "(letters, digits and _, not starting with __), separated by commas"
            )
    return tuple(labels)


def group_by_of(annotations: Mapping[str, str]) -> tuple[str, ...]:
    """The labels a grouped SLO is split by; () for an SLO of its own (the catalogue refused a wrong one)."""
    text = annotations.get(GROUP_BY)
    return () if text is None else parse_group_by(text)


def parse_escalate_after(text: str) -> timedelta:
    """`slo-bot/escalate-after`: how long a page may stay unacknowledged."""
    try:
        return parse_duration(text)
    except ValueError as err:
        raise ValueError(f"{err}: how long a page may stay unacknowledged, e.g. 15m") from None


def parse_oncall_group(text: str) -> str:
    """`slo-bot/oncall-group`: the Slack user group an escalation mentions."""
    group = text.strip()
    if not ONCALL_GROUP_ID.match(group):
        raise ValueError(
            f"{group!r} is not a Slack user group ID: write the group's ID (S followed by capital "
            "letters and digits, e.g. S0123ABCD), not its @handle"
        )
    return group


def parse_routing_key(text: str) -> str:
    """`slo-bot/routing-key` of a PagerDuty target."""
    key = text.strip()
    if len(key) != ROUTING_KEY_LENGTH:
        raise ValueError(
            f"must be the {ROUTING_KEY_LENGTH}-character integration key of an Events API v2 "
            f"integration (this one has {len(key)} characters; value not shown: it is a secret)"
        )
    return key


def parse_region(text: str) -> str:
    """`slo-bot/region` of a PagerDuty or Opsgenie target: us (the default when blank) or eu."""
    region = text.strip().lower() or "us"
    if region not in REGIONS:
        raise ValueError(f"must be us or eu, not {text.strip()!r}")
    return region


def _text(text: str) -> str:
    return text.strip()


def _schedule(text: str) -> str:
    from bot.digest import parse_schedule  # (zoneinfo: only when a catalogue has a digest)

    return parse_schedule(text).text()


# Every `slo-bot/` annotation slo-bot reads, with its parser. The catalogue refuses any other
# `slo-bot/` key (a misspelt setting would otherwise be ignored without a word).
PARSERS: dict[str, Callable[[str], Any]] = {
    CHANNEL: parse_channels,
    DASHBOARD: parse_dashboard,
    BUDGET_ALERTS: parse_budget_alerts,
    NO_DATA_AFTER: parse_no_data_after,
    MIN_BAD_EVENTS: parse_min_bad_events,
    INCIDENT_TARGETS: parse_list,
    ESCALATE_AFTER: parse_escalate_after,
    ONCALL_GROUP: parse_oncall_group,
    GROUP_BY: parse_group_by,
    DIGEST: _schedule,
    # incident tools (AlertNotificationTargets); their combinations are checked by the catalogue
    ROUTING_KEY: _text,  # its length is checked on pagerduty targets only
    "slo-bot/region": _text,  # checked on the targets that have regions
    "slo-bot/url": _text,
    "slo-bot/api-url": _text,
    "slo-bot/api-token": _text,
    "slo-bot/from": _text,
    "slo-bot/api-key": _text,
    "slo-bot/responders": parse_list,
    "slo-bot/escalation": _text,
    "slo-bot/secret": _text,
    # written by slo-bot itself on documents it generates from Sloth specs
    "slo-bot/imported-from": _text,
    "slo-bot/generated-for": _text,
}

"""slo-bot's own settings in `slo-bot/` annotations, checked on the document that carries them.

Values arrive with `${NAME}` substituted; one still holding `${` had an unset variable, already reported.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.annotations import PARSERS, PREFIX, ROUTING_KEY, parse_region, parse_routing_key, parse_url
from bot.catalogue.checks import Checker
from bot.catalogue.origins import Path

URL = "slo-bot/url"
FROM = "slo-bot/from"
REGION = "slo-bot/region"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Tool:
    """The settings of one incident tool's AlertNotificationTarget."""

    required: Mapping[str, str]  # annotation -> what it holds, for the message that asks for it
    urls: tuple[str, ...] = ()  # annotations that, if given, are http(s) URLs
    region: bool = False
    token_needs_from: bool = False  # PagerDuty's REST API wants a From header beside a token


# keyed by lowercased `spec.target`; the keys are bot.incidents.base.INCIDENT_TARGET_KINDS
TOOLS: dict[str, Tool] = {
    "pagerduty": Tool(
        {ROUTING_KEY: "its Events API v2 integration key; write it as ${PAGERDUTY_ROUTING_KEY}"},
        urls=(URL, "slo-bot/api-url"),
        region=True,
        token_needs_from=True,
    ),
    "opsgenie": Tool(
        {"slo-bot/api-key": "the key of an Opsgenie API integration; write it as ${OPSGENIE_API_KEY}"},
        urls=(URL,),
        region=True,
    ),
    "squadcast": Tool(
        {URL: "the incident webhook URL of a Squadcast service; write it as ${SQUADCAST_WEBHOOK_URL}"},
        urls=(URL,),
    ),
    "webhook": Tool(
        {
            URL: "the http(s) URL slo-bot POSTs each alert to as JSON",
            "slo-bot/secret": "the HMAC-SHA256 key that signs every request; write it as ${WEBHOOK_SECRET}",
        },
        urls=(URL,),
    ),
}


def check_target(ck: Checker, target: str, annotations: Mapping[str, str], root: Path) -> None:
    """An AlertNotificationTarget at `root`: the settings its tool needs, and escalation on slack ones.

    Targets slo-bot does not deliver to (`email` ...) are valid OpenSLO and are left alone.
    """
    kind = target.strip().lower()
    tool = TOOLS.get(kind)
    if tool is None:
        return
    for key, what in tool.required.items():
        if key not in annotations:
            ck.fail(_annotations_path(ck, root), f"{kind} target needs annotation {key} ({what})")
        elif not annotations[key].strip():
            ck.fail(_at(root, key), f"must not be empty: {what}")
    key_text = _given(annotations, ROUTING_KEY) if kind == "pagerduty" else None
    if key_text is not None:
        try:
            parse_routing_key(key_text)
        except ValueError as err:
            ck.fail(_at(root, ROUTING_KEY), f"{ROUTING_KEY} {err}")
    for key in tool.urls:
        text = _given(annotations, key)
        if text is not None and not _is_url(text):
            ck.fail(
                _at(root, key),
                "not an http(s) URL with a host (value not shown: it may hold a secret)",
            )
    region = _given(annotations, REGION) if tool.region else None
    if region is not None:
        try:
            parse_region(region)
        except ValueError as err:
            ck.fail(_at(root, REGION), f"{kind} region {err}")
    if tool.token_needs_from and _given(annotations, "slo-bot/api-token") is not None:
        sender = annotations.get(FROM, "").strip()
        if not sender:
            ck.fail(
                _annotations_path(ck, root) if FROM not in annotations else _at(root, FROM),
                f"{kind} target with slo-bot/api-token needs annotation {FROM} (the email of a "
                "PagerDuty user: its REST API wants one in the From header)",
            )
        elif "${" not in sender and not _EMAIL.match(sender):
            ck.fail(_at(root, FROM), f"expected the email of a PagerDuty user, not {sender!r}")


def annotation_text(value: Any) -> str:
    """An annotation's value as text: OpenSLO annotations are strings, YAML lets numbers through."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value)


def check_annotations(ck: Checker, annotations: Mapping[str, Any], at: Path) -> None:
    """Every `slo-bot/` annotation of a document (`at` is its `metadata.annotations`), parsed by the
    parser `slo-bot run` uses; an unknown `slo-bot/` key is most likely a misspelt setting."""
    for key, value in annotations.items():
        if not key.startswith(PREFIX):
            continue
        parse = PARSERS.get(key)
        if parse is None:
            # compared without the prefix, which every candidate shares
            names = sorted(known.removeprefix(PREFIX) for known in PARSERS)
            close = difflib.get_close_matches(key.removeprefix(PREFIX), names, n=1)
            hint = f"did you mean '{PREFIX}{close[0]}'?" if close else "known: " + ", ".join(names)
            ck.fail((*at, key), f"unknown slo-bot annotation ({hint})")
            continue
        text = annotation_text(value)
        if "${" in text:
            continue  # an unset variable, reported as such
        try:
            parse(text)
        except ValueError as err:
            ck.fail((*at, key), str(err))


def _given(annotations: Mapping[str, str], key: str) -> str | None:
    """The annotation stripped; None when absent, blank, or holding an unset variable."""
    text = annotations.get(key, "").strip()
    return text if text and "${" not in text else None


def _is_url(text: str) -> bool:
    try:
        parse_url(text)
    except ValueError:
        return False
    return True


def _at(root: Path, key: str) -> Path:
    return (*root, "metadata", "annotations", key)


def _annotations_path(ck: Checker, root: Path) -> Path:
    """Where a missing annotation belongs: `metadata.annotations`, or `metadata` if it has none."""
    metadata: Any = ck.doc.data
    for part in (*root, "metadata"):
        if isinstance(metadata, dict) and isinstance(part, str):
            metadata = metadata.get(part)
        elif isinstance(metadata, list) and isinstance(part, int) and part < len(metadata):
            metadata = metadata[part]
        else:
            return (*root, "metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("annotations"), dict):
        return (*root, "metadata", "annotations")
    return (*root, "metadata")

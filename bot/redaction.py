"""Secrets out of text that leaves the process (logs, stored error texts, Slack): masked where a
server, a proxy or a library may have quoted them, in every form they travel in."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

MASK = "***"
# Shorter values are not masked: replacing every "1" or "eu" in a message would garble it, and a
# credential that short is no secret anyway.
MIN_SECRET_LENGTH = 4


def mask(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret replaced by `***` (the longest first: one may contain another)."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def basic_auth(username: str, password: str) -> list[str]:
    """A basic-auth password as it travels: as written, and inside the base64 of an Authorization
    header (`Basic dXNlcjpwYXNz`), which a gateway echoing the request quotes."""
    if not password:
        return []
    return [password, base64.b64encode(f"{username}:{password}".encode()).decode("ascii")]


def of_url(url: str) -> list[str]:
    """What in a URL is secret: the password of its user info (and the basic-auth header it becomes)
    and its query string, where receivers put tokens."""
    parts = urlsplit(url)
    found = [parts.query] if parts.query else []
    if parts.password:
        user, password = unquote(parts.username or ""), unquote(parts.password)
        found += [parts.password, *basic_auth(user, password)]
    return found

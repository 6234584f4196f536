"""Signed, expiring links to an SLO's page (`/slos/NAME?exp=EPOCH&sig=HEX`). Pure: no clock, no I/O.

The page has no accounts: whoever holds a link Slack showed them may read it until it expires, and
no one can make a link to another SLO or a later expiry without the key (HMAC-SHA256 over the name
and the expiry, compared in constant time).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

LIFETIME = timedelta(days=7)
MIN_KEY_BYTES = 16  # a shorter key is refused at start: a guessable key would open every page
_SIG_HEX = 64


def _message(name: str, expires: int) -> bytes:
    # the name is URL-quoted so no name can contain the separator and collide with another's
    return f"slo-page\n{quote(name, safe='')}\n{expires}".encode()


def sign(name: str, expires: int, key: bytes) -> str:
    """The signature (hex) of a link to `name`'s page that is good until `expires` (epoch seconds)."""
    return hmac.new(key, _message(name, expires), hashlib.sha256).hexdigest()


def verify(name: str, exp: str | None, sig: str | None, key: bytes, now: datetime) -> bool:
    """Whether a link's `exp` and `sig` (as the query string gave them) are good for `name` now."""
    if exp is None or sig is None or not exp.isascii() or not exp.isdigit() or len(exp) > 12:
        return False
    if len(sig) != _SIG_HEX:
        return False
    expected = sign(name, int(exp), key)
    # both sides as bytes: compare_digest on str refuses non-ASCII input with a TypeError
    good = hmac.compare_digest(expected.encode(), sig.lower().encode("utf-8", errors="replace"))
    return good and int(exp) > now.timestamp()


def page_path(name: str) -> str:
    return f"/slos/{quote(name, safe='')}"


@dataclass(frozen=True)
class Links:
    """The key page links are signed with and where Slack's readers reach `slo-bot run` ("" when
    unknown: the page is served, but no link to it is made)."""

    key: bytes
    public_url: str = ""
    lifetime: timedelta = LIFETIME

    def page(self, name: str, now: datetime) -> str | None:
        """The signed link to `name`'s page, good for `lifetime` from `now`; None without a public URL."""
        if not self.public_url:
            return None
        expires = int((now + self.lifetime).timestamp())
        query = urlencode({"exp": expires, "sig": sign(name, expires, self.key)})
        return f"{self.public_url.rstrip('/')}{page_path(name)}?{query}"

    @classmethod
    def of(cls, key: str | None, public_url: str | None) -> Links | None:
        """From SLO_BOT_LINK_KEY and SLO_BOT_PUBLIC_URL; no key: no page at all (None). A key shorter
        than 16 bytes or a URL that is not http(s) is a ValueError, said at start."""
        if not key:
            return None
        if len(key.encode()) < MIN_KEY_BYTES:
            raise ValueError(
                f"SLO_BOT_LINK_KEY must be at least {MIN_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`)"
            )
        url = public_url or ""
        if url and not url.startswith(("http://", "https://")):
            raise ValueError(f"SLO_BOT_PUBLIC_URL must start with http:// or https://, not {url!r}")
        return cls(key=key.encode(), public_url=url)

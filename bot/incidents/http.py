"""What the HTTP incident targets share: settings from annotations, JSON-safe values, one request
sent and its answer classified as delivered, worth a retry (`TargetUnavailable`) or refused
(`TargetRejected`), with secrets masked in every message."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bot.annotations import parse_url
from bot.domain import NotificationTarget
from bot.durations import format_duration
from bot.incidents.base import TargetRejected, TargetUnavailable
from bot.redaction import mask

if TYPE_CHECKING:
    import httpx

ANNOTATION_PREFIX = "slo-bot/"
MAX_DETAIL = 500  # characters of a vendor's error text kept in a message


def annotation(target: NotificationTarget, name: str, *, required: bool = False, url: bool = False) -> str:
    """The target's `slo-bot/<name>` annotation, stripped ("" when absent). TargetRejected when a
    `required` one is missing or a `url` one is not http(s); messages never quote the value."""
    value = (target.annotations.get(ANNOTATION_PREFIX + name) or "").strip()
    where = f"{target.target} target {target.name!r}: annotation {ANNOTATION_PREFIX}{name}"
    if required and not value:
        raise TargetRejected(f"{where} is missing")
    if url and value:
        try:
            parse_url(value)  # the catalogue's check of the same annotation
        except ValueError:
            raise TargetRejected(f"{where} is not an http(s) URL") from None
    return value


def answer_field(response: httpx.Response, name: str) -> str | None:
    """A top-level field of a JSON answer, if there is one: a 2xx with an unreadable body still counts
    as delivered, it only gives no reference."""
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get(name) if isinstance(body, Mapping) else None
    return str(value) if value not in (None, "") else None


def iso_utc(at: datetime) -> str:
    """`2024-05-01T12:00:00Z`: ISO 8601 in UTC, as every incident tool reads it."""
    if at.tzinfo is None:
        raise ValueError("event times must be timezone-aware")
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def plain(value: Any) -> Any:
    """`value` as JSON can carry it: mappings and sequences recursively, instants as ISO 8601,
    durations as `5m`, non-finite floats as text (httpx refuses NaN), anything else as its str()."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return iso_utc(value) if value.tzinfo else value.isoformat()
    if isinstance(value, timedelta) and value > timedelta(0) and not value % timedelta(seconds=1):
        return format_duration(value)
    return str(value)


def host_of(url: str) -> str:
    """Only the host (and port) of `url`: paths and queries may hold keys, so messages show this."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def request(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    where: str,
    secrets: Iterable[str] = (),
    auth_hint: str = "",
    **options: Any,
) -> httpx.Response:
    """Send one request and return its 2xx answer; anything else raises TargetUnavailable
    (timeout, transport error, 408, 429, 5xx) or TargetRejected (other answers).

    `where` opens every message ("PagerDuty target 'oncall'"); each of `secrets` is masked in them,
    since vendors echo keys back. The transport error is not chained: it holds the URL.
    """
    import httpx  # here, not at the top: `slo-bot validate` reads this package and sends nothing

    hidden = [s for s in secrets if s]
    try:
        response = client.request(method, url, **options)
    except httpx.TimeoutException as exc:
        raise TargetUnavailable(f"{where}: no answer within the timeout ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        detail = mask(str(exc) or type(exc).__name__, hidden)
        raise TargetUnavailable(f"{where}: cannot reach it ({detail})") from None
    code = response.status_code
    if 200 <= code < 300:
        return response
    shown = f"HTTP {code} {response.reason_phrase}".rstrip()
    detail = mask(vendor_message(response), hidden)[:MAX_DETAIL]  # masked before cut: no half a key
    said = f": {detail}" if detail else ""
    if code in (408, 429) or code >= 500:
        raise TargetUnavailable(f"{where}: {shown}{said}", retry_after=retry_after(response))
    if 300 <= code < 400:
        raise TargetRejected(f"{where}: redirected ({shown}); point the target at the API itself")
    hint = f"; {auth_hint}" if auth_hint and code in (401, 403) else ""
    raise TargetRejected(f"{where}: refused ({shown}){said}{hint}")


def vendor_message(response: httpx.Response) -> str:
    """The tool's own words from an error answer: `message`, `errors` and the like, in the shapes
    PagerDuty, Opsgenie and Squadcast use; a short plain-text body as it is; else nothing."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return "" if text.startswith("<") else text  # an HTML error page says nothing useful
    if not isinstance(body, Mapping):
        return ""
    parts: list[str] = []
    error = body.get("error")
    if isinstance(error, Mapping):  # PagerDuty REST: {"error": {"message", "code", "errors"}}
        body = error
    elif isinstance(error, str):
        parts.append(error)
    meta = body.get("meta")
    if isinstance(meta, Mapping) and isinstance(meta.get("error_message"), str):
        parts.append(meta["error_message"])
    if isinstance(body.get("message"), str):
        parts.append(body["message"])
    errors = body.get("errors")
    if isinstance(errors, list):
        parts.extend(str(e) for e in errors)
    elif isinstance(errors, Mapping):  # Opsgenie: {"errors": {"field": "problem"}}
        parts.extend(f"{k}: {v}" for k, v in errors.items())
    return "; ".join(dict.fromkeys(p for p in parts if p))


def retry_after(response: httpx.Response) -> timedelta | None:
    """The answer's `Retry-After` (seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime  # the email package: not for `slo-bot validate`

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return timedelta(seconds=max(0.0, seconds))

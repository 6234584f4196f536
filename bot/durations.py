"""Duration shorthand as OpenSLO writes it (`5m`, `1h`, `28d`, `4w`, `1M`, `1Q`, `1Y`), both ways."""

from __future__ import annotations

import functools
import re
from datetime import timedelta

_UNITS: dict[str, timedelta] = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    # Calendar units have no fixed length; these nominal ones serve rolling windows and scaling.
    "M": timedelta(days=30),
    "Q": timedelta(days=90),
    "Y": timedelta(days=365),
}
_PATTERN = re.compile(r"^(\d+)([smhdwMQY])$")
_COMPOUND = re.compile(r"^(?:\d+[smhdw])+$")


def parse_duration(text: str) -> timedelta:
    """`"5m"` -> 5 minutes. Compound forms such as `1h30m` are accepted. Raises ValueError."""
    text = text.strip()
    match = _PATTERN.match(text)
    if match:
        value = int(match.group(1))
        if value == 0:
            raise ValueError(f"duration {text!r} must be greater than zero")
        return value * _UNITS[match.group(2)]
    if _COMPOUND.match(text):
        total = sum((int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([smhdw])", text)), timedelta())
        if total > timedelta(0):
            return total
    raise ValueError(
        f"invalid duration {text!r}: expected a number and a unit (s, m, h, d, w, M, Q, Y), e.g. 30d"
    )


def calendar_unit(text: str) -> tuple[int, str]:
    """`"1M"` -> (1, "M"): the count and unit of a single-unit duration."""
    match = _PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"invalid duration {text!r}")
    return int(match.group(1)), match.group(2)


@functools.lru_cache(maxsize=256)  # a tick formats the same few windows thousands of times
def format_duration(value: timedelta) -> str:
    """5 minutes -> `"5m"`, 1 day -> `"1d"`, 90 seconds -> `"90s"`: the largest exact unit."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"

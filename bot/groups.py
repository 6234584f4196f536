"""Grouped SLOs: one definition (`slo-bot/group-by: route`) and a member SLO per label value seen.

Pure: member names, the member's domain SLO, when a quiet member retires. The evaluation of a group
(one query per range for all members) is in `bot.jobs`, its rows in `bot.store.groups`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from bot.annotations import group_by_of
from bot.domain import SLO

MAX_NAME = 255  # the `slo.name` column


def labels_of(slo: SLO) -> tuple[str, ...]:
    """The labels `slo` is grouped by; () for an SLO of its own (and for a member)."""
    return () if slo.member_of is not None else group_by_of(slo.annotations)


def member_name(definition: str, values: Sequence[str]) -> str:
    """`checkout-latency[/pay]` (several labels: `checkout-latency[/pay,GET]`, in group-by order).

    OpenSLO names have no `[`, so the definition's name is everything before the first one. With
    several labels a comma inside a value is written `\\,` (two members never share a name). A name
    longer than the column keeps its start and ends with a digest of the values."""
    shown = values if len(values) < 2 else [v.replace("\\", "\\\\").replace(",", "\\,") for v in values]
    name = f"{definition}[{','.join(shown)}]"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256("\0".join(values).encode()).hexdigest()[:12]
    return f"{name[: MAX_NAME - 15]}…{digest}]"


def definition_of(member: str) -> str:
    return member.split("[", 1)[0]


def member_slo(definition: SLO, values: Sequence[str]) -> SLO:
    """The member of `definition` for one tuple of label values: the same objective, window and
    alerting, its own name and labels."""
    labels = labels_of(definition)
    return replace(
        definition,
        name=member_name(definition.name, values),
        member_of=definition.name,
        group=tuple(zip(labels, values, strict=True)),
    )


def quiet_period(slo: SLO) -> timedelta:
    """How long a member may go without data before it retires: the SLO's window. By then no window
    its budget counts holds an event of it, so nothing it would show is lost, and a value that comes
    back later starts afresh with nothing missing (the group's queries since cover it)."""
    return slo.window.duration


def retires(slo: SLO, last_data_at: datetime | None, created_at: datetime, now: datetime) -> bool:
    """Whether a member with its newest data at `last_data_at` (None: never) retires at `now`."""
    return now - (last_data_at or created_at) >= quiet_period(slo)


def value_of(member: str) -> str:
    """What a member's name says beyond its definition's: `/pay` of `checkout-latency[/pay]`."""
    return member[len(definition_of(member)) + 1 : -1] if "[" in member else member


def summary(
    definition_labels: Sequence[str], members: Sequence[tuple[str, float | None]], worst: int = 2
) -> str:
    """A group's status in a few words: "12 routes: worst /pay 43 % left, /cart 71 % left".

    `members` are (member name, budget remaining ratio or None), any order; the least budget left
    first, no data last."""
    count = len(members)
    noun = f"{definition_labels[0]}s" if len(definition_labels) == 1 else "members"
    if count == 1:
        noun = definition_labels[0] if len(definition_labels) == 1 else "member"
    ranked = sorted(members, key=lambda m: (m[1] is None, m[1] or 0.0, m[0]))
    shown = [
        f"{value_of(name) or '(none)'} {'no data' if left is None else f'{left * 100:.0f} % left'}"
        for name, left in ranked[:worst]
    ]
    return f"{count} {noun}: worst " + ", ".join(shown) if shown else f"no {noun} yet"

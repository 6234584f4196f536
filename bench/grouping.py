"""Messages and acknowledgements per breach: what an on-call engineer gets from slo-bot, from slo-bot
before breaches (one message per alert key), and from Prometheus + Alertmanager running Sloth's rules.

Used by bench/alert_quality.py; pure arithmetic over transitions.

Alertmanager is modelled as documented, with its defaults and Sloth's advice: one alert group per SLO
(`group_by: [sloth_slo]`), `group_wait: 30s`, `group_interval: 5m`, `repeat_interval: 4h`,
`send_resolved: true`. A group notifies once when it starts (after group_wait), again at each
group_interval tick where the set of firing alerts changed, again every repeat_interval while it fires,
and once more when everything resolved. Its Slack receiver posts each notification as a new message
(it cannot update one); its PagerDuty receiver uses the group key as dedup key, so one incident (one
acknowledgement) per group episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

Transition = tuple[datetime, str, str]  # (at, key, "firing" | "resolved")

GROUP_WAIT = timedelta(seconds=30)
GROUP_INTERVAL = timedelta(minutes=5)
REPEAT_INTERVAL = timedelta(hours=4)


@dataclass(frozen=True)
class Load:
    """What one system puts in front of people for one scenario."""

    system: str
    episodes: int  # breaches, or alert-group episodes
    messages: int  # top-level Slack messages
    acknowledgements: int  # clicks needed to acknowledge everything


def slo_bot(transitions: Sequence[Transition], breaches: Sequence[int | None]) -> Load:
    """slo-bot now: one message and one acknowledgement per breach (`breaches`: each transition's
    breach number from `replay --json`, None for a transition outside any breach)."""
    numbers = {b for b in breaches if b is not None}
    return Load("slo-bot (breaches)", len(numbers), len(numbers), len(numbers))


def per_alert(transitions: Sequence[Transition]) -> Load:
    """slo-bot before breaches: a message, and an acknowledgement, per firing of each alert key."""
    firings = sum(1 for _, _, event in transitions if event == "firing")
    return Load("slo-bot per alert (before)", firings, firings, firings)


def alertmanager(transitions: Sequence[Transition], end: datetime) -> Load:
    """Prometheus + Alertmanager (group_by: [sloth_slo]) on the same transitions, until `end`."""
    changes = sorted(transitions)
    firing: set[str] = set()
    episodes = messages = 0
    i = 0
    while i < len(changes):
        at, key, event = changes[i]
        i += 1
        if event == "firing":
            firing.add(key)
        else:
            firing.discard(key)
        if len(firing) != 1 or event != "firing":
            continue
        # a group starts: notify after group_wait, then walk its group_interval ticks
        episodes += 1
        messages += 1
        tick = at + GROUP_WAIT
        while i < len(changes) and changes[i][0] <= tick:
            _apply(firing, changes[i])
            i += 1
        notified = frozenset(firing)
        last_sent = tick
        while firing and tick + GROUP_INTERVAL <= end:
            tick += GROUP_INTERVAL
            while i < len(changes) and changes[i][0] <= tick:
                _apply(firing, changes[i])
                i += 1
            if not firing:
                messages += 1  # the resolved notification
                break
            if frozenset(firing) != notified or tick - last_sent >= REPEAT_INTERVAL:
                messages += 1
                notified, last_sent = frozenset(firing), tick
    return Load("Prometheus + Alertmanager (Sloth rules)", episodes, messages, episodes)


def _apply(firing: set[str], change: Transition) -> None:
    _, key, event = change
    if event == "firing":
        firing.add(key)
    else:
        firing.discard(key)


def render(name: str, loads: Sequence[Load], breaches: int) -> str:
    """A table per scenario; "per breach" divides by slo-bot's breaches (the problems people have)."""

    def per(value: int) -> str:
        return "-" if not breaches else f"{value / breaches:.1f}"

    rows = [["system", "episodes", "messages", "per breach", "acks", "per breach"]]
    for load in loads:
        rows.append(
            [
                load.system,
                str(load.episodes),
                str(load.messages),
                per(load.messages),
                str(load.acknowledgements),
                per(load.acknowledgements),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    return f"{name}: messages and acknowledgements\n" + "\n".join("  " + line for line in lines)

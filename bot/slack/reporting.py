"""`/slo report [SERVICE] [7d|30d|quarter]`: the review of `slo-bot report` (`bot.review`), as Slack
mrkdwn lines. Read from the store after the command's ack, like every `/slo` answer."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlmodel import Session

from bot import review, review_render
from bot.mrkdwn import escape
from bot.slack import blocks
from bot.slack.deps import SlackDeps

MAX_SLOS = 40


def answer(deps: SlackDeps, args: Sequence[str], *, usage: str) -> dict[str, Any]:
    words = list(args)
    period = words.pop().lower() if words and words[-1].lower() in review.PERIODS else "7d"
    if len(words) > 1:
        return blocks.text_payload(f"One service at most, then the period.\nUsage: `{usage}`")
    service = words[0] if words else None
    with Session(deps.engine) as session:
        known = review.services(session)
        if service is not None and service not in known:
            close = difflib.get_close_matches(service, known, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
            return blocks.text_payload(
                f"No SLO belongs to a service called `{blocks.escape_typed(service)}`.{hint}\n"
                f"Usage: `{usage}`"
            )
        found = review.build(session, period=period, now=deps.clock(), service=service)
    title = f"*{escape(review_render.title(found))}*"
    span = f"{blocks.slack_time(found.start)} to {blocks.slack_time(found.end)}"
    # the least budget left first; a message holds a few dozen SLOs, the command line all of them
    worst = sorted(found.slos, key=lambda s: (s.budget_remaining is None, s.budget_remaining or 0.0))
    lines = review_render.slack_lines(replace(found, slos=tuple(worst[:MAX_SLOS])), blocks.slack_time, escape)
    if len(worst) > MAX_SLOS:
        lines.append(f"… and {len(worst) - MAX_SLOS} more: `slo-bot report` lists them all.")
    return blocks.text_payload("\n".join([title, span, *(lines or ["No SLO yet."])]))

"""Block Kit from domain data: alert messages, `/slo` answers, the App Home. Never sees a client.

Slack's limits are kept here: 50 blocks a message (100 in a view), 3,000 characters a section,
10 fields; every message also carries a plain-text `text` fallback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.messages import AlertMessage
from bot.mrkdwn import escape

MAX_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION = 3000
MAX_FIELD = 2000  # characters in one of a section's fields
PAGE_SIZE = 40
SILENCE_CHOICES = ("30m", "1h", "4h", "24h")
COLOURS = {"danger": "#d93f0b", "warning": "#e4a11b", "good": "#2eb67d"}

Block = dict[str, Any]
SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


def slack_time(at: datetime) -> str:
    """An instant each reader sees in their own time zone; UTC in clients that cannot."""
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"


def escape_typed(text: str) -> str:
    """What someone typed in a slash command, echoed back: Slack sends `&`, `<`, `>` escaped already but
    turns a typed @channel or #channel into `<!channel>`, `<#C…>`; shown as typed, never acted on."""
    return escape(text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


def slack_user(user: str) -> str:
    """A Slack user ID as a mention; a person an incident tool named ("Jane Doe (PagerDuty)") as text."""
    return f"<@{user}>" if SLACK_USER_ID.fullmatch(user) else escape(user)


def _text(text: str, kind: str = "mrkdwn", limit: int = MAX_SECTION) -> dict[str, Any]:
    return {"type": kind, "text": text[:limit]}


def _section(text: str) -> Block:
    return {"type": "section", "text": _text(text)}


def _button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {"type": "button", "text": _text(text, "plain_text"), "action_id": action_id}
    button["value"] = value
    if style:
        button["style"] = style
    return button


def alert_payload(
    message: AlertMessage,
    *,
    breach_id: int,
    active: bool,
    acknowledged: bool,
    silenced: bool,
    dashboard: str | None,
    declarable: bool = False,
    refund: bool | None = None,
) -> dict[str, Any]:
    """`text` + `attachments` for chat.postMessage / chat.update of one alert. `refund`: a resolved
    breach's button, *Refund (false positive)* (False) or *Undo refund* (True); None: neither."""
    blocks: list[Block] = [_section(f"*{message.title}*\n{message.status_line}")]
    fields = [_text(f"*{name}*\n{value}", limit=MAX_FIELD) for name, value in message.fields[:10]]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    blocks.append({"type": "context", "elements": [_text(message.meaning)]})
    elements: list[Block] = []
    value = str(breach_id)
    if active:
        if acknowledged:
            elements.append(_button("Unacknowledge", "alert_unack", value))
        else:
            elements.append(_button("Acknowledge", "alert_ack", value, "primary"))
        if silenced:
            elements.append(_button("Unsilence", "alert_unsilence", value))
        else:
            elements.append(
                {
                    "type": "static_select",
                    "action_id": "alert_silence",
                    "placeholder": _text("Silence…", "plain_text"),
                    "options": [
                        {"text": _text(f"Silence {d}", "plain_text"), "value": f"{breach_id}:{d}"}
                        for d in SILENCE_CHOICES
                    ],
                }
            )
        if declarable:
            elements.append(_button("Declare incident", "alert_declare", value, "danger"))
    elif refund is not None:
        elements.append(
            _button("Undo refund", "alert_unrefund", value)
            if refund
            else _button("Refund (false positive)", "alert_refund", value)
        )
    if dashboard:
        elements.append(
            {
                "type": "button",
                "text": _text("View SLO", "plain_text"),
                "action_id": "view_slo",
                "url": dashboard,
            }
        )
    if elements:
        blocks.append({"type": "actions", "block_id": f"alert-{breach_id}", "elements": elements})
    fallback = f"{message.title}. {message.status_line}. {message.meaning}"
    return {
        "text": fallback,
        "attachments": [{"color": COLOURS[message.colour], "blocks": blocks}],
    }


def note_payload(text: str) -> dict[str, Any]:
    return {"text": text, "blocks": [_section(text)]}


@dataclass(frozen=True)
class StatusLine:
    """One SLO in `/slo status`, `/slo list` and the App Home."""

    name: str
    service: str
    objective: float | None
    remaining_ratio: float | None
    burn: float | None  # over 1h
    state: str
    alerts: Sequence[str] = field(default=())
    silenced_until: datetime | None = None
    failing_since: datetime | None = None  # its evaluations fail: since when, and why
    failure: str | None = None
    group: str | None = None  # a member of a grouped SLO: its definition's name
    group_by: tuple[str, ...] = ()  # and the labels of that group
    folded: str | None = None  # a grouped SLO folded into one line: its members in a few words

    def render(self) -> str:
        icon = {"ok": "🟢", "burning": "🔥", "exhausted": "🔴"}.get(self.state, "⚪")
        left = "no data" if self.remaining_ratio is None else f"{self.remaining_ratio * 100:.1f} % left"
        burn = "" if self.burn is None else f" · burn {self.burn:.1f}x (1h)"
        if self.folded is not None:
            left, burn = escape(self.folded), ""
        alerts = f" · *{', '.join(self.alerts)}*" if self.alerts else ""
        silenced = f" · 🔕 until {slack_time(self.silenced_until)}" if self.silenced_until else ""
        failing = ""
        if self.failing_since is not None:
            failing = f"\n    ⚠️ {not_evaluated(self.failing_since, self.failure)}"
        return f"{icon} `{self.name}` ({self.service}) — {left}{burn}{alerts}{silenced}{failing}"


def not_evaluated(since: datetime, why: str | None, limit: int = 300) -> str:
    """ "not evaluated since HH:MM: why" for an SLO whose evaluations fail; `why` may quote a server."""
    reason = why or "unknown error"
    if len(reason) > limit:  # cut before escaping, never inside an escape
        reason = reason[: limit - 1] + "…"
    return f"not evaluated since {slack_time(since)}: {escape(reason)}"


def _chunks(lines: Sequence[str], limit: int = MAX_SECTION) -> list[str]:
    """Join lines into section texts no longer than `limit`."""
    chunks: list[str] = []
    current = ""
    for line in lines:
        line = line[:limit]
        if current and len(current) + 1 + len(line) > limit:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks


def status_payload(lines: Sequence[StatusLine], *, page: int, query: str, title: str) -> dict[str, Any]:
    """A page of SLOs, worst budget first, with Previous / Next buttons when there are more."""
    pages = max(1, -(-len(lines) // PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = lines[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    header = f"*{title}* — {len(lines)} SLO(s)" + (f", page {page} of {pages}" if pages > 1 else "")
    blocks: list[Block] = [_section(header)]
    blocks += [_section(c) for c in _chunks([line.render() for line in shown])] or [
        _section("No SLO matches.")
    ]
    buttons = []
    if page > 1:
        buttons.append(_button("◀ Previous", "status_page", json.dumps({"q": query, "page": page - 1})))
    if page < pages:
        buttons.append(_button("Next ▶", "status_page", json.dumps({"q": query, "page": page + 1})))
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    text_lines = [f"{line.name}: {line.state}" for line in shown]
    return {"text": f"{header.replace('*', '')}\n" + "\n".join(text_lines), "blocks": blocks[:MAX_BLOCKS]}


def detail_payload(title: str, fields: Sequence[tuple[str, str]], extra: Sequence[str]) -> dict[str, Any]:
    """`/slo show`: a header, fields two by two, then free lines (alerts, links)."""
    blocks: list[Block] = [_section(f"*{title}*")]
    pairs = [_text(f"*{name}*\n{value}", limit=MAX_FIELD) for name, value in fields]
    for i in range(0, len(pairs), 10):
        blocks.append({"type": "section", "fields": pairs[i : i + 10]})
    blocks += [_section(c) for c in _chunks(extra)]
    text = title + "\n" + "\n".join(f"{n}: {v}" for n, v in fields)
    return {"text": text, "blocks": blocks[:MAX_BLOCKS]}


MAX_HOME_WINDOWS = 10  # one section: 3,000 characters hold ten window lines


def text_payload(text: str) -> dict[str, Any]:
    return {"text": text, "blocks": [_section(c) for c in _chunks(text.split("\n"))][:MAX_BLOCKS]}


def home_view(lines: Sequence[StatusLine], scope: str, maintenance: Sequence[str] = ()) -> dict[str, Any]:
    """`maintenance`: lines of the windows under way or next, shown above the SLOs."""
    blocks: list[Block] = [
        {"type": "header", "text": _text("SLO error budgets", "plain_text")},
        {"type": "context", "elements": [_text(scope)]},
    ]
    if maintenance:
        blocks.append(_section("\n".join(maintenance[:MAX_HOME_WINDOWS])))
    budget = MAX_VIEW_BLOCKS - len(blocks) - 1
    chunks = _chunks([line.render() for line in lines])
    blocks += [_section(c) for c in chunks[:budget]] or [_section("No SLOs yet.")]
    if len(chunks) > budget:
        blocks.append({"type": "context", "elements": [_text("More SLOs: `/slo status`.")]})
    return {"type": "home", "blocks": blocks}

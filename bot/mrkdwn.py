"""The markup breach messages and notes are written in: Slack's mrkdwn (the terminal shows it as is).

Text from outside (an incident tool's names and notes, an error a server sent) is escaped before it
goes into a note, wherever the note comes from.
"""

from __future__ import annotations


def escape(text: str) -> str:
    """Text from outside as mrkdwn shows it literally: `<!channel>` must not ping a channel,
    `<url|text>` must not become a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

"""An SLO's page (bot/slopage.py's `Page`) as HTML: Jinja2 with autoescape, the chart inlined as a
data URI (one signed request fetches everything), no JavaScript; and the answer to `GET /slos/NAME`
(the signature checked first)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime

import jinja2
from sqlalchemy import Engine
from sqlmodel import Session

from bot.links import Links, verify
from bot.messages import utc_time
from bot.slopage import Page, load_page

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("bot", "templates"),
    autoescape=True,  # SLO names, services, reasons and a server's error text are data, never markup
    undefined=jinja2.StrictUndefined,
)
REFUSED = (
    "Link refused",
    "This link is not valid: it has expired, was changed, or was never made by slo-bot. "
    "Open the SLO again from its Slack message or /slo show for a fresh link.",
)
NOT_FOUND = ("No such SLO", "The SLO this link was made for is no longer in slo-bot's catalogue.")


def render_page(page: Page, now: datetime, expires: datetime) -> str:
    chart_uri = ""
    if page.chart is not None:
        chart_uri = "data:image/png;base64," + base64.b64encode(page.chart.png).decode("ascii")
    template = _TEMPLATES.get_template("slo.html.j2")
    return template.render(page=page, chart_uri=chart_uri, now=now, expires=expires, time=utc_time)


def render_message(title: str, text: str) -> str:
    """The page of a refused or unknown link: says why, nothing about the SLO."""
    return _TEMPLATES.get_template("slo-refused.html.j2").render(title=title, text=text)


# (status, HTML) of `GET /slos/NAME?exp=…&sig=…`
PageAnswer = tuple[int, str]


def handler(engine: Engine, links: Links, clock: Callable[[], datetime]) -> Callable[..., PageAnswer]:
    """The page's answers: 403 for a missing, expired or changed signature (before the store is read,
    so a refusal says nothing of whether the SLO exists), 404 for an SLO gone since the link was
    made, the page otherwise. Blocking (the store, the chart): the web app runs it in a thread."""

    def answer(name: str, exp: str | None, sig: str | None) -> PageAnswer:
        now = clock()
        if not verify(name, exp, sig, links.key, now):
            return 403, render_message(*REFUSED)
        assert exp is not None
        with Session(engine) as session:
            page = load_page(session, name, now)
        if page is None:
            return 404, render_message(*NOT_FOUND)
        return 200, render_page(page, now, datetime.fromtimestamp(int(exp), UTC))

    return answer

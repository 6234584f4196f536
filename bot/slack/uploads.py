"""Burn-down charts to Slack: queued in the outbox, drawn when delivered, uploaded by Slack's current
file flow (`files.getUploadURLExternal`, the bytes POSTed to the URL it gives, then
`files.completeUploadExternal` into the channel or the breach's thread; `files.upload` is retired).

Drawing happens in the delivery worker, never in a request handler: a chart takes a few hundred
milliseconds, and a Slack answer never waits for one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot.burndown import load_burn_down
from bot.catalogue.stored import slo_of
from bot.store import outbox
from bot.store import slack as slack_store
from bot.store.models import OutboxRecord, SLORecord

log = logging.getLogger(__name__)
CHART = "chart"
ALT_TEXT_LIMIT = 1000  # characters Slack takes as a file's alt text (`alt_txt_too_large`)
FIND_LIMIT = 200  # recent messages searched for an upload whose answer never came


class UploadFailed(Exception):
    """The upload URL refused the bytes for good (a 4xx): retrying cannot help."""


class Unsure(Exception):
    """The upload URL could not be reached or failed (network, 5xx): try again later."""


def queue_chart(
    session: Session,
    *,
    slo_id: int,
    channel: str,
    now: datetime,
    breach_id: int | None = None,
    comment: str = "",
    response_url: str | None = None,
) -> None:
    """A chart of the SLO as of its delivery: into `channel`, or with `breach_id` into that breach's
    thread there (after its message, which the outbox sends first). `response_url`: where to tell
    the person who asked for it should Slack refuse it."""
    payload: dict[str, Any] = {"slo_id": slo_id, "comment": comment}
    if response_url:
        payload["response_url"] = response_url
    outbox.enqueue(
        session=session, kind=CHART, breach_id=breach_id, channel=channel, payload=payload, now=now
    )


Call = Callable[..., Any]  # `SlackDelivery._call`: Slack's retryable failures become its `Retry`


class ChartUploads:
    """Delivers `chart` outbox entries for `bot.slack.delivery.SlackDelivery`."""

    def __init__(self, client: WebClient, http: httpx.Client, call: Call, post: str, find: str) -> None:
        self.client = client
        self.http = http  # for the upload URL, which is not a Web API method
        self.call = call
        self.post, self.find = post, find  # the kinds of call `call` tells apart

    def deliver(self, session: Session, entry: OutboxRecord, now: datetime) -> None:
        payload = json.loads(entry.payload)
        if "digest" in payload:  # a weekly digest's chart of several SLOs, into its channel
            if entry.channel is None:
                return
            title = str(payload.get("title") or "Weekly digest")
            self._share(
                session, entry, payload, entry.channel, None, lambda: draw_week(session, payload), title
            )
            return
        record = session.get(SLORecord, int(payload.get("slo_id") or 0))
        if record is None or record.id is None or entry.channel is None:
            entry.last_error = "skipped: the SLO was deleted"
            return
        channel, thread_ts = entry.channel, None
        if entry.breach_id is not None:
            message = slack_store.message_for(
                session=session, breach_id=entry.breach_id, channel=entry.channel
            )
            if message.ts is None:
                entry.last_error = "skipped: the breach's message was never posted"
                return
            if slack_store.active_silence(session=session, slo_id=record.id, now=now) is not None:
                entry.last_error = f"skipped: {record.name} was silenced"
                return
            channel, thread_ts = message.posted_channel or message.channel, message.ts
        draw = lambda: _draw(session, record, now)  # noqa: E731
        self._share(
            session, entry, payload, channel, thread_ts, draw, f"{record.name}: error budget burn-down"
        )

    def _share(
        self,
        session: Session,
        entry: OutboxRecord,
        payload: dict[str, Any],
        channel: str,
        thread_ts: str | None,
        draw: Callable[[], Any],
        title: str,
    ) -> None:
        file_id = payload.get("file_id")
        if entry.in_flight and file_id and self._shared(channel, thread_ts, str(file_id)):
            return  # the last attempt went through; only its answer was lost
        chart = draw()
        try:
            file_id = self._upload(chart)
            payload["file_id"] = file_id
            entry.payload = json.dumps(payload)
            entry.in_flight = True  # from here on Slack may have shared it: look before sharing again
            session.add(entry)
            session.commit()
            self.call(
                lambda: self.client.files_completeUploadExternal(
                    files=[{"id": file_id, "title": title}],
                    channel_id=channel,
                    thread_ts=thread_ts,
                    initial_comment=payload.get("comment") or None,
                ),
                self.post,
            )
        except (SlackApiError, UploadFailed) as err:
            self._tell(payload.get("response_url"), channel, err)
            raise

    def _upload(self, chart: Any) -> str:
        got = self.call(
            lambda: self.client.files_getUploadURLExternal(
                filename=chart.filename, length=len(chart.png), alt_txt=chart.alt_text[:ALT_TEXT_LIMIT]
            )
        )
        try:
            answer = self.http.post(str(got["upload_url"]), content=chart.png)
        except httpx.HTTPError as err:  # the retry asks for a new URL: nothing was shared yet
            raise Unsure(f"upload URL unreachable: {err}") from err
        if answer.status_code >= 500 or answer.status_code == 429:
            raise Unsure(f"upload URL answered {answer.status_code}")
        if answer.status_code != 200:
            raise UploadFailed(f"upload URL refused the file: HTTP {answer.status_code}")
        return str(got["file_id"])

    def _shared(self, channel: str, thread_ts: str | None, file_id: str) -> bool:
        """Whether a message with the file is in the channel (or the thread) already."""
        if thread_ts is None:
            page = self.call(
                lambda: self.client.conversations_history(channel=channel, limit=FIND_LIMIT), self.find
            )
        else:
            page = self.call(
                lambda: self.client.conversations_replies(channel=channel, ts=thread_ts, limit=FIND_LIMIT),
                self.find,
            )
        return any(f.get("id") == file_id for m in page.get("messages") or [] for f in m.get("files") or [])

    def _tell(self, response_url: Any, channel: str, err: Exception) -> None:
        """Say why a chart someone asked for did not come (only to them); best effort."""
        if not response_url:
            return
        reason = err.response.get("error") if isinstance(err, SlackApiError) else str(err)
        text = (
            f"The burn-down chart could not be posted in <#{channel}> ({reason}). "
            "Invite slo-bot to the channel (`/invite @slo-bot`), or ask in a channel it is in."
        )
        try:
            self.http.post(str(response_url), json={"response_type": "ephemeral", "text": text})
        except httpx.HTTPError:
            log.warning("could not tell the user why a chart was not posted", exc_info=True)


def _draw(session: Session, record: SLORecord, now: datetime) -> Any:
    from bot import charts  # matplotlib loads with the first chart, not with the bot

    assert record.id is not None
    return charts.render(load_burn_down(session, slo_of(record), record.id, now))


def draw_week(session: Session, payload: dict[str, Any]) -> Any:
    """The digest's chart of its SLOs (`digest`: their ids, the least budget left first) over its week."""
    from bot import weekchart

    start, end = (datetime.fromisoformat(str(payload[k])) for k in ("start", "end"))
    drawn = []
    for slo_id in payload["digest"]:
        record = session.get(SLORecord, int(slo_id))
        if record is None or record.id is None:
            continue
        try:
            drawn.append(load_burn_down(session, slo_of(record), record.id, end))
        except Exception:  # a definition that no longer builds: the others are still drawn
            log.warning("no digest line for %s", record.name, exc_info=True)
    return weekchart.render_week(drawn, start, end, str(payload.get("title") or "Weekly digest"))

"""Delivery of the outbox to Slack: in order per alert, retried until Slack takes it, never twice.

A 429 waits as long as Retry-After says; a 5xx or a network error backs off exponentially. Before a
post, the entry is marked in flight; after a crash, a post still in flight is looked up in the
channel (by its message metadata) before it is sent again. An error Slack will always give
(`channel_not_found`, `invalid_auth` …) marks the entry failed, logged and counted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlmodel import Session

from bot import breaches
from bot.alerting import FIRING
from bot.annotations import dashboard_of
from bot.catalogue.stored import slo_of
from bot.conversation import Conversation
from bot.episodes import breach_facts
from bot.links import Links
from bot.messages import breach_message
from bot.metrics import METRICS
from bot.routing import all_incident_targets
from bot.runner import utc_now
from bot.slack import blocks
from bot.slack.channels import ChannelDirectory
from bot.slack.uploads import CHART, ChartUploads, Unsure, UploadFailed
from bot.store import breaches as breach_store
from bot.store import incidents as incident_store
from bot.store import repo
from bot.store import slack as slack_store
from bot.store.models import BreachRecord, OutboxRecord, SlackMessageRecord, SLORecord
from bot.worker import OutboxWorker

log = logging.getLogger(__name__)
METADATA_TYPE = "slo_bot_message"
MAX_BACKOFF = timedelta(minutes=5)
SLACK_KINDS = ("alert_message", "thread_note", "channel_post", CHART)  # channel_post: a digest


# what a Slack call was, for what its failure means (see `SlackDelivery._call`)
POST, FIND, OTHER = "post", "find", "other"
FIND_PAGES = 5  # pages of history searched for a lost post


class Retry(Exception):
    """Slack could not take it now. `delay` None: back off by the number of attempts."""

    def __init__(self, delay: timedelta | None, reason: str, in_flight: bool = False) -> None:
        super().__init__(reason)
        self.delay = delay
        self.in_flight = in_flight


class Defer(Exception):
    """Not yet: the SLO is silenced, or the thread's parent message is not posted yet."""

    def __init__(self, until: datetime, reason: str) -> None:
        super().__init__(reason)
        self.until = until


class SlackDelivery(OutboxWorker):
    name = "slack"
    kinds = SLACK_KINDS

    def __init__(
        self,
        engine: Engine,
        client: WebClient,
        clock: Callable[[], datetime] = utc_now,
        channels: ChannelDirectory | None = None,
        conversation: Conversation | None = None,
        http: httpx.Client | None = None,
        links: Links | None = None,
    ) -> None:
        # after a 429 (`paused_until`), nothing goes to Slack before its Retry-After has passed: its
        # limits are per method and workspace (chat.postMessage also per channel), not per message
        super().__init__(engine, clock)
        self.client = client
        self.channels = channels
        self.conversation = conversation  # what the other destinations add to a message (incidents)
        self.charts = ChartUploads(client, http or httpx.Client(timeout=30.0), self._call, POST, FIND)
        self.links = links  # the SLO page's signed links, for an SLO without a dashboard of its own

    def stop(self) -> None:
        super().stop()
        self.charts.http.close()

    def paused(self, destination: str | None) -> bool:
        # a 429 holds back every call to Slack until its Retry-After has passed
        return self.paused_until is not None and self.clock() < self.paused_until

    # --- one entry ---------------------------------------------------------------------------

    def _deliver(self, entry_id: int) -> bool:
        with Session(self.engine, expire_on_commit=False) as session:
            entry = session.get(OutboxRecord, entry_id)
            if entry is None or entry.status != "pending":
                return True
            now = self.clock()
            try:
                if entry.kind == "alert_message":
                    self._alert_message(session, entry, now)
                elif entry.kind == "thread_note":
                    self._thread_note(session, entry, now)
                elif entry.kind == "channel_post":
                    self._channel_post(session, entry)
                elif entry.kind == CHART:
                    try:
                        self.charts.deliver(session, entry, now)
                    except Unsure as err:
                        raise Retry(None, str(err)) from err
                else:
                    raise ValueError(f"unknown outbox kind {entry.kind!r}")
            except Defer as wait:
                entry.next_attempt_at = wait.until
                entry.last_error = str(wait)
                session.add(entry)
                session.commit()
                return False
            except Retry as retry:
                entry.attempts += 1
                entry.in_flight = retry.in_flight
                backoff = timedelta(seconds=2 ** min(entry.attempts, 9))
                delay = retry.delay or min(MAX_BACKOFF, backoff)
                entry.next_attempt_at = now + delay
                if retry.delay is not None:
                    self.paused_until = now + retry.delay
                entry.last_error = str(retry)
                session.add(entry)
                session.commit()
                METRICS.slack_failed("retry")
                log.warning("slack: %s (entry %s, retry in %s)", retry, entry.id, delay)
                return False
            except (SlackApiError, UploadFailed) as err:
                entry.status = "failed"
                entry.in_flight = False
                entry.last_error = str(
                    (err.response.get("error") if isinstance(err, SlackApiError) else None) or err
                )
                session.add(entry)
                session.commit()
                METRICS.slack_failed("failed")
                log.error("slack refused entry %s for good: %s", entry.id, entry.last_error)
                return True
            except Exception as err:  # a bug, a definition that no longer builds: not the others' problem
                log.exception("delivering outbox entry %s failed", entry_id)
                session.rollback()
                self._back_off(session, entry_id, now, f"{err.__class__.__name__}: {err}")
                return False
            entry.status = "done"
            entry.in_flight = False
            entry.done_at = now
            session.add(entry)
            session.commit()
            return True

    def _back_off(self, session: Session, entry_id: int, now: datetime, reason: str) -> None:
        entry = session.get(OutboxRecord, entry_id)
        if entry is None:
            return
        entry.attempts += 1
        entry.next_attempt_at = now + min(MAX_BACKOFF, timedelta(seconds=2 ** min(entry.attempts, 9)))
        entry.last_error = reason
        session.add(entry)
        session.commit()
        METRICS.slack_failed("error")

    def _alert_message(self, session: Session, entry: OutboxRecord, now: datetime) -> None:
        found = breach_store.with_slo(session, entry.breach_id or 0)
        if found is None or entry.channel is None:
            return  # the SLO was deleted meanwhile
        breach, record = found
        message = slack_store.message_for(session=session, breach_id=breach.id or 0, channel=entry.channel)
        payload = self._render(session, breach, record, now)
        if message.ts is None:
            silence = slack_store.active_silence(session=session, slo_id=record.id or 0, now=now)
            if silence is not None:
                raise Defer(repo.utc(silence.until) or now, f"{record.name} is silenced")
            fired = repo.utc(breach.opened_at)
            if (
                breach.state != FIRING
                and fired
                and slack_store.silenced_at(session=session, slo_id=record.id or 0, at=fired)
            ):
                return  # fired and resolved while silenced: nothing to announce
            self._post(session, entry, message, payload, thread_ts=None)
            return
        ts = message.ts
        self._call(
            lambda: self.client.chat_update(
                channel=message.posted_channel or message.channel, ts=ts, **payload
            )
        )

    def _thread_note(self, session: Session, entry: OutboxRecord, now: datetime) -> None:
        found = breach_store.with_slo(session, entry.breach_id or 0)
        if found is None or entry.channel is None:
            return
        breach, record = found
        message = slack_store.message_for(session=session, breach_id=breach.id or 0, channel=entry.channel)
        if message.ts is None:
            # the breach's post came earlier in this channel's order: it failed for good, or there
            # was nothing to announce (opened and resolved while silenced). No thread to write in.
            entry.last_error = "skipped: the breach's message was never posted"
            return
        payload = json.loads(entry.payload)
        if not payload.get("by"):  # slo-bot's own re-evaluation notes keep quiet while silenced
            silence = slack_store.active_silence(session=session, slo_id=record.id or 0, now=now)
            if silence is not None:
                entry.last_error = f"skipped: {record.name} was silenced"
                return
        text = payload.get("text", "")
        self._post(session, entry, message, blocks.note_payload(text), thread_ts=message.ts)

    def _channel_post(self, session: Session, entry: OutboxRecord) -> None:
        """A message of its own in a channel (a weekly digest), posted once: a post whose answer
        never came is looked for in the channel before it is sent again."""
        if entry.channel is None:
            return
        channel = self.channels.id_of(entry.channel) if self.channels else entry.channel
        if channel is None:
            entry.last_error = f"skipped: no channel is called {entry.channel}"
            return
        if entry.in_flight and self._find_posted(channel, entry, None) is not None:
            return
        entry.in_flight = True
        session.add(entry)
        session.commit()
        metadata = {"event_type": METADATA_TYPE, "event_payload": {"outbox_id": entry.id}}
        payload = json.loads(entry.payload)
        self._call(lambda: self.client.chat_postMessage(channel=channel, metadata=metadata, **payload), POST)

    def _post(
        self,
        session: Session,
        entry: OutboxRecord,
        message: SlackMessageRecord,
        payload: dict[str, Any],
        thread_ts: str | None,
    ) -> None:
        channel = message.posted_channel or message.channel
        if entry.in_flight:
            # a channel routed by name is searched by its ID; a name no channel has took no post
            found_id = self.channels.id_of(channel) if self.channels else channel
            found = self._find_posted(found_id, entry, thread_ts) if found_id else None
            if found is not None:
                if thread_ts is None:
                    message.ts, message.posted_channel = found
                    session.add(message)
                return
        entry.in_flight = True
        session.add(entry)
        session.commit()
        metadata = {"event_type": METADATA_TYPE, "event_payload": {"outbox_id": entry.id}}
        response = self._call(
            lambda: self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, metadata=metadata, **payload
            ),
            POST,
        )
        if thread_ts is None:
            message.ts = str(response["ts"])
            message.posted_channel = str(response.get("channel") or channel)
            session.add(message)

    def _find_posted(
        self, channel: str, entry: OutboxRecord, thread_ts: str | None
    ) -> tuple[str, str] | None:
        """After a post whose answer never came (a timeout, a crash): did Slack get it? Look for
        our metadata among the channel's messages since the entry was written."""
        created = repo.utc(entry.created_at) or self.clock()
        oldest = f"{created.timestamp() - 60:.6f}"
        cursor: str | None = None
        for _ in range(FIND_PAGES):
            page = self._call(partial(self._messages, channel, thread_ts, oldest, cursor), FIND)
            for item in page.get("messages") or []:
                meta = item.get("metadata") or {}
                if (
                    meta.get("event_type") == METADATA_TYPE
                    and (meta.get("event_payload") or {}).get("outbox_id") == entry.id
                ):
                    return str(item["ts"]), channel
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    def _messages(self, channel: str, thread_ts: str | None, oldest: str, cursor: str | None) -> Any:
        """A page of the channel's messages since `oldest`, or of the thread, with metadata."""
        if thread_ts is None:
            return self.client.conversations_history(
                channel=channel, oldest=oldest, limit=200, cursor=cursor, include_all_metadata=True
            )
        return self.client.conversations_replies(
            channel=channel, ts=thread_ts, limit=200, cursor=cursor, include_all_metadata=True
        )

    def _call(self, request: Callable[[], Any], kind: str = OTHER) -> Any:
        """Slack's answer; a failure worth retrying becomes `Retry`, saying whether a post may
        have gone through (then the next attempt looks for it before posting again)."""
        try:
            return request()
        except SlackApiError as err:
            status = err.response.status_code
            if status == 429:
                retry_after = int(err.response.headers.get("Retry-After", "1") or 1)
                # refused, nothing posted; but a search for a lost post is still owed
                raise Retry(
                    timedelta(seconds=max(1, retry_after)), "rate-limited by Slack", in_flight=kind == FIND
                ) from err
            if status >= 500:  # Slack may have posted it before failing
                raise Retry(None, f"Slack answered {status}", in_flight=kind in (POST, FIND)) from err
            raise
        except (OSError, TimeoutError) as err:  # connection refused, reset, timed out
            raise Retry(None, f"Slack unreachable: {err}", in_flight=kind in (POST, FIND)) from err

    def _render(
        self, session: Session, breach: BreachRecord, record: SLORecord, now: datetime
    ) -> dict[str, Any]:
        slo = slo_of(record)
        incidents = incident_store.incidents_of(session=session, breach_id=breach.id or 0)
        opened = {i.target for i in incidents}
        declarable = breach.kind == breaches.BURN and any(
            t.name not in opened for t in all_incident_targets(slo)
        )
        snapshot = repo.latest_snapshot(session, record.id or 0)
        silence = slack_store.active_silence(session=session, slo_id=record.id or 0, now=now)
        lines = tuple(self.conversation.lines(session, breach)) if self.conversation else ()
        status = repo.status_of(snapshot)
        facts = breach_facts(session, slo, breach, now, incidents=lines, status=status)
        if silence is not None:
            facts = replace(facts, silenced_until=repo.utc(silence.until), silenced_by=silence.created_by)
        words = breach_message(slo, facts, status, time=blocks.slack_time, user=blocks.slack_user)
        page = self.links.page(slo.name, now) if self.links is not None else None
        return blocks.alert_payload(
            words,
            breach_id=breach.id or 0,
            active=breach.state == FIRING,
            acknowledged=bool(breach.acknowledged_by),
            silenced=silence is not None,
            # each update of the message signs the link afresh: an open breach's link does not expire
            dashboard=dashboard_of(slo.annotations) or page,
            declarable=declarable and breach.state == FIRING,
            refund=None
            if breach.state == FIRING or breach.kind != breaches.BURN
            else facts.refunded_by is not None,
        )

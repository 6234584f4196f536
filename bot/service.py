"""`slo-bot run`: the scheduler plus, by the credentials present, Slack over HTTP or Socket Mode,
or console mode. The composition root: builds every long-lived part once (the destinations breaches
are shown in, the deliveries, the web app) and stops them in order."""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from slack_bolt import App
from slack_sdk import WebClient
from sqlalchemy import Engine
from sqlmodel import Session

from bot import logs
from bot.console import ChartFiles, ConsoleDestination
from bot.conversation import Conversation, Destination
from bot.durations import format_duration
from bot.fleet import gone, replica_name
from bot.health import check
from bot.incidents.delivery import IncidentDelivery
from bot.incidents.inbound import Webhooks
from bot.incidents.sync import IncidentDestination
from bot.runner import Runner
from bot.scheduler import start_scheduler
from bot.settings import Settings
from bot.slack import digests, register
from bot.slack.channels import ChannelDirectory
from bot.slack.delivery import SlackDelivery
from bot.slack.deps import SlackDeps
from bot.slack.notify import SlackDestination, queue_unannounced
from bot.slack.permissions import Responders
from bot.sources.pool import SourcePool
from bot.store import leases
from bot.web import Health, create_web_app

log = logging.getLogger(__name__)


def build_slack(
    settings: Settings,
    engine: Engine,
    conversation: Conversation,
    wake_incidents: Callable[[], None] | None = None,
) -> tuple[App, SlackDelivery]:
    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10)
    # The outbox retries by itself and checks whether a lost post went through; the SDK's own retry
    # of a dropped connection would post the message a second time.
    posting = WebClient(
        token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10, retry_handlers=[]
    )
    channels = ChannelDirectory(client)
    delivery = SlackDelivery(
        engine, posting, channels=channels, conversation=conversation, links=settings.links
    )
    _quiet_token_notice()
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret or "socket-mode-needs-no-secret",
        # False: the HTTP answer (or the Socket Mode acknowledgement) leaves as soon as a listener
        # acks, and the listener goes on in Bolt's thread pool. True would hold the ack until the
        # listener and its Slack and database calls are done, past Slack's 3 s when Slack is slow;
        # only a deployment that stops when the response is sent (FaaS) needs it, and this is a
        # long-running server in both its modes.
        process_before_response=False,
        token_verification_enabled=False,  # a Slack outage at start must not stop the bot
    )
    deps = SlackDeps(
        engine=engine,
        clock=lambda: datetime.now(UTC),
        responders=Responders(client, settings.responders, channels=channels),
        conversation=conversation,
        wake_delivery=_both(delivery.wake, wake_incidents) if wake_incidents else delivery.wake,
        default_channel=settings.default_channel,
        links=settings.links,
    )
    register(app, deps)
    return app, delivery


class _NoTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN by itself and then warns, at every start, that the client given to
    it wins over that token: the client holds the same token, so the warning says nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in str(record.msg)


def _quiet_token_notice() -> None:
    bolt = logging.getLogger("slack_bolt.App")  # the logger App() warns on (no logger given to it)
    if not any(isinstance(f, _NoTokenNotice) for f in bolt.filters):
        bolt.addFilter(_NoTokenNotice())


def run(settings: Settings, engine: Engine, port: int) -> int:
    mode = settings.mode
    interval = timedelta(seconds=settings.eval_interval_s)
    sources = SourcePool(max_connections=settings.concurrency)
    bolt_app: App | None = None
    delivery: SlackDelivery | None = None
    # where breaches are shown: Slack (or the terminal, in console mode) and the incident tools;
    # a new destination is a module and a line here
    shown: Destination = (
        SlackDestination(settings.default_channel)
        if mode != "console"
        else ConsoleDestination(charts=ChartFiles(Path(settings.chart_dir)))
    )
    conversation = Conversation([shown, IncidentDestination()])
    client = incident_client()
    incidents = IncidentDelivery(engine, client, conversation=conversation)
    wake: Callable[[], None] = incidents.wake
    if mode != "console":
        bolt_app, delivery = build_slack(settings, engine, conversation, wake_incidents=incidents.wake)
        incidents.on_slack = delivery.wake
        wake = _both(delivery.wake, incidents.wake)
    runner = Runner(
        engine,
        sources,
        concurrency=settings.concurrency,
        hooks=[conversation],
        after_tick=wake,
        interval=interval,
        replica=replica_name(),
        freeze_after_first_tick=True,
    )
    deliver = digests.printer(sys.stdout, Path(settings.chart_dir)) if mode == "console" else digests.queue

    def after_tick() -> None:
        try:  # weekly digests: one replica sends each, whichever ticks first after it is due
            digests.send_due(engine, runner.clock(), runner.replica, settings.default_channel, deliver)
        except Exception:  # the evaluations are stored; a digest is tried again next tick
            log.exception("sending the weekly digests failed")
        wake()

    runner.after_tick = after_tick
    webhooks = Webhooks(
        engine,
        clock=lambda: datetime.now(UTC),
        conversation=conversation,
        pagerduty_secret=settings.pagerduty_webhook_secret,
        opsgenie_token=settings.opsgenie_webhook_token,
        on_change=wake,
    )
    with Session(engine) as session:
        # a killed process's leases and claims go now, not when they expire (SQLite: whatever is
        # held, this process holding the database alone)
        left = gone(
            leases.holders(session=session), runner.replica, everyone_else=engine.dialect.name == "sqlite"
        )
        freed = sum(leases.release(session=session, holder=name) for name in sorted(left))
        session.commit()
    if freed:
        log.info(
            "freed %d lease(s) and outbox claim(s) of stopped processes: %s", freed, ", ".join(sorted(left))
        )
    if delivery is not None:
        with Session(engine) as session:
            queue_unannounced(session, settings.default_channel, datetime.now(UTC))
            session.commit()
    # the program's own objects (modules, classes: about 90,000), loaded by now, stay for good: kept
    # out of the garbage collector's full passes, those cost a few ms, not 40 (Python's own, and the
    # one after each chart drawn, `bot.charts.drawn`); what start-up left over goes first, not frozen
    gc.collect()
    gc.freeze()
    scheduler = start_scheduler(runner.tick, interval)
    incidents.start()
    if delivery is not None:
        delivery.start()
    socket_handler: Any = None
    # a stop signal from here on (before the web server has its own handlers, e.g. at once after
    # "slo-bot running" is printed) is remembered and stops the server as soon as it serves: it was
    # swallowed, and the process ran on until killed
    stopping = threading.Event()
    server: uvicorn.Server | None = None

    def stop() -> None:
        stopping.set()
        if server is not None:
            server.should_exit = True

    _on_stop_signals(stop)
    try:
        listening = settings.pagerduty_webhook_secret or settings.opsgenie_webhook_token
        if mode == "console":  # still served: the Docker HEALTHCHECK and scrapers need /healthz, /metrics
            served = "/healthz, /metrics and incident tool webhooks" if listening else "/healthz and /metrics"
            logs.announce(
                f"slo-bot running in console mode (no SLACK_BOT_TOKEN): evaluating every "
                f"{format_duration(interval)}; breaches print here; {served} on {settings.host}:{port}. "
                "Ctrl-C stops."
            )
        if mode == "socket":
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            assert bolt_app is not None
            socket_handler = SocketModeHandler(bolt_app, settings.slack_app_token)
            socket_handler.connect()
        web = create_web_app(
            bolt_app if mode == "http" else None,
            _health(engine, scheduler, runner, interval),
            webhooks,
            slo_page=_slo_page(engine, settings),
        )
        if mode != "console":
            logs.announce(
                f"slo-bot running in {'HTTP' if mode == 'http' else 'Socket Mode'} mode on "
                f"{settings.host}:{port}; evaluating every {format_duration(interval)}."
            )
        config = uvicorn.Config(
            web,
            host=settings.host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            log_config=None,  # its lines go through bot.logs like every other (JSON when asked)
        )
        # uvicorn stops on SIGINT / SIGTERM, then raises the signal again for the handler it found:
        # ours, so the shutdown below still runs and the exit is clean
        server = uvicorn.Server(config)
        if not stopping.is_set():
            server.run()
        return 0
    finally:
        # SIGTERM (a rolling deploy): the tick under way hands back the SLOs it has not started and
        # finishes the others, so the other replicas lose none of this interval's evaluations
        runner.stop()
        scheduler.shutdown(wait=True)
        if socket_handler is not None:
            socket_handler.close()
        if delivery is not None:
            delivery.stop()
        incidents.stop()
        client.close()
        sources.close()


def _slo_page(engine: Engine, settings: Settings) -> Any:
    """`GET /slos/NAME` when SLO_BOT_LINK_KEY is set (Jinja2 and the chart's code load only then)."""
    links = settings.links
    if links is None:
        return None
    from bot import slopage_html

    return slopage_html.handler(engine, links, lambda: datetime.now(UTC))


def incident_client() -> httpx.Client:
    """The one client of the incident tools: a call that hangs is retried from the outbox, not waited on."""
    return httpx.Client(timeout=httpx.Timeout(10.0), follow_redirects=False)


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def wake() -> None:
        first()
        second()

    return wake


def _on_stop_signals(stop: Callable[[], None]) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop())


def _health(engine: Engine, scheduler: Any, runner: Runner, interval: timedelta) -> Health:
    def health() -> tuple[int, dict[str, Any]]:
        return check(engine, runner.heartbeat, interval, scheduler_running=scheduler.running)

    return health

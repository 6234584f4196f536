"""The HTTP surface of `slo-bot run`: Slack's requests, the incident tools' webhooks, the SLO pages
Slack links to, health and metrics, on Starlette + uvicorn.

Bolt's listeners are synchronous (one concurrency model: threads), so each Slack request is
dispatched in a worker thread and the event loop keeps accepting connections meanwhile.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio.to_thread
from slack_bolt import App, BoltRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.incidents.inbound import Webhooks
from bot.metrics import CONTENT_TYPE, METRICS

# `GET /healthz`: the HTTP status and the JSON body (bot/health.py decides both)
Health = Callable[[], tuple[int, dict[str, Any]]]
# Slack's requests and the tools' webhooks are a few kilobytes; a larger body is refused before it is
# read whole, let alone verified, so no one can make slo-bot buffer or hash megabytes unasked.
MAX_BODY_BYTES = 1024 * 1024
# `GET /slos/NAME?exp=…&sig=…`: (status, HTML) from the name, exp and sig (bot/slopage_html.py)
SLOPage = Callable[[str, str | None, str | None], tuple[int, str]]
# The page is only ever read by the person holding the link: not kept by caches, not sent on as a
# Referer (the link is the credential), no script of any kind, images only inline.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
}
_SLACK_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SLACK_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request's body, at most `limit` bytes: BodyTooLarge as soon as it says or proves longer
    (a chunked body has no Content-Length to believe)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def slack_headers_malformed(headers: Mapping[str, str]) -> bool:
    """A timestamp or signature header that is there but cannot be Slack's: refused here, as Bolt's
    verification would raise on it (a 500) instead of refusing it. Absent headers are Bolt's to judge."""
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    return (timestamp is not None and not _SLACK_TIMESTAMP.fullmatch(timestamp)) or (
        signature is not None and not _SLACK_SIGNATURE.fullmatch(signature)
    )


def create_web_app(
    bolt_app: App | None,
    health: Health,
    webhooks: Webhooks | None = None,
    slo_page: SLOPage | None = None,
) -> Starlette:
    async def slack_events(request: Request) -> Response:
        assert bolt_app is not None
        started = time.monotonic()
        headers = {k.lower(): v for k, v in request.headers.items()}
        if slack_headers_malformed(headers):
            return PlainTextResponse("bad signature\n", status_code=401)
        try:
            body = (await read_body(request)).decode("utf-8", errors="replace")
        except BodyTooLarge:
            return PlainTextResponse("request body too large\n", status_code=413)
        bolt_headers: dict[str, str | Sequence[str]] = dict(headers)
        bolt_request = BoltRequest(body=body, query=str(request.url.query), headers=bolt_headers)
        answer = await anyio.to_thread.run_sync(bolt_app.dispatch, bolt_request)
        METRICS.slack_request_took(time.monotonic() - started)
        return Response(
            content=answer.body,
            status_code=answer.status,
            headers=answer.first_headers_without_set_cookie(),
        )

    async def healthz(request: Request) -> Response:
        status, body = await anyio.to_thread.run_sync(health)
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    async def metrics(request: Request) -> Response:
        # the outbox gauges are read from the database: not on the event loop
        body = await anyio.to_thread.run_sync(METRICS.render)
        return Response(body, headers={"Content-Type": CONTENT_TYPE})

    def tool_webhook(handle: Callable[[Mapping[str, str], bytes], tuple[int, str]]) -> Callable[..., Any]:
        async def endpoint(request: Request) -> Response:
            headers = {k.lower(): v for k, v in request.headers.items()}
            try:
                body = await read_body(request)
            except BodyTooLarge:
                status, text = 413, "request body too large"
            else:
                status, text = await anyio.to_thread.run_sync(handle, headers, body)
            METRICS.webhook(request.url.path, status)
            return PlainTextResponse(text + "\n", status_code=status)

        return endpoint

    async def slo(request: Request) -> Response:
        query = request.query_params
        if slo_page is None:
            status, html = 403, "SLO pages are off: slo-bot has no SLO_BOT_LINK_KEY to check links with.\n"
            return PlainTextResponse(html, status_code=status, headers=PAGE_HEADERS)
        # the store's reads and the chart's drawing take a while: not on the event loop
        status, html = await anyio.to_thread.run_sync(
            slo_page, request.path_params["name"], query.get("exp"), query.get("sig")
        )
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    routes = [Route("/healthz", healthz), Route("/metrics", metrics), Route("/slos/{name}", slo)]
    if webhooks is not None:
        routes.append(Route("/webhooks/pagerduty", tool_webhook(webhooks.pagerduty), methods=["POST"]))
        routes.append(Route("/webhooks/opsgenie", tool_webhook(webhooks.opsgenie), methods=["POST"]))
    if bolt_app is not None:
        routes.append(Route("/slack/events", slack_events, methods=["POST"]))
    return Starlette(routes=routes)

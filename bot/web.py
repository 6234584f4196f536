"""The HTTP surface of `slo-bot run`: Slack's requests, the incident tools' webhooks, health and
metrics, on Starlette + uvicorn.

Bolt's listeners are synchronous (one concurrency model: threads), so each Slack request is
dispatched in a worker thread and the event loop keeps accepting connections meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio.to_thread
from slack_bolt import App, BoltRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.incidents.inbound import Webhooks
from bot.metrics import METRICS

Health = Callable[[], tuple[bool, str]]


def create_web_app(bolt_app: App | None, health: Health, webhooks: Webhooks | None = None) -> Starlette:
    async def slack_events(request: Request) -> Response:
        assert bolt_app is not None
        started = time.monotonic()
        body = (await request.body()).decode("utf-8", errors="replace")
        bolt_request = BoltRequest(
            body=body,
            query=str(request.url.query),
            headers={k: v for k, v in request.headers.items()},
        )
        answer = await anyio.to_thread.run_sync(bolt_app.dispatch, bolt_request)
        METRICS.observe("slo_bot_slack_request_seconds", time.monotonic() - started)
        return Response(
            content=answer.body,
            status_code=answer.status,
            headers=answer.first_headers_without_set_cookie(),
        )

    async def healthz(request: Request) -> Response:
        ok, detail = await anyio.to_thread.run_sync(health)
        return PlainTextResponse(detail + "\n", status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(METRICS.render(), media_type="text/plain; version=0.0.4")

    def tool_webhook(handle: Callable[[Mapping[str, str], bytes], tuple[int, str]]) -> Callable[..., Any]:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            status, text = await anyio.to_thread.run_sync(handle, headers, body)
            METRICS.inc("slo_bot_webhooks_total", path=request.url.path, status=str(status))
            return PlainTextResponse(text + "\n", status_code=status)

        return endpoint

    routes = [Route("/healthz", healthz), Route("/metrics", metrics)]
    if webhooks is not None:
        routes.append(Route("/webhooks/pagerduty", tool_webhook(webhooks.pagerduty), methods=["POST"]))
        routes.append(Route("/webhooks/opsgenie", tool_webhook(webhooks.opsgenie), methods=["POST"]))
    if bolt_app is not None:
        routes.append(Route("/slack/events", slack_events, methods=["POST"]))
    return Starlette(routes=routes)

"""The public HTTP application: webhooks, liveness and readiness. (Metrics are on the
API listener, ``api.server``: not for the internet.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from statusgate.telemetry import tracing
from statusgate.web.connections import Guard, guard_middleware
from statusgate.web.webhooks import WebhookReceiver


def build_web_app(
    receiver: WebhookReceiver,
    ready: Callable[[], Awaitable[bool]],
    max_body_bytes: int,
    guard: Guard | None = None,
) -> web.Application:
    # aiohttp refuses larger bodies itself while reading, chunked ones included.
    middlewares = [guard_middleware(guard)] if guard is not None else []
    app = web.Application(client_max_size=max_body_bytes, middlewares=middlewares)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        if await ready():
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "store unavailable"}, status=503)

    # A server span per webhook, named by route (tracing on); the sender's traceparent.
    webhook = tracing.traced_webhook(receiver.handle)
    app.router.add_post("/webhooks/{source}", webhook)
    # Sub-paths: the provider's spec says which it posts to; the others are 404.
    app.router.add_post("/webhooks/{source}/{path:.+}", webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app

"""The API listener (``--api``, 127.0.0.1:8081 by default), for internal services and
operators: the JSON API under ``/v1/``, its OpenAPI document at ``/v1/openapi.json``,
Prometheus ``/metrics`` (off the public webhook door), and the operator console under
``/console/`` (``api.console``).

It takes the same TLS options and client tokens as the gRPC door, and is held to the
same rule: off loopback it needs both (``config.Settings``).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from statusgate.api.console import Console, build_console_app
from statusgate.api.sse import watch_handler
from statusgate.api.transcoder import Service, Transcoder
from statusgate.config import GrpcTls, split_host_port
from statusgate.rpc.admin import AdminService
from statusgate.rpc.server import ADMIN_SERVICE, MAX_MESSAGE_BYTES, STATUS_SERVICE
from statusgate.rpc.service import StatusService
from statusgate.telemetry import tracing

OPENAPI_PATH = "/v1/openapi.json"


def openapi_document() -> bytes:
    """The committed OpenAPI document (``scripts/generate.sh`` writes it from the
    protos next to the generated code; CI fails when it is stale)."""
    return resources.files("statusgate.v1").joinpath("openapi.json").read_bytes()


def build_api_app(
    status: StatusService,
    admin: AdminService,
    *,
    render_metrics: Callable[[], bytes],
    sse_keepalive_seconds: float,
    console: Console | None = None,
) -> web.Application:
    transcoder = Transcoder(
        [
            Service(STATUS_SERVICE, status, status.access),
            Service(ADMIN_SERVICE, admin, admin.access),
        ],
        streams={
            STATUS_SERVICE.methods_by_name["WatchStatuses"].full_name: watch_handler(
                sse_keepalive_seconds
            )
        },
    )
    document = openapi_document()
    # A server span per request (tracing on), or just the caller's traceparent (off).
    app = web.Application(client_max_size=MAX_MESSAGE_BYTES, middlewares=[tracing.traced_requests])

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=render_metrics())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app.router.add_get(OPENAPI_PATH, openapi)
    app.router.add_route("*", "/v1/{tail:.*}", transcoder.handle)
    app.router.add_get("/metrics", metrics)
    if console is not None:

        async def to_console(_: web.Request) -> web.Response:
            raise web.HTTPPermanentRedirect("/console/")

        app.router.add_get("/console", to_console)
        app.add_subapp("/console", build_console_app(console))
    return app


class ApiListener:
    """``reuse_port``: join the port the supervisor of this worker holds (see
    ``supervisor``)."""

    def __init__(
        self, app: web.Application, *, shutdown_timeout: float, reuse_port: bool = False
    ) -> None:
        self._reuse_port = reuse_port
        # handler_cancellation: a client that disconnects cancels its handler, so a
        # WaitStatus or a Watch stream it left gives back what it held at once.
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=shutdown_timeout,
            handler_cancellation=True,
        )
        self.port = 0

    async def start(self, address: str, tls: GrpcTls | None = None) -> int:
        try:
            context = _ssl_context(tls)
        except (OSError, ssl.SSLError) as error:
            # One line naming the problem, like a busy port: never a traceback.
            raise OSError(f"cannot use api_tls: {error}") from None
        await self._runner.setup()
        host, port = split_host_port(address)
        site = web.TCPSite(
            self._runner, host, port, ssl_context=context, reuse_port=self._reuse_port
        )
        try:
            await site.start()
        except OSError as error:
            reason = error.strerror or str(error)
            raise OSError(f"cannot listen for the API on {address}: {reason}") from None
        server = site._server  # aiohttp exposes no public accessor for the bound socket
        sockets = getattr(server, "sockets", None)
        if not sockets:
            raise OSError(f"cannot listen for the API on {address}")
        self.port = int(sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        await self._runner.cleanup()


def _ssl_context(tls: GrpcTls | None) -> ssl.SSLContext | None:
    """TLS from PEM files; with a client CA, clients must present a certificate it
    signed (mutual TLS), as on the gRPC door."""
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(Path(tls.cert_file), Path(tls.key_file))
    if tls.client_ca_file:
        context.load_verify_locations(Path(tls.client_ca_file))
        context.verify_mode = ssl.CERT_REQUIRED
    return context

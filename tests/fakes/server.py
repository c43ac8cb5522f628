"""A programmable fake HTTP API: real aiohttp on 127.0.0.1, port 0.

Each route is an *endpoint* with a name (``"upload_status"``...) and a default handler
(the fake provider's documented success or error answers, from its state). Tests change
what an endpoint does without touching the provider logic:

- ``script(endpoint, *behaviours)``: the next requests get these, once each, in order;
- ``always(endpoint, behaviour)``: every request gets it (None restores the default);
- ``fail_all(behaviour)``: every API endpoint gets it (not the login of Setu);
- ``latency[endpoint] = seconds``: a delay before answering;
- ``hold(endpoint)`` / ``release(endpoint)``: requests wait until released.

Every request is counted in ``calls[endpoint]`` and kept in ``requests``.
"""

from __future__ import annotations

import asyncio
import collections
import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

Behaviour = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Recorded:
    endpoint: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeServer:
    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.app = web.Application()
        self.calls: collections.Counter[str] = collections.Counter()
        self.requests: list[Recorded] = []
        self.latency: dict[str, float] = {}
        self._scripts: dict[str, collections.deque[Behaviour]] = collections.defaultdict(
            collections.deque
        )
        self._always: dict[str, Behaviour] = {}
        self._failing: Behaviour | None = None
        self._gates: dict[str, asyncio.Event] = {}
        self._ssl = ssl_context
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- programming ---------------------------------------------------------------------

    def route(
        self, method: str, path: str, endpoint: str, handler: Behaviour, *, api: bool = True
    ) -> None:
        async def dispatch(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            self.calls[endpoint] += 1
            self.requests.append(
                Recorded(
                    endpoint,
                    request.method,
                    request.path,
                    dict(request.query),
                    {k.lower(): v for k, v in request.headers.items()},
                    body,
                )
            )
            gate = self._gates.get(endpoint)
            if gate is not None:
                await gate.wait()
            if self.latency.get(endpoint):
                await asyncio.sleep(self.latency[endpoint])
            if self._scripts[endpoint]:
                return await self._scripts[endpoint].popleft()(request)
            if endpoint in self._always:
                return await self._always[endpoint](request)
            if api and self._failing is not None:
                return await self._failing(request)
            return await handler(request)

        self.app.router.add_route(method, path, dispatch)

    def script(self, endpoint: str, *behaviours: Behaviour) -> None:
        self._scripts[endpoint].extend(behaviours)

    def always(self, endpoint: str, behaviour: Behaviour | None) -> None:
        if behaviour is None:
            self._always.pop(endpoint, None)
        else:
            self._always[endpoint] = behaviour

    def fail_all(self, behaviour: Behaviour | None) -> None:
        self._failing = behaviour

    def hold(self, endpoint: str) -> None:
        self._gates[endpoint] = asyncio.Event()

    def release(self, endpoint: str) -> None:
        gate = self._gates.pop(endpoint, None)
        if gate is not None:
            gate.set()

    def requests_to(self, endpoint: str) -> list[Recorded]:
        return [r for r in self.requests if r.endpoint == endpoint]

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        scheme = "https" if self._ssl is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        for gate in self._gates.values():
            gate.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


# --- behaviours --------------------------------------------------------------------------


def reply(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> Behaviour:
    """A JSON answer."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=status, headers=headers)

    return handler


def raw(
    status: int,
    body: bytes,
    content_type: str = "text/plain",
    headers: dict[str, str] | None = None,
) -> Behaviour:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, content_type=content_type, headers=headers)

    return handler


HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>nginx</p></body></html>"
)


def html_page(status: int) -> Behaviour:
    return raw(status, HTML_PAGE, "text/html")


def truncated_json(status: int = 200) -> Behaviour:
    return raw(status, b'{"upload_status": "COMPL', "application/json")


def empty(status: int) -> Behaviour:
    return raw(status, b"", "application/json")


def rate_limited(retry_after: str) -> Behaviour:
    return reply(429, {"message": "Too Many Requests"}, headers={"Retry-After": retry_after})


def hang() -> Behaviour:
    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.Event().wait()  # until the server closes
        raise AssertionError("unreachable")

    return handler


def drop() -> Behaviour:
    """Close the connection without answering."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.close()
        await asyncio.sleep(0)
        return web.Response(status=200)

    return handler


def check_headers(request: web.Request, expected: dict[str, str]) -> web.StreamResponse | None:
    """None when every expected header has its value; else the 401 / 403 a provider
    sends (missing: 401, wrong: 403)."""
    for name, value in expected.items():
        got = request.headers.get(name)
        if got is None:
            return web.json_response(
                {"detail": "Authentication credentials were not provided."}, status=401
            )
        if got != value:
            return web.json_response(
                {"error": {"code": "ACCESS_DENIED", "message": "access denied"}}, status=403
            )
    return None

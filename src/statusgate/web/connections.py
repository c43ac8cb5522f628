"""Connections of the front door: header timeout, connection caps, and draining.

aiohttp brings the idle keep-alive timeout (``keepalive_timeout``, which also closes a
connection that never sends a byte), the lingering close, and body size limits; it has
no timeout on reading a request's headers, no cap on open connections, and its shutdown
stops reading a request whose body is still arriving. Those three are here:

- **Header timeout.** From the first byte of a request head to its end; a sender slower
  than that (slowloris) is disconnected.
- **Caps.** At most ``max_connections`` open connections, and ``max_connections_per_peer``
  from one peer address. A connection that would pass a cap closes the oldest
  connection without a request in progress (idle keep-alive, or still sending its head)
  of that peer, or of all; when every one has a request in progress, the newcomer is
  closed at once. So idle sockets never keep a legitimate provider out.
- **Draining.** ``drain`` stops nothing by itself (the caller stops listening first): it
  closes idle connections at once, lets those receiving a request finish reading it and
  answering (with ``Connection: close``), and returns as soon as none is left or the
  grace period is over.

This subclasses aiohttp's ``RequestHandler`` and ``Server``, reading a few of their
private attributes; ``pyproject.toml`` pins aiohttp to the versions this is tested with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

# File descriptors kept free for everything else the process opens (store files, gRPC,
# upstream calls): the connection cap stays below the open-file limit by this much.
RESERVED_FDS = 128


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout: float
    max_connections: int
    max_per_peer: int


def effective_max_connections(configured: int) -> int:
    """``configured``, lowered to fit the process's open-file limit: past it, accept()
    fails and the event loop stops accepting for a second, legitimate clients included."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, soft - min(RESERVED_FDS, soft // 4)))


class Guard:
    """The bookkeeping shared by every connection of one listener."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.max_connections = effective_max_connections(limits.max_connections)
        self.draining = False
        self.open: set[GuardedHandler] = set()
        # Connections without a request in progress, oldest first (all, and per peer).
        self._idle: OrderedDict[GuardedHandler, None] = OrderedDict()
        self._idle_by_peer: dict[str, OrderedDict[GuardedHandler, None]] = {}
        self._by_peer: dict[str, int] = {}
        self._empty = asyncio.Event()
        self.shed = 0  # connections closed to make room (tests, metrics)
        self.refused = 0  # connections closed at once because none could be shed

    # --- caps ------------------------------------------------------------------------

    def opened(self, conn: GuardedHandler) -> bool:
        """Admit a new connection, closing the oldest idle one when a cap is reached;
        False when none could be closed (the caller closes the newcomer)."""
        peer = conn.peer
        if self._by_peer.get(peer, 0) >= self.limits.max_per_peer:
            candidates = self._idle_by_peer.get(peer)
        elif len(self.open) >= self.max_connections:
            candidates = self._idle
        else:
            candidates = None
        if candidates is not None:
            victim = next(iter(candidates), None)
            if victim is None:
                self.refused += 1
                log.debug("connection cap reached and no connection is idle: refusing one")
                return False
            self.shed += 1
            log.debug("connection cap reached: closing the oldest idle connection")
            victim.force_close()
            self.closed(victim)
        self.open.add(conn)
        self._by_peer[peer] = self._by_peer.get(peer, 0) + 1
        self._empty.clear()
        self.idle(conn)
        return True

    def closed(self, conn: GuardedHandler) -> None:
        if conn not in self.open:
            return
        self.open.discard(conn)
        self.busy(conn)
        peer = conn.peer
        self._by_peer[peer] -= 1
        if not self._by_peer[peer]:
            del self._by_peer[peer]
        if not self.open:
            self._empty.set()

    def busy(self, conn: GuardedHandler) -> None:
        self._idle.pop(conn, None)
        peers = self._idle_by_peer.get(conn.peer)
        if peers is not None:
            peers.pop(conn, None)
            if not peers:
                del self._idle_by_peer[conn.peer]

    def idle(self, conn: GuardedHandler) -> None:
        if conn not in self.open:
            return
        self._idle[conn] = None
        self._idle_by_peer.setdefault(conn.peer, OrderedDict())[conn] = None

    # --- draining --------------------------------------------------------------------

    async def drain(self, grace: float) -> None:
        """Close idle connections now; wait up to ``grace`` for the others to finish
        the request they are receiving."""
        self.draining = True
        for conn in list(self._idle):
            if not conn.receiving_head:
                conn.force_close()
                self.closed(conn)
        if self.open:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._empty.wait(), grace)


class GuardedHandler(RequestHandler):
    """aiohttp's connection protocol, with a header timeout and the guard's caps."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager.guard
        self.peer = ""
        self.receiving_head = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_handler = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peername = transport.get_extra_info("peername")
        self.peer = str(peername[0]) if isinstance(peername, tuple) and peername else ""
        super().connection_made(transport)
        if not self._guard.opened(self):
            self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_head_timer()
        self._guard.closed(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Bytes that arrive while no request is being handled start a request head.
        starts_head = data and self._in_handler == 0 and not self._messages
        before = self._request_count
        super().data_received(data)
        if not starts_head:
            return
        if self._request_count > before:
            self._cancel_head_timer()
        elif self._head_timer is None:
            self.receiving_head = True
            self._head_timer = self._loop.call_later(
                self._guard.limits.header_timeout, self._head_timed_out
            )

    def _head_timed_out(self) -> None:
        self._head_timer = None
        log.debug("closing a connection whose request head did not arrive in time")
        self.force_close()

    def _cancel_head_timer(self) -> None:
        self.receiving_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    # Called by the middleware around every handler.
    def handler_started(self) -> None:
        self._cancel_head_timer()
        self._in_handler += 1
        self._guard.busy(self)

    def handler_finished(self) -> None:
        self._in_handler -= 1
        if self._in_handler == 0:
            self._guard.idle(self)


class GuardedServer(web.Server):
    guard: Guard

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """An AppRunner whose connections are ``GuardedHandler``s sharing ``guard``."""

    def __init__(self, app: web.Application, guard: Guard, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.guard = guard

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        server = GuardedServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )
        server.guard = self.guard
        return server


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guard_middleware(guard: Guard) -> Any:
    """Marks each connection busy while a handler runs, and asks for the connection to
    close after the answer once draining has begun."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        conn = request.protocol if isinstance(request.protocol, GuardedHandler) else None
        if conn is not None:
            conn.handler_started()
        try:
            response = await handler(request)
        finally:
            if conn is not None:
                conn.handler_finished()
        if guard.draining:
            response.force_close()
        return response

    return middleware

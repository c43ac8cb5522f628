"""Composition root: config → store → hub → pipeline → HTTP front door + gRPC server,
plus the poller (PollStatuses, WaitStatus) and the reconciler over the providers' APIs.

Everything shares one asyncio event loop. ``Gateway`` is what ``statusgate serve`` runs
and what the tests start on port 0, so tests drive exactly what production runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from aiohttp import web

from statusgate.config import Settings, split_host_port
from statusgate.core.hub import Hub
from statusgate.core.pipeline import Pipeline
from statusgate.poll.poller import Poller
from statusgate.poll.reconciler import Reconciler
from statusgate.providers.registry import build_pollers
from statusgate.retention import RetentionTask
from statusgate.rpc.access import AccessControl
from statusgate.rpc.server import RpcServer
from statusgate.rpc.service import StatusService
from statusgate.store.base import Store
from statusgate.store.factory import open_store
from statusgate.web.auth import build_verifiers
from statusgate.web.metrics import Metrics
from statusgate.web.routes import build_web_app
from statusgate.web.webhooks import WebhookReceiver

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BoundPorts:
    http: int
    grpc: int


class Gateway:
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        # Verifiers resolve their secrets now: a missing one fails start-up, not a webhook.
        self._verifiers = build_verifiers(settings.sources)
        self.store = store if store is not None else open_store(settings.store)
        self.hub = Hub(self.store)
        self.pipeline = Pipeline(self.store, self.hub)
        # API clients read their credentials now: a named variable that is unset fails
        # start-up like a webhook secret does. One HTTP session per source.
        self.metrics = Metrics()
        self.poller = Poller(
            self.store,
            self.pipeline,
            build_pollers(settings.sources),
            observe=self.metrics.record_poll,
        )
        self.retention = RetentionTask(self.store, settings.retention)
        self.reconciler = Reconciler(
            self.store,
            self.poller,
            settings.sources,
            tick_seconds=settings.reconciler_tick_seconds,
        )
        self._runner: web.AppRunner | None = None
        self._rpc: RpcServer | None = None
        self._stopped = asyncio.Event()

    async def start(self) -> BoundPorts:
        await self.store.open()
        # Listen before reading the last sequence: a commit by another replica in between
        # is then heard (hearing one twice is harmless).
        self.store.add_commit_listener(self.hub.notify)
        await self.hub.start()
        receiver = WebhookReceiver(
            self.settings.sources,
            self._verifiers,
            self.pipeline,
            self.metrics,
            self.settings.max_body_bytes,
        )
        app = build_web_app(receiver, self.ready, self.metrics, self.settings.max_body_bytes)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=self._grace
        )
        await self._runner.setup()
        host, port = split_host_port(self.settings.http)
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        http_port = _bound_port(site)

        service = StatusService(
            self.store,
            self.hub,
            list(self.settings.sources),
            self.poller,
            AccessControl(self.settings.clients),
        )
        self._rpc = RpcServer(service)
        grpc_port = await self._rpc.start(self.settings.grpc, self.settings.grpc_tls)
        self.reconciler.start()
        self.retention.start()
        log.info(
            "statusgate serving: http port %d, grpc port %d, store %s, sources %s",
            http_port,
            grpc_port,
            self.settings.store.split(":", 1)[0],  # the scheme only: URLs may hold passwords
            sorted(self.settings.sources),
        )
        return BoundPorts(http=http_port, grpc=grpc_port)

    async def ready(self) -> bool:
        """Readiness: the store can commit, and no shutdown has begun (so a load
        balancer stops sending before the listener closes)."""
        return not self._stopped.is_set() and await self.store.ready()

    @property
    def _grace(self) -> float:
        return self.settings.shutdown_grace_seconds

    async def stop(self) -> None:
        """Graceful: stop taking new work, let in-flight webhooks and RPCs finish within
        the grace period, then close the hub (ending Watch streams) and the store."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        await self.reconciler.stop()
        await self.retention.stop()
        rpc_stop = self._rpc.stop(self._grace) if self._rpc else asyncio.sleep(0)
        http_stop = self._runner.cleanup() if self._runner else asyncio.sleep(0)
        # Watch streams never end on their own; closing the hub ends them so the gRPC
        # grace period is spent on unary calls, not on waiting for streams.
        await self.hub.close()
        await asyncio.gather(rpc_stop, http_stop)
        # After the RPCs: polls in flight have had their grace period.
        await self.poller.close()
        with contextlib.suppress(Exception):
            await self.store.close()
        log.info("statusgate stopped")

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


def _bound_port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp exposes no public accessor for the bound socket
    if server is None or not getattr(server, "sockets", None):
        raise OSError("the HTTP listener did not bind")
    port: int = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return port

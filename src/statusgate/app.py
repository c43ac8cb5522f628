"""Composition root: config → store → hub → ingest → HTTP front door + gRPC server +
API listener (the JSON API, metrics and the operator console), plus the poll service (PollStatuses,
WaitStatus) and the reconciler over the providers' APIs.

``build`` makes every component from the settings and the provider registry; ``serve``
(``Gateway``), ``replay``, ``register-webhook`` and ``check-config`` all use it, so
``check-config`` meets exactly the problems ``serve`` would. Everything shares one
asyncio event loop. ``Gateway`` is what ``statusgate serve`` runs and what the tests
start on port 0, so tests drive exactly what production runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from statusgate import config
from statusgate.api.console import Console, Overview
from statusgate.api.server import ApiListener, build_api_app
from statusgate.config import (
    GrpcTls,
    Settings,
    SetupError,
    SetupProblems,
    SourceConfig,
    bind_failure,
    check_bindable,
    split_host_port,
)
from statusgate.config.workers import WorkerRole
from statusgate.core.filters import FilterLimits
from statusgate.core.hub import Hub
from statusgate.ingest import Ingest
from statusgate.logs import install_client_error_filter, mask_account_segments
from statusgate.poll.reconciler import Reconciler
from statusgate.poll.service import PollService
from statusgate.poll.waits import WaitPolls
from statusgate.providers.polling import Poller, observe_upstream
from statusgate.providers.registry import PROVIDERS, Registry
from statusgate.providers.spec import Acknowledgement
from statusgate.retention import RetentionTask
from statusgate.rpc.access import AccessControl
from statusgate.rpc.admin import AdminService
from statusgate.rpc.server import RpcServer
from statusgate.rpc.service import StatusService
from statusgate.store.base import Store, StoreUnavailableError
from statusgate.store.factory import open_store
from statusgate.store.sqlite_shared import SqliteSharing
from statusgate.telemetry import tracing_setup
from statusgate.telemetry.gauges import GaugeRefresher
from statusgate.telemetry.metrics import Metrics
from statusgate.upstream.http import Sleep
from statusgate.web.auth import WebhookVerifier, build_verifier
from statusgate.web.connections import ConnectionLimits, Guard, GuardedRunner
from statusgate.web.routes import build_web_app
from statusgate.web.webhooks import WebhookReceiver

log = logging.getLogger(__name__)


def load_settings(
    config_file: Path | None = None, *, registry: Registry = PROVIDERS, **overrides: Any
) -> Settings:
    """Settings for ``registry``'s providers: defaults → ``config_file`` → environment
    → ``overrides`` (see ``config.load_settings``)."""
    return config.load_settings(registry, config_file, **overrides)


@dataclass(frozen=True, slots=True)
class Components:
    """Every part of a gateway, built and wired but not started."""

    settings: Settings
    registry: Registry
    store: Store
    hub: Hub
    ingest: Ingest
    verifiers: dict[str, WebhookVerifier]
    acknowledgements: dict[str, Acknowledgement]
    polling: PollService
    metrics: Metrics
    # Polls on behalf of WaitStatus callers, within each source's upstream budget.
    waits: WaitPolls


def build(
    settings: Settings,
    registry: Registry = PROVIDERS,
    *,
    store: Store | None = None,
    sleep: Sleep = asyncio.sleep,
    role: WorkerRole | None = None,
) -> Components:
    """Build every component (as worker ``role`` of a supervised gateway, when given).
    Secrets, key and certificate files are read now, source by source; ``SetupError``
    lists every problem (located ``sources.<id>.auth.…``, ``sources.<id>.api.…``, or
    wherever in the source table a provider's answers read their keys), so a gateway
    never starts half-configured."""
    problems: list[tuple[str, str]] = []
    verifiers: dict[str, WebhookVerifier] = {}
    acknowledgements: dict[str, Acknowledgement] = {}
    pollers: dict[str, Poller] = {}
    for source_id, source in settings.sources.items():
        mask_account_segments(source_id, registry.for_source(source).account_number_segments)
        built = build_source(source, registry, sleep=sleep)
        problems.extend(built.problems)
        if built.verifier is not None:
            verifiers[source_id] = built.verifier
        if built.acknowledgement is not None:
            acknowledgements[source_id] = built.acknowledgement
        if built.poller is not None:
            pollers[source_id] = built.poller
    if settings.grpc_tls is not None:
        problems.extend(tls_problems(settings.grpc_tls))
    if store is None:
        sharing = None
        if role is not None and role.lock_fd is not None:
            sharing = SqliteSharing(role.lock_fd, Path(role.run_dir), role.index, role.count)
        try:
            store = open_store(settings.store, sharing=sharing)
        except ValueError as exc:
            problems.append(("store", str(exc)))
    if problems or store is None:
        raise SetupError(problems)
    hub = Hub(store)
    metrics = Metrics(
        {sid: s.provider for sid, s in settings.sources.items()},
        role.metrics_dir if role is not None else None,
    )
    store.observe_commits(metrics)
    for source_id, poller in pollers.items():
        observe_upstream(poller, metrics.sources[source_id])
    ingest = Ingest(
        store, hub, registry, max_json_depth=settings.front_door.max_json_depth, metrics=metrics
    )
    polling = PollService(store, ingest, pollers, observe=metrics.record_poll)
    waits = WaitPolls(
        polling, {sid: s.api.wait_calls_per_second for sid, s in settings.sources.items()}
    )
    return Components(
        settings,
        registry,
        store,
        hub,
        ingest,
        verifiers,
        acknowledgements,
        polling,
        metrics,
        waits,
    )


@dataclass(frozen=True, slots=True)
class BuiltSource:
    """One source's parts, each None when building it met a problem."""

    verifier: WebhookVerifier | None
    acknowledgement: Acknowledgement | None
    poller: Poller | None
    # Located ``sources.<id>.auth.…``, ``sources.<id>.api.…``, or wherever in the
    # source table a provider's answers read their keys.
    problems: list[tuple[str, str]]


def build_source(
    source: SourceConfig, registry: Registry = PROVIDERS, *, sleep: Sleep = asyncio.sleep
) -> BuiltSource:
    """One source's webhook verifier, answers and poller, and every problem building
    them met (``build`` and check-config both use it)."""
    spec = registry.for_source(source)
    problems: list[tuple[str, str]] = []
    verifier: WebhookVerifier | None = None
    acknowledgement: Acknowledgement | None = None
    poller: Poller | None = None
    try:
        verifier = build_verifier(source.auth)
    except SetupError as exc:
        problems.extend(exc.located(f"sources.{source.id}.auth.").problems)
    try:
        acknowledgement = spec.acknowledgement(source)
    except SetupError as exc:
        problems.extend(exc.located(f"sources.{source.id}.").problems)
    try:
        poller = spec.poller(source, sleep=sleep)
    except SetupError as exc:
        problems.extend(exc.located(f"sources.{source.id}.api.").problems)
    return BuiltSource(verifier, acknowledgement, poller, problems)


def tls_problems(tls: GrpcTls) -> list[tuple[str, str]]:
    """The gRPC server reads its TLS files at start-up: found here, so check-config
    finds them too."""
    found = SetupProblems()
    for setting in ("cert_file", "key_file", "client_ca_file"):
        path = getattr(tls, setting)
        if path is not None:
            found.readable(f"grpc_tls.{setting}", path)
    return found.problems


class StartupError(Exception):
    """``serve`` cannot start: the message is one line saying what failed and what to
    do (a busy port, an unreachable or missing store, a store another process holds,
    an unreadable TLS file)."""


@dataclass(frozen=True, slots=True)
class BoundPorts:
    http: int
    grpc: int
    api: int


class Gateway:
    """One gateway process: alone, or worker ``role`` of a supervised gateway (then its
    listeners join the supervisor's with SO_REUSEPORT, see ``supervisor``)."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: Registry = PROVIDERS,
        store: Store | None = None,
        role: WorkerRole | None = None,
    ) -> None:
        self.settings = settings
        self.role = role
        self.parts = build(settings, registry, store=store, role=role)
        self.store = self.parts.store
        self.hub = self.parts.hub
        self.polling = self.parts.polling
        self.retention = RetentionTask(self.store, settings.retention)
        self.reconciler = Reconciler(
            self.store,
            self.polling,
            settings.sources,
            tick_seconds=settings.reconciler_tick_seconds,
        )
        self.gauges = GaugeRefresher(
            self.parts.metrics,
            self.store,
            watch_lag=self.hub.lag,
            breaker=self._breaker_state,
            backlog=self.reconciler.backlog,
            interval=settings.metrics_refresh_seconds,
            # What the store knows is the same for every worker: one reads it.
            store_derived=role is None or role.index == 0,
        )
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._guard: Guard | None = None
        self._rpc: RpcServer | None = None
        self._api: ApiListener | None = None
        self._stopped = asyncio.Event()
        self._serving = False
        self._tracing = False

    async def start(self) -> BoundPorts:
        """Open the store and listen; on any failure, undo what was started (a busy
        port must not leave the other listener or the store open) and raise:
        ``StartupError`` for what the operator must fix."""
        try:
            return await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> BoundPorts:
        install_client_error_filter()
        # First: the gRPC server and the webhook route are built for what it decides.
        try:
            self._tracing = tracing_setup.start(
                self.settings.tracing, worker=None if self.role is None else self.role.index
            )
        except tracing_setup.TracingSetupError as error:
            raise StartupError(f"tracing: {error}") from None
        # A busy or foreign address is found before anything is opened or migrated
        # (binding itself may still lose a race, and says so the same way). A worker's
        # supervisor checked and holds its addresses: a plain bind would find them taken.
        try:
            if self.role is None:
                check_bindable("HTTP", self.settings.http, "--http")
                check_bindable("gRPC", self.settings.grpc, "--grpc")
                check_bindable("API", self.settings.api, "--api")
        except OSError as error:
            raise StartupError(str(error.strerror or error)) from None
        try:
            await self.store.open()
        except StoreUnavailableError as error:
            raise StartupError(str(error)) from None
        # Listen before reading the last sequence: a commit by another replica in between
        # is then heard (hearing one twice is harmless).
        self.store.add_commit_listener(self.hub.notify)
        await self.hub.start()
        parts = self.parts
        door = self.settings.front_door
        receiver = WebhookReceiver(
            self.settings.sources,
            parts.registry,
            parts.verifiers,
            parts.acknowledgements,
            parts.ingest,
            parts.metrics,
            self.settings.max_body_bytes,
            body_timeout=door.body_timeout_seconds,
        )
        self._guard = Guard(
            ConnectionLimits(
                header_timeout=door.header_timeout_seconds,
                max_connections=door.max_connections,
                max_per_peer=door.max_connections_per_peer,
            )
        )
        app = build_web_app(receiver, self.ready, self.settings.max_body_bytes, self._guard)
        self._runner = GuardedRunner(
            app,
            self._guard,
            access_log=None,
            handle_signals=False,
            # What is left once drain() is over (or its grace ran out) is cut off.
            shutdown_timeout=0.1,
            keepalive_timeout=door.keepalive_timeout_seconds,
            lingering_time=door.lingering_seconds,
            # Bodies are decoded by the front door itself (web.encoding).
            auto_decompress=False,
        )
        await self._runner.setup()
        host, port = split_host_port(self.settings.http)
        self._site = web.TCPSite(self._runner, host, port, reuse_port=self.role is not None)
        try:
            await self._site.start()
        except OSError as error:
            raise StartupError(bind_failure("HTTP", self.settings.http, error, "--http")) from None
        http_port = _bound_port(self._site)

        # One AccessControl for both doors: a client's Watch streams are counted together.
        access = AccessControl(self.settings.clients)
        service = StatusService(
            self.store,
            self.hub,
            list(self.settings.sources),
            self.polling,
            access,
            FilterLimits(
                self.settings.grpc_limits.max_filter_names,
                self.settings.grpc_limits.max_filter_prefixes,
            ),
            parts.waits,
            parts.metrics,
        )
        admin = AdminService(self.store, parts.ingest, self.settings.sources, access)
        self._rpc = RpcServer(
            service, admin, reuse_port=self.role is not None, metrics=parts.metrics
        )
        try:
            grpc_port = await self._rpc.start(self.settings.grpc, self.settings.grpc_tls)
        except OSError as error:
            raise StartupError(str(error.strerror or error)) from None
        api_app = build_api_app(
            service,
            admin,
            render_metrics=parts.metrics.render,
            sse_keepalive_seconds=self.settings.sse_keepalive_seconds,
            console=self._console(service, admin),
        )
        self._api = ApiListener(
            api_app, shutdown_timeout=self._grace, reuse_port=self.role is not None
        )
        try:
            api_port = await self._api.start(self.settings.api, self.settings.api_tls)
        except OSError as error:
            raise StartupError(str(error.strerror or error)) from None
        self.reconciler.start()
        self.retention.start()
        self.gauges.start()
        self._serving = True
        log.info(
            "statusgate %s: http port %d, grpc port %d, api port %d, store %s, sources %s",
            "serving" if self.role is None else f"worker {self.role.index} serving",
            http_port,
            grpc_port,
            api_port,
            self.settings.store.split(":", 1)[0],  # the scheme only: URLs may hold passwords
            sorted(self.settings.sources),
        )
        return BoundPorts(http=http_port, grpc=grpc_port, api=api_port)

    def _breaker_state(self, source: str) -> str | None:
        snapshot = self.polling.breaker(source)
        return snapshot.state.value if snapshot is not None else None

    def _console(self, service: StatusService, admin: AdminService) -> Console:
        """The operator console over the same services, with what the gateway knows
        about each source for its overview."""
        parts = self.parts
        specs = {sid: parts.registry.for_source(s) for sid, s in self.settings.sources.items()}
        overview = Overview(
            store=self.store,
            hub=self.hub,
            polling=self.polling,
            reconciler=self.reconciler,
            providers={sid: spec.label for sid, spec in specs.items()},
            auth_failures=parts.metrics.recent_auth_failures,
            poll_errors=parts.metrics.recent_poll_errors,
        )
        return Console(
            status=service,
            admin=admin,
            overview=overview,
            store=self.store,
            account_fields={sid: spec.account_number_fields for sid, spec in specs.items()},
        )

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
        await self.gauges.stop()
        rpc_stop = self._rpc.stop(self._grace) if self._rpc else asyncio.sleep(0)
        http_stop = self._stop_http()
        api_stop = self._api.stop() if self._api else asyncio.sleep(0)
        # Watch streams never end on their own; closing the hub ends them so the gRPC
        # grace period is spent on unary calls, not on waiting for streams.
        await self.hub.close()
        await asyncio.gather(rpc_stop, http_stop, api_stop)
        # After the RPCs: polls in flight have had their grace period.
        await self.parts.waits.close()
        await self.polling.close()
        with contextlib.suppress(Exception):
            await self.store.close()
        if self._tracing:  # the last spans flushed, off the event loop
            await asyncio.to_thread(tracing_setup.stop)
        if self._serving:  # a start that failed says so in its own one line
            log.info("statusgate stopped")

    async def _stop_http(self) -> None:
        """Stop listening; close idle connections at once; let the requests being
        received finish (their bodies still read, their answers sent) within the grace
        period, and be done as soon as none is left."""
        if self._site is not None:
            await self._site.stop()
        if self._guard is not None:
            await self._guard.drain(self._grace)
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


def _bound_port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp exposes no public accessor for the bound socket
    if server is None or not getattr(server, "sockets", None):
        raise OSError("the HTTP listener did not bind")
    port: int = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return port

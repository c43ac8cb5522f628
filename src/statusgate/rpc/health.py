"""``grpc.health.v1.Health`` (Check and Watch), whose Watch streams end at shutdown.

grpcio-health-checking's servicer keeps a Watch open forever: at shutdown it only turns
every service NOT_SERVING, so a load balancer's held-open Watch kept SIGTERM waiting
for the whole grace period, and it offers no way to end its streams short of
cancelling them mid-write. This one is as small as the protocol: ``shut_down`` turns
every service NOT_SERVING, each watcher hears it, and its stream ends with
UNAVAILABLE, as StatusService's Watch streams end, so the client (or balancer) moves to
another replica.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
# A HealthCheckResponse.ServingStatus value (grpc_health ships no type stubs).
ServingStatus = int
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
SHUTTING_DOWN = "the gateway is shutting down; check another replica"


class HealthService(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        # "" is the server as a whole.
        self._statuses: dict[str, ServingStatus] = {"": SERVING}
        self._changed = asyncio.Condition()
        self._closing = False

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: Context
    ) -> health_pb2.HealthCheckResponse:
        status = self._statuses.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Context) -> None:
        """The service's status now and at every change, until shutdown."""
        last: ServingStatus | None = None
        while True:
            status = self._statuses.get(request.service, SERVICE_UNKNOWN)
            if status != last:
                await context.write(health_pb2.HealthCheckResponse(status=status))
                last = status
            if self._closing:
                await context.abort(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)
            async with self._changed:
                await self._changed.wait_for(
                    functools.partial(self._moved, request.service, status)
                )

    def _moved(self, service: str, seen: ServingStatus) -> bool:
        return self._closing or self._statuses.get(service, SERVICE_UNKNOWN) != seen

    async def set(self, service: str, status: ServingStatus) -> None:
        """Set a service's status; ignored once shutdown began (it stays NOT_SERVING)."""
        async with self._changed:
            if not self._closing:
                self._statuses[service] = status
                self._changed.notify_all()

    async def shut_down(self) -> None:
        """Every service NOT_SERVING for good, and every Watch stream ended."""
        async with self._changed:
            self._closing = True
            for service in self._statuses:
                self._statuses[service] = NOT_SERVING
            self._changed.notify_all()

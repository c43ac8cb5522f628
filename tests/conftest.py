"""Real gateways on port 0, driven the way a client would: HTTP webhooks in, gRPC out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from statusgate.app import BoundPorts, Gateway, load_settings
from statusgate.config import Settings
from statusgate.providers.registry import PROVIDERS, Registry
from statusgate.v1 import status_service_pb2_grpc


@dataclass
class RunningGateway:
    gateway: Gateway
    ports: BoundPorts
    http: aiohttp.ClientSession
    channel: grpc.aio.Channel
    stub: status_service_pb2_grpc.StatusServiceAsyncStub

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.ports.http}{path}"

    def api_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.ports.api}{path}"

    async def post(
        self, source: str, payload: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        async with self.http.post(
            self.url(f"/webhooks/{source}"),
            data=body,
            headers={"Content-Type": "application/json", **(headers or {})},
        ) as response:
            return response.status, await response.json(content_type=None)


def gateway_settings(
    tmp_path: Path, *, registry: Registry = PROVIDERS, **overrides: Any
) -> Settings:
    """Settings on port 0 with a fresh SQLite store; with a registry of extra providers,
    one source of each of them (named ``<provider>-eu``) joins the default sources."""
    extra = {
        f"{name}-eu": {"provider": name}
        for name in registry.provider_names
        if name not in PROVIDERS.provider_names
    }
    if extra and "sources" not in overrides:
        defaults = {sid: {"provider": p} for sid, p in registry.default_sources.items()}
        overrides["sources"] = {**defaults, **extra}
    listeners = {
        "http": "127.0.0.1:0",
        "grpc": "127.0.0.1:0",
        "api": "127.0.0.1:0",
        "store": f"sqlite:///{tmp_path / 'statusgate.db'}",
    }
    return load_settings(None, registry=registry, **{**listeners, **overrides})


async def start_gateway(settings: Settings, *, registry: Registry = PROVIDERS) -> RunningGateway:
    gateway = Gateway(settings, registry=registry)
    ports = await gateway.start()
    http = aiohttp.ClientSession()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{ports.grpc}")
    stub = status_service_pb2_grpc.StatusServiceStub(channel)
    return RunningGateway(gateway, ports, http, channel, stub)  # type: ignore[arg-type]


async def stop_gateway(running: RunningGateway) -> None:
    await running.http.close()
    await running.channel.close()
    await running.gateway.stop()


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(gateway_settings(tmp_path))
    try:
        yield running
    finally:
        await stop_gateway(running)

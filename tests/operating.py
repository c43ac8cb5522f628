"""Shared by the tests of operating a running gateway (AdminService, the JSON API, the
CLI): a config with scoped clients, and a provider whose mapping a test can "fix".

The ``tickets`` provider maps ``{"ticket": id, "state": word}`` posted to
``/webhooks/{source}`` or ``/webhooks/{source}/v2``; a word not in ``KNOWN_WORDS`` is an
unknown shape (202, kept as unmapped) until a test adds it, which is what a mapping fix
followed by a replay looks like. The path a delivery was posted to ends up in the
status's ``provider_state`` (``v2:closed``), so a test sees that a replay ran the
adapter exactly as the original request did.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from statusgate.app import load_settings
from statusgate.config import Settings, SourceConfig
from statusgate.core.names import make_name
from statusgate.providers.base import JSONObject, UnknownShapeError
from statusgate.providers.common import build_status
from statusgate.providers.registry import PROVIDERS
from statusgate.v1 import admin_service_pb2_grpc
from statusgate.v1.status_pb2 import Provider, Stage, State, Status
from tests.conftest import RunningGateway, start_gateway, stop_gateway
from tests.providers import throwaway

ADMIN = "token-admin"
FINBOX_ADMIN = "token-finbox-admin"
READER = "token-reader"

KNOWN_WORDS = {"open": State.STATE_IN_PROGRESS}
WORDS = {"open": State.STATE_IN_PROGRESS, "closed": State.STATE_COMPLETED}


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


CONFIG = f"""
[sources.finbox]
provider = "finbox"
[sources.setu]
provider = "setu"
[sources.tickets]
provider = "tickets"

[clients.ops]
token_sha256 = "{sha(ADMIN)}"
sources = ["*"]
permissions = ["admin"]

[clients.lending-ops]
token_sha256 = "{sha(FINBOX_ADMIN)}"
sources = ["finbox"]
permissions = ["admin"]
max_watch_streams = 1

[clients.reader]
token_sha256 = "{sha(READER)}"
sources = ["*"]
permissions = ["read", "poll"]
"""


class TicketSource(SourceConfig):
    provider: Literal["tickets"]
    api: throwaway.ParcelApi = throwaway.ParcelApi()


class TicketAdapter:
    provider: ClassVar[Provider.ValueType] = Provider.PROVIDER_UNSPECIFIED

    def normalize(
        self, source: SourceConfig, payload: JSONObject, *, path: str = ""
    ) -> list[Status]:
        word = payload.get("state")
        if not isinstance(word, str) or word not in KNOWN_WORDS:
            raise UnknownShapeError(f"no ticket state {word!r}")
        name = make_name(source.id, "payments", str(payload.get("ticket")))
        return [
            build_status(
                name,
                self.provider,
                KNOWN_WORDS[word],
                Stage.STAGE_PAYMENT,
                final_stage=Stage.STAGE_PAYMENT,
                provider_state=f"{path}:{word}" if path else word,
            )
        ]


TICKETS = dataclasses.replace(
    throwaway.SPEC,
    name="tickets",
    label="Tickets",
    source_model=TicketSource,
    adapter=TicketAdapter(),
    default_source=None,
    webhook_paths=frozenset({"", "v2"}),
    acknowledgement=PROVIDERS.spec("finbox").acknowledgement,
    scenarios=(),
)
REGISTRY = PROVIDERS.with_providers(TICKETS)


def operating_settings(tmp_path: Path, store: str = "", **overrides: Any) -> Settings:
    config = tmp_path / "statusgate.toml"
    config.write_text(CONFIG)
    listeners = {
        "http": "127.0.0.1:0",
        "grpc": "127.0.0.1:0",
        "api": "127.0.0.1:0",
        "store": store or f"sqlite:///{tmp_path / 'gateway.db'}",
    }
    return load_settings(config, registry=REGISTRY, **{**listeners, **overrides})


@contextlib.asynccontextmanager
async def operating_gateway(
    tmp_path: Path, store: str = "", **overrides: Any
) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(
        operating_settings(tmp_path, store, **overrides), registry=REGISTRY
    )
    try:
        yield running
    finally:
        await stop_gateway(running)


def admin_stub(running: RunningGateway) -> admin_service_pb2_grpc.AdminServiceAsyncStub:
    return admin_service_pb2_grpc.AdminServiceStub(running.channel)  # type: ignore[return-value]

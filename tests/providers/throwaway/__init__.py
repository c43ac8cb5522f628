"""A throw-away provider, written the way a new one is: this package and one registry
line (``PROVIDERS.with_providers(SPEC)``). Its webhooks are ``{"parcel": id, "status":
"moving" | "delivered" | "lost"}`` posted to ``/webhooks/{source}/events``, with an API
key header, and it wants ``{"ok": true}`` back instead of the gateway's JSON. An event
may carry its own id (``"event"``: the same id twice is one delivery sent again) and
the unix time it was sent (``"sent_at"``: older than a minute on arrival is refused)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from statusgate.config import ApiConfig, EnvName, SetupProblems, SourceConfig
from statusgate.core.names import make_name
from statusgate.providers.base import InvalidPayloadError, JSONObject, UnknownShapeError
from statusgate.providers.common import build_status
from statusgate.providers.polling import Poller, UnconfiguredPoller
from statusgate.providers.spec import (
    EncodedReply,
    ManualRegistration,
    ProviderSpec,
    Refusal,
    WebhookContext,
    WebhookReply,
    same_for_every_source,
)
from statusgate.upstream.http import Sleep
from statusgate.v1.status_pb2 import Provider, Stage, State, Status

STATES = {
    "moving": State.STATE_IN_PROGRESS,
    "delivered": State.STATE_COMPLETED,
    "lost": State.STATE_FAILED,
}


class ParcelApi(ApiConfig):
    api_key_env: EnvName | None = None


class ParcelSource(SourceConfig):
    provider: Literal["parcels"]
    api: ParcelApi = ParcelApi()


class ParcelAdapter:
    provider: ClassVar[Provider.ValueType] = Provider.PROVIDER_UNSPECIFIED

    def normalize(
        self, source: SourceConfig, payload: JSONObject, *, path: str = ""
    ) -> list[Status]:
        if "parcel" not in payload:
            raise UnknownShapeError("not a parcel event")
        parcel, word = payload.get("parcel"), payload.get("status")
        if not isinstance(parcel, str) or word not in STATES:
            raise InvalidPayloadError(f"parcel event: bad parcel or status {word!r}")
        name = make_name(source.id, "payments", parcel)
        return [
            build_status(
                name,
                self.provider,
                STATES[word],
                Stage.STAGE_PAYMENT,
                final_stage=Stage.STAGE_PAYMENT,
                provider_state=word,
            )
        ]


def parcel_poller(source: Any, *, sleep: Sleep = asyncio.sleep) -> Poller:
    found = SetupProblems()
    if source.api.api_key_env:
        found.secret("api_key_env", source.api.api_key_env)
    found.check()
    return UnconfiguredPoller(source.id, ["base_url"])


class ParcelAcknowledgement:
    def encode(self, request_body: bytes | None, reply: WebhookReply) -> EncodedReply:
        ok = 200 <= reply.status < 300
        answer: dict[str, Any] = {"ok": ok, "status": reply.status}
        if reply.provider_code:
            answer["code"] = reply.provider_code
        body = json.dumps(answer).encode()
        return EncodedReply(reply.status, body, {"Content-Type": "application/json"})


def event_id(payload: Mapping[str, Any]) -> str | None:
    event = payload.get("event")
    return event if isinstance(event, str) else None


def sent_too_long_ago(
    source: Any, payload: Mapping[str, Any], context: WebhookContext
) -> Refusal | None:
    sent_at = payload.get("sent_at")
    if isinstance(sent_at, int) and context.received_at.timestamp() - sent_at > 60:
        return Refusal("sent more than a minute ago", code="stale")
    return None


SPEC = ProviderSpec(
    name="parcels",
    label="Parcels",
    source_model=ParcelSource,
    adapter=ParcelAdapter(),
    poller=parcel_poller,
    registration=ManualRegistration("Paste {url} into the parcel dashboard."),
    fixtures=Path(__file__).parent / "fixtures",
    webhook_paths=frozenset({"events"}),
    acknowledgement=same_for_every_source(ParcelAcknowledgement()),
    screen=sent_too_long_ago,
    idempotency_key=event_id,
)

"""What a provider package exports: one ``ProviderSpec``, and nothing else is needed.

The registry is a list of specs. The config union, the default sources of a gateway
started with no config, ``check-config``, ``register-webhook``, the front door's
sub-paths and answers, and the shared contract tests are all derived from it, so a new
provider is its package and one registry line.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from statusgate.config import SourceConfig
from statusgate.providers.base import WebhookAdapter
from statusgate.providers.polling import Poller
from statusgate.providers.scenarios import Scenario
from statusgate.upstream.http import Sleep


class PollerFactory(Protocol):
    def __call__(self, source: Any, *, sleep: Sleep = asyncio.sleep) -> Poller:
        """The source's poller (with its API client). Reads its secrets and files now:
        an unset variable or an unusable file raises ValueError, so start-up fails."""
        ...


@dataclass(frozen=True, slots=True)
class ManualRegistration:
    """The provider has no API to register a webhook URL: where a person sets it."""

    # "{url}" stands for the URL to register.
    instructions: str

    def describe(self, url: str) -> str:
        return self.instructions.format(url=url)


@dataclass(frozen=True, slots=True)
class RegistrationStep:
    """One registration call's outcome (FinBox registers two flows, for example)."""

    label: str
    ok: bool
    detail: str


class RegistrationError(Exception):
    """Registration could not be attempted (its credentials are not configured); the
    message says which settings to fill in."""


# Register ``url`` with the provider of ``source`` through its API.
ApiRegistration = Callable[[Any, str], Awaitable[list[RegistrationStep]]]
WebhookRegistration = ManualRegistration | ApiRegistration


@dataclass(frozen=True, slots=True)
class WebhookReply:
    """An answer of the front door, before it is encoded: the status and the gateway's
    own JSON document (``{"delivery_id", "events"}`` or ``{"error": {"code",
    "message"}}``).

    For answers in a provider's own vocabulary, a refusal also says what exactly was
    refused: ``provider_code`` is the adapter's (or the screen's) name for an invalid
    payload (``InvalidPayloadError.code``, ``Refusal.code``), and ``failed_check`` the
    webhook authentication method that refused the request (``"jws"``,
    ``"shared_secret"``...). Both are empty when they do not apply."""

    status: int
    document: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    provider_code: str = ""
    failed_check: str = ""


@dataclass(frozen=True, slots=True)
class EncodedReply:
    status: int
    body: bytes
    headers: Mapping[str, str]


class Acknowledgement(Protocol):
    """How a provider expects to be answered. ``request_body`` is the raw body of the
    request being answered (None when it was refused before its body was read)."""

    def encode(self, request_body: bytes | None, reply: WebhookReply) -> EncodedReply: ...


class AcknowledgementFactory(Protocol):
    def __call__(self, source: Any) -> Acknowledgement:
        """The answers of one source (a provider may sign them with the source's own
        key). Reads its keys now: an unusable one raises SetupError, located relative
        to the source's table (``signing.private_key_file``), so start-up fails."""
        ...


class JsonAcknowledgement:
    """The gateway's own JSON answer, which every provider but a ReBIT AA accepts."""

    def encode(self, request_body: bytes | None, reply: WebhookReply) -> EncodedReply:
        # orjson writes the same compact JSON as json.dumps with these separators, in a
        # fraction of the time; json.dumps escapes non-ASCII, so it has any such answer.
        body = orjson.dumps(reply.document)
        if not body.isascii():
            body = json.dumps(reply.document, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", **reply.headers}
        return EncodedReply(reply.status, body, headers)


JSON_ACKNOWLEDGEMENT = JsonAcknowledgement()


def same_for_every_source(acknowledgement: Acknowledgement) -> AcknowledgementFactory:
    """A provider whose answers do not depend on the source."""

    def factory(source: Any) -> Acknowledgement:
        return acknowledgement

    return factory


JSON_ANSWERS = same_for_every_source(JSON_ACKNOWLEDGEMENT)


# --- what only the front door checks --------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookContext:
    """What the front door knows of a webhook besides its body: the sub-path it was
    posted to ("" for ``/webhooks/{source}`` itself), its headers and when it arrived."""

    path: str
    headers: Mapping[str, str] = field(repr=False, default_factory=dict)
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the front door refuses an authentic webhook that its adapter could map: the
    delivery is kept as *rejected* with ``message`` and answered 400 (``code`` is the
    provider's own name for the problem, for answers in its vocabulary)."""

    message: str
    code: str = ""


# Checks of a new webhook that depend on where and when it arrived (the sub-path, a
# timestamp window). Replays judge a stored body by its content alone, so they skip it.
WebhookScreen = Callable[[Any, Mapping[str, Any], WebhookContext], Refusal | None]
# The provider's own id of a delivery it may send again (a ReBIT txnid); None when the
# payload has none. The same key with the same content again is a duplicate (200, no
# event); with other content it is a conflict (409, kept as rejected).
IdempotencyKey = Callable[[Mapping[str, Any]], str | None]


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    # The ``provider`` key of a source's config: "finbox".
    name: str
    # How people write it: "FinBox".
    label: str
    # The pydantic model of a source of this provider; its ``provider`` field is
    # ``Literal[name]`` (the config union is discriminated on it).
    source_model: type[SourceConfig]
    adapter: WebhookAdapter
    poller: PollerFactory
    registration: WebhookRegistration
    # Golden payloads with their expected statuses, run by the shared contract tests.
    fixtures: Path
    # The id of the source a gateway with no config file gets (None: none).
    default_source: str | None = None
    # The paths under ``POST /webhooks/{source}`` the provider posts to, "" being that
    # URL itself (a ReBIT AA appends ``Consent/Notification``); every other one is 404.
    webhook_paths: frozenset[str] = frozenset({""})
    # The shape of its answers, per source.
    acknowledgement: AcknowledgementFactory = JSON_ANSWERS
    # (parent collection, collection) pairs of its names whose ids are account numbers
    # (built from an account-number field): the logs show their last four characters
    # only. Ids the provider makes up itself are not listed, so they stay searchable.
    account_number_segments: frozenset[tuple[str, str]] = frozenset()
    # Keys of its JSON payloads, at any depth, whose values are account numbers: where
    # an operator reads a raw delivery (the console) they show the last four characters
    # only, like the logs' names.
    account_number_fields: frozenset[str] = frozenset()
    # Front-door checks of new webhooks, after authentication and mapping, before the
    # delivery is kept (see ``WebhookScreen``); None: none.
    screen: WebhookScreen | None = None
    # Its deliveries' own ids (see ``IdempotencyKey``); None: it has none.
    idempotency_key: IdempotencyKey | None = None
    # Realistic sequences of its webhooks for ``statusgate simulate``, made of its
    # fixtures (``providers.scenarios``); at least one should end in a failure.
    scenarios: tuple[Scenario, ...] = ()

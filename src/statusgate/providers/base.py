"""What every provider adapter offers, and the errors it may raise.

An adapter is declarative about its provider and pure in its mapping: given a source's
configuration and a decoded payload, it returns canonical ``Status`` updates. It knows
nothing of HTTP handlers, gRPC or storage, so webhooks, polls and replays share it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from pydantic import ValidationError

from statusgate.config import SourceConfig
from statusgate.v1.status_pb2 import Provider, Status

JSONObject = dict[str, Any]


class UnknownShapeError(Exception):
    """Authentic JSON this adapter does not recognise: kept as *unmapped* (202)."""


class InvalidPayloadError(Exception):
    """A recognised payload whose content is unusable: kept as *rejected* (400).

    The message says precisely what is wrong, so the sender can fix it. ``code`` is the
    provider's own name for the problem, when its answers have a vocabulary of them
    (a ReBIT AA expects ``InvalidConsentStatus``...); empty otherwise.
    """

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code

    @classmethod
    def from_validation(cls, label: str, error: ValidationError) -> InvalidPayloadError:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '<root>'}: {e['msg']}"
            for e in error.errors(include_url=False)[:10]
        )
        return cls(f"invalid {label}: {problems}")


class WebhookAdapter(Protocol):
    """Maps one provider's webhook payloads."""

    provider: ClassVar[Provider.ValueType]

    def normalize(
        self, source: SourceConfig, payload: JSONObject, *, path: str = ""
    ) -> list[Status]:
        """Canonical updates for ``payload``, in the order they should be applied.
        ``path`` is the sub-path under ``/webhooks/{source}`` it was posted to (one of
        the spec's ``webhook_paths``; "" for that URL itself), the same on a replay.

        Raises UnknownShapeError or InvalidPayloadError; never anything else for any
        JSON object (the contract tests feed it mutated payloads to prove it).
        """
        ...

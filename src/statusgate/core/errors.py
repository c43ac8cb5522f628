"""The reasons a request (or one name of it) fails, in the gateway's own words.

Handlers and pollers raise ``ApiError(reason, message)``; the transports turn it into
their own shape in one place each (``rpc.errors`` for gRPC: the status code and a
``google.rpc.Status`` with an ``ErrorInfo`` carrying ``reason``). The reason strings
are part of the API: clients switch on them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Reason(enum.StrEnum):
    # The request itself.
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    INVALID_NAME = "INVALID_NAME"
    INVALID_CONDITION = "INVALID_CONDITION"
    TOO_MANY_NAMES = "TOO_MANY_NAMES"
    FILTER_TOO_LARGE = "FILTER_TOO_LARGE"
    # A Watch cursor beyond the last sequence (metadata: last_sequence).
    SEQUENCE_OUT_OF_RANGE = "SEQUENCE_OUT_OF_RANGE"
    # Who asks.
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    SOURCE_NOT_PERMITTED = "SOURCE_NOT_PERMITTED"
    TOO_MANY_STREAMS = "TOO_MANY_STREAMS"
    # What the gateway knows.
    SOURCE_NOT_FOUND = "SOURCE_NOT_FOUND"
    STATUS_NOT_FOUND = "STATUS_NOT_FOUND"
    DELIVERY_NOT_FOUND = "DELIVERY_NOT_FOUND"
    # The gateway's own state.
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
    WAIT_TIMEOUT = "WAIT_TIMEOUT"
    # Polling one name (PollResult.error).
    POLLING_NOT_CONFIGURED = "POLLING_NOT_CONFIGURED"
    POLLING_NOT_SUPPORTED = "POLLING_NOT_SUPPORTED"
    NOT_IN_ANSWER = "NOT_IN_ANSWER"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    POLL_FAILED = "POLL_FAILED"
    # What the provider's API did.
    UPSTREAM_NOT_FOUND = "UPSTREAM_NOT_FOUND"
    UPSTREAM_AUTH_FAILED = "UPSTREAM_AUTH_FAILED"
    UPSTREAM_BAD_REQUEST = "UPSTREAM_BAD_REQUEST"
    UPSTREAM_REJECTED = "UPSTREAM_REJECTED"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UPSTREAM_RATE_LIMITED = "UPSTREAM_RATE_LIMITED"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    UPSTREAM_BAD_RESPONSE = "UPSTREAM_BAD_RESPONSE"
    UPSTREAM_ANSWER_INVALID = "UPSTREAM_ANSWER_INVALID"


# The gRPC status code (its name) of each reason: ``rpc.errors`` answers with it, and
# the metrics count a poll's per-name error by it.
GRPC_CODES: dict[Reason, str] = {
    Reason.INVALID_ARGUMENT: "INVALID_ARGUMENT",
    Reason.INVALID_NAME: "INVALID_ARGUMENT",
    Reason.INVALID_CONDITION: "INVALID_ARGUMENT",
    Reason.TOO_MANY_NAMES: "INVALID_ARGUMENT",
    Reason.FILTER_TOO_LARGE: "INVALID_ARGUMENT",
    Reason.SEQUENCE_OUT_OF_RANGE: "OUT_OF_RANGE",
    Reason.UNAUTHENTICATED: "UNAUTHENTICATED",
    Reason.PERMISSION_DENIED: "PERMISSION_DENIED",
    Reason.SOURCE_NOT_PERMITTED: "PERMISSION_DENIED",
    Reason.TOO_MANY_STREAMS: "RESOURCE_EXHAUSTED",
    Reason.SOURCE_NOT_FOUND: "NOT_FOUND",
    Reason.STATUS_NOT_FOUND: "NOT_FOUND",
    Reason.DELIVERY_NOT_FOUND: "NOT_FOUND",
    Reason.STORE_UNAVAILABLE: "UNAVAILABLE",
    Reason.SHUTTING_DOWN: "UNAVAILABLE",
    Reason.NOT_IMPLEMENTED: "UNIMPLEMENTED",
    Reason.WAIT_TIMEOUT: "DEADLINE_EXCEEDED",
    Reason.POLLING_NOT_CONFIGURED: "FAILED_PRECONDITION",
    Reason.POLLING_NOT_SUPPORTED: "UNIMPLEMENTED",
    Reason.NOT_IN_ANSWER: "NOT_FOUND",
    Reason.DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED",
    Reason.POLL_FAILED: "INTERNAL",
    Reason.UPSTREAM_NOT_FOUND: "NOT_FOUND",
    Reason.UPSTREAM_AUTH_FAILED: "PERMISSION_DENIED",
    Reason.UPSTREAM_BAD_REQUEST: "INVALID_ARGUMENT",
    Reason.UPSTREAM_REJECTED: "FAILED_PRECONDITION",
    Reason.UPSTREAM_UNAVAILABLE: "UNAVAILABLE",
    Reason.UPSTREAM_RATE_LIMITED: "UNAVAILABLE",
    Reason.UPSTREAM_TIMEOUT: "UNAVAILABLE",
    Reason.UPSTREAM_BAD_RESPONSE: "UNAVAILABLE",
    Reason.UPSTREAM_ANSWER_INVALID: "INTERNAL",
}


class ApiError(Exception):
    """A failure a client can act on: a reason from ``Reason``, a message that says
    what went wrong where (never a secret: messages quote provider answers only), and
    ``metadata`` a client can use without parsing the message (the ErrorInfo's)."""

    def __init__(
        self, reason: Reason, message: str, *, metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.metadata = dict(metadata or {})

    def __repr__(self) -> str:
        return f"ApiError({self.reason}, {self.message!r})"

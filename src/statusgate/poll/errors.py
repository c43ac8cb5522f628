"""Why one name could not be polled, as a ``google.rpc.Status`` a client can act on.

A poll error belongs to one name of a PollStatuses batch: it never fails the others.
The ErrorInfo ``reason`` values are part of the API (README.md, "Polling").
"""

from __future__ import annotations

import grpc
from google.rpc import status_pb2

from statusgate.rpc.errors import rich_status

# ErrorInfo reasons of PollResult.error.
INVALID_NAME = "INVALID_NAME"
SOURCE_NOT_FOUND = "SOURCE_NOT_FOUND"
POLLING_NOT_CONFIGURED = "POLLING_NOT_CONFIGURED"
POLLING_NOT_SUPPORTED = "POLLING_NOT_SUPPORTED"
UPSTREAM_NOT_FOUND = "UPSTREAM_NOT_FOUND"
UPSTREAM_AUTH_FAILED = "UPSTREAM_AUTH_FAILED"
UPSTREAM_BAD_REQUEST = "UPSTREAM_BAD_REQUEST"
UPSTREAM_REJECTED = "UPSTREAM_REJECTED"
UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
UPSTREAM_RATE_LIMITED = "UPSTREAM_RATE_LIMITED"
UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
UPSTREAM_BAD_RESPONSE = "UPSTREAM_BAD_RESPONSE"
UPSTREAM_ANSWER_INVALID = "UPSTREAM_ANSWER_INVALID"
NOT_IN_ANSWER = "NOT_IN_ANSWER"
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
POLL_FAILED = "POLL_FAILED"


class PollError(Exception):
    """A per-name poll failure: a gRPC code, an ErrorInfo reason and a message that says
    what went wrong where (never a secret: messages quote provider answers only)."""

    def __init__(self, code: grpc.StatusCode, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message

    def to_status(self) -> status_pb2.Status:
        return rich_status(self.code, self.message, self.reason)

    def __repr__(self) -> str:
        return f"PollError({self.code.name}, {self.reason}, {self.message!r})"


def not_configured(source: str, missing: list[str]) -> PollError:
    settings = ", ".join(f"sources.{source}.api.{name}" for name in missing)
    return PollError(
        grpc.StatusCode.FAILED_PRECONDITION,
        POLLING_NOT_CONFIGURED,
        f"source {source!r} cannot poll its provider: set {settings}",
    )


def not_supported(message: str) -> PollError:
    return PollError(grpc.StatusCode.UNIMPLEMENTED, POLLING_NOT_SUPPORTED, message)


def answer_invalid(what: str, problem: str) -> PollError:
    # The provider answered, in JSON, something our mapping refuses: a gap on our side
    # (or a provider change), which retrying will not fix.
    return PollError(
        grpc.StatusCode.INTERNAL,
        UPSTREAM_ANSWER_INVALID,
        f"{what}: the answer could not be mapped: {problem}",
    )

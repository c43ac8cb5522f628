"""The one place an ``ApiError`` becomes a gRPC error: its status code, and a
``google.rpc.Status`` whose ``ErrorInfo`` carries the reason a client switches on.

Handlers raise; ``rpc.handlers`` calls ``abort`` for every StatusService call, which is
also where a store outage, raised from anywhere below a handler, becomes
STORE_UNAVAILABLE.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn, assert_never

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from statusgate.core.errors import ApiError, Reason
from statusgate.store.base import StoreUnavailableError

DOMAIN = "statusgate.v1"

CODES: dict[Reason, grpc.StatusCode] = {
    Reason.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.INVALID_NAME: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.INVALID_CONDITION: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.TOO_MANY_NAMES: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.FILTER_TOO_LARGE: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.SEQUENCE_OUT_OF_RANGE: grpc.StatusCode.OUT_OF_RANGE,
    Reason.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Reason.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.SOURCE_NOT_PERMITTED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.TOO_MANY_STREAMS: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.SOURCE_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.STATUS_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.DELIVERY_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.STORE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Reason.SHUTTING_DOWN: grpc.StatusCode.UNAVAILABLE,
    Reason.NOT_IMPLEMENTED: grpc.StatusCode.UNIMPLEMENTED,
    Reason.WAIT_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    Reason.POLLING_NOT_CONFIGURED: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.POLLING_NOT_SUPPORTED: grpc.StatusCode.UNIMPLEMENTED,
    Reason.NOT_IN_ANSWER: grpc.StatusCode.NOT_FOUND,
    Reason.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    Reason.POLL_FAILED: grpc.StatusCode.INTERNAL,
    Reason.UPSTREAM_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.UPSTREAM_AUTH_FAILED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.UPSTREAM_BAD_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.UPSTREAM_REJECTED: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.UPSTREAM_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Reason.UPSTREAM_RATE_LIMITED: grpc.StatusCode.UNAVAILABLE,
    Reason.UPSTREAM_TIMEOUT: grpc.StatusCode.UNAVAILABLE,
    Reason.UPSTREAM_BAD_RESPONSE: grpc.StatusCode.UNAVAILABLE,
    Reason.UPSTREAM_ANSWER_INVALID: grpc.StatusCode.INTERNAL,
}


def code_of(error: ApiError) -> grpc.StatusCode:
    return CODES[error.reason]


def rich_status(
    code: grpc.StatusCode, message: str, reason: str, metadata: Mapping[str, str] | None = None
) -> status_pb2.Status:
    """A google.rpc.Status carrying an ErrorInfo with a machine-readable reason."""
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata))
    return status_pb2.Status(code=code.value[0], message=message, details=[detail])


def to_status(error: ApiError) -> status_pb2.Status:
    return rich_status(code_of(error), error.message, error.reason, error.metadata)


def api_error(error: ApiError | StoreUnavailableError) -> ApiError:
    match error:
        case ApiError():
            return error
        case StoreUnavailableError():
            # Its text may name the database's host or file: the client learns only
            # that retrying later is the remedy.
            return ApiError(Reason.STORE_UNAVAILABLE, "the store is unavailable")
        case _:
            assert_never(error)


async def abort(
    context: grpc.aio.ServicerContext[Any, Any], error: ApiError | StoreUnavailableError
) -> NoReturn:
    status = rpc_status.to_status(to_status(api_error(error)))
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("abort returned")  # pragma: no cover


def code_name(code: int) -> str:
    return str(code_pb2.Code.Name(code))

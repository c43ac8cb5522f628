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

from statusgate.core.errors import GRPC_CODES, ApiError, Reason
from statusgate.store.base import StoreUnavailableError

DOMAIN = "statusgate.v1"

CODES: dict[Reason, grpc.StatusCode] = {
    reason: grpc.StatusCode[name] for reason, name in GRPC_CODES.items()
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

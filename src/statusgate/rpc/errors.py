"""gRPC errors with ``google.rpc.Status`` details a client can act on."""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "statusgate.v1"


def rich_status(code: grpc.StatusCode, message: str, reason: str) -> status_pb2.Status:
    """A google.rpc.Status carrying an ErrorInfo with a machine-readable reason."""
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN))
    return status_pb2.Status(code=code.value[0], message=message, details=[detail])


async def abort(
    context: grpc.aio.ServicerContext[Any, Any],
    code: grpc.StatusCode,
    message: str,
    reason: str,
) -> NoReturn:
    status = rpc_status.to_status(rich_status(code, message, reason))
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("abort returned")  # pragma: no cover


def code_name(code: int) -> str:
    return str(code_pb2.Code.Name(code))

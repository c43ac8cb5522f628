"""Errors of the JSON API: the HTTP form of ``google.rpc.Status``.

``{"error": {"code": 404, "status": "NOT_FOUND", "message": "...", "details": [...]}}``
with the HTTP status AIP-193 gives each gRPC code. The status itself is the one the
gRPC door would answer (``rpc.errors.to_status``: the same code and ``ErrorInfo``
reason), so a client can switch on ``details[].reason`` over either transport.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from google.protobuf import any_pb2, json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2

from statusgate.core.errors import ApiError, Reason
from statusgate.rpc.errors import api_error, to_status
from statusgate.store.base import StoreUnavailableError

# AIP-193: the HTTP status of each google.rpc.Code.
HTTP_STATUS: dict[int, int] = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}


def error_document(status: status_pb2.Status) -> dict[str, Any]:
    return {
        "error": {
            "code": HTTP_STATUS.get(status.code, 500),
            "status": code_pb2.Code.Name(status.code),
            "message": status.message,
            "details": [json_format.MessageToDict(detail) for detail in status.details],
        }
    }


def status_of(error: ApiError | StoreUnavailableError) -> status_pb2.Status:
    return to_status(api_error(error))


def bad_request(field: str, description: str) -> status_pb2.Status:
    """INVALID_ARGUMENT naming the field, with a ``google.rpc.BadRequest`` detail."""
    message = f"{field}: {description}" if field else description
    status = to_status(ApiError(Reason.INVALID_ARGUMENT, message))
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
            ]
        )
    )
    status.details.append(detail)
    return status


def internal() -> status_pb2.Status:
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")


def not_found_route(path: str) -> status_pb2.Status:
    return status_pb2.Status(code=code_pb2.NOT_FOUND, message=f"no API route for {path}")


def method_not_allowed(method: str, path: str, allowed: list[str]) -> web.Response:
    """405 is no gRPC code: it goes out as UNIMPLEMENTED (as grpc-gateway does) with
    the HTTP status and the Allow header that HTTP asks for."""
    document = error_document(
        status_pb2.Status(
            code=code_pb2.UNIMPLEMENTED,
            message=f"{path} takes {', '.join(allowed)}, not {method}",
        )
    )
    document["error"]["code"] = 405
    return web.Response(
        status=405,
        body=json.dumps(document, separators=(",", ":")).encode(),
        content_type="application/json",
        headers={"Allow": ", ".join(allowed)},
    )


def response(status: status_pb2.Status, headers: dict[str, str] | None = None) -> web.Response:
    document = error_document(status)
    if status.code == code_pb2.UNAUTHENTICATED:
        # RFC 6750: say which scheme the credentials must be in.
        headers = {"WWW-Authenticate": 'Bearer realm="statusgate"', **(headers or {})}
    return web.Response(
        status=document["error"]["code"],
        body=json.dumps(document, separators=(",", ":")).encode(),
        content_type="application/json",
        headers=headers,
    )

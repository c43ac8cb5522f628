"""How every StatusService call runs: the caller admitted for the RPC's permission,
then the handler, and any failure turned into the call's gRPC status, all in one place.

A handler gets the admitted ``Principal``; it raises ``ApiError`` and lets
``StoreUnavailableError`` through from whatever store call it makes, and the wrappers
here hand either to ``rpc.errors.abort``. So no handler checks permissions or aborts
by itself, and none can forget that the store may be down.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Protocol

import grpc
from google.protobuf.message import Message

from statusgate.config import Permission
from statusgate.core.errors import ApiError
from statusgate.rpc.access import AccessControl, Principal
from statusgate.rpc.errors import abort
from statusgate.store.base import StoreUnavailableError
from statusgate.telemetry import tracing

Context = grpc.aio.ServicerContext[Any, Any]


class CallContext(Protocol):
    """What a handler may ask of the call it serves, whichever transport carries it (a
    gRPC ServicerContext is one; the JSON API has its own)."""

    def time_remaining(self) -> float | None:
        """Seconds until the caller's deadline; None without one."""
        ...


# Responses of a stream may be bytes already serialized (see ``rpc.wire``).
Unary = Callable[[Any, Context, Principal], Awaitable[Message]]
Streaming = Callable[[Any, Context, Principal], AsyncGenerator[Message | bytes, None]]
# What grpc.aio calls.
UnaryCall = Callable[[Any, Context], Awaitable[Message]]
StreamingCall = Callable[[Any, Context], AsyncGenerator[Message | bytes, None]]


def unary(handler: Unary, access: AccessControl, permission: Permission) -> UnaryCall:
    async def call(request: Any, context: Context) -> Message:
        metadata = context.invocation_metadata()
        try:
            caller = access.admit(metadata, permission)
            # Tracing off: a caller's traceparent, for the events this call makes.
            with tracing.remote_parent(metadata):
                return await handler(request, context, caller)
        except (ApiError, StoreUnavailableError) as error:
            await abort(context, error)

    return call


def server_streaming(
    handler: Streaming, access: AccessControl, permission: Permission
) -> StreamingCall:
    async def call(request: Any, context: Context) -> AsyncGenerator[Message | bytes, None]:
        metadata = context.invocation_metadata()
        try:
            caller = access.admit(metadata, permission)
            # Closed with this wrapper, so the handler's own cleanup (a Watch stream's
            # slot, its hub subscription) runs when the client goes away.
            async with contextlib.aclosing(handler(request, context, caller)) as responses:
                with tracing.remote_parent(metadata):
                    async for response in responses:
                        yield response
        except (ApiError, StoreUnavailableError) as error:
            await abort(context, error)

    return call

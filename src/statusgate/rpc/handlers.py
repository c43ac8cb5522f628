"""How every StatusService call runs: the handler, and its failure turned into the
call's gRPC status in one place.

A handler raises ``ApiError`` and lets ``StoreUnavailableError`` through from whatever
store call it makes; the wrappers here hand either to ``rpc.errors.abort``. So no
handler aborts by itself, and none can forget that the store may be down.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from statusgate.core.errors import ApiError
from statusgate.rpc.errors import abort
from statusgate.store.base import StoreUnavailableError

Context = grpc.aio.ServicerContext[Any, Any]
# Responses of a stream may be bytes already serialized (see ``rpc.wire``).
Unary = Callable[[Any, Context], Awaitable[Message]]
Streaming = Callable[[Any, Context], AsyncGenerator[Message | bytes, None]]


def unary(handler: Unary) -> Unary:
    async def call(request: Any, context: Context) -> Message:
        try:
            return await handler(request, context)
        except (ApiError, StoreUnavailableError) as error:
            await abort(context, error)

    return call


def server_streaming(handler: Streaming) -> Streaming:
    async def call(request: Any, context: Context) -> AsyncGenerator[Message | bytes, None]:
        try:
            # Closed with this wrapper, so the handler's own cleanup (a Watch stream's
            # slot, its hub subscription) runs when the client goes away.
            async with contextlib.aclosing(handler(request, context)) as responses:
                async for response in responses:
                    yield response
        except (ApiError, StoreUnavailableError) as error:
            await abort(context, error)

    return call

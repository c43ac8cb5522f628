"""A grpc.aio server interceptor that counts every finished call by method and status
code, and times it (``statusgate_grpc_calls_total``, ``statusgate_grpc_call_seconds``).

The method label is the full name of a method the server has registered; a call to any
other name (which grpc answers UNIMPLEMENTED) is counted as ``unknown``, so a client
cannot mint label values. The code is the one the call ended with, as grpc.aio lets a
handler see it: ``context.code()`` after ``abort`` or ``set_code`` (None: OK), UNKNOWN
for an exception the handler let out, and for a call cut off from outside (the client
cancelled, its deadline passed, the server stopped) DEADLINE_EXCEEDED when no time was
left, else CANCELLED. A server-streaming call is wrapped as what it is (an async
generator, or a coroutine that writes), so its code is the one its stream ended with,
and its time is the whole stream's.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from statusgate.telemetry.metrics import Metrics

UNKNOWN_METHOD = "unknown"
if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]
    Handler = grpc.RpcMethodHandler[Any, Any]


class CallMetrics(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]  # generic in the stubs only
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        # method -> (the handler grpc found, our wrapper of it): generic handlers hand
        # out the same handler object for every call of a method.
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}
        # method -> code name -> counter child; method -> histogram child.
        self._calls: dict[str, dict[str, Any]] = {}
        self._seconds: dict[str, Any] = {}

    async def intercept_service(  # type: ignore[override]  # grpc returns None for unknown methods
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            self._finished(UNKNOWN_METHOD, "UNIMPLEMENTED", None)
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _finished(self, method: str, code: str, seconds: float | None) -> None:
        codes = self._calls.get(method)
        if codes is None:
            codes = self._calls[method] = {}
        child = codes.get(code)
        if child is None:
            child = codes[code] = self._metrics.grpc_calls.labels(method, code)
        child.inc()
        if seconds is not None:
            timer = self._seconds.get(method)
            if timer is None:
                timer = self._seconds[method] = self._metrics.grpc_seconds.labels(method)
            timer.observe(seconds)

    def _wrap(self, method: str, handler: Handler) -> Handler:
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(method, handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        assert handler.stream_stream is not None
        return grpc.stream_stream_rpc_method_handler(
            self._streaming(method, handler.stream_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _unary(self, method: str, behaviour: Any) -> Any:
        async def call(request: Any, context: Context) -> Any:
            started = time.perf_counter()
            code = "OK"
            try:
                response = await behaviour(request, context)
                code = _set_code(context)
                return response
            except BaseException as error:
                code = _failed_code(context, error)
                raise
            finally:
                self._finished(method, code, time.perf_counter() - started)

        return call

    def _streaming(self, method: str, behaviour: Any) -> Any:
        if not inspect.isasyncgenfunction(behaviour):
            # Writes its responses with context.write(): a coroutine like a unary call.
            return self._unary(method, behaviour)

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            started = time.perf_counter()
            code = "OK"
            responses = behaviour(request, context)
            try:
                async for response in responses:
                    yield response
                code = _set_code(context)
            except BaseException as error:
                code = _failed_code(context, error)
                raise
            finally:
                await responses.aclose()
                self._finished(method, code, time.perf_counter() - started)

        return stream


def _set_code(context: Context) -> str:
    code = context.code()
    return "OK" if code is None else str(code.name)


def _failed_code(context: Context, error: BaseException) -> str:
    code = context.code()
    if code is not None:  # aborted
        return str(code.name)
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        remaining = context.time_remaining()
        return "DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED"
    return "UNKNOWN"

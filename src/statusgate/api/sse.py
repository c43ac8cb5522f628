"""WatchStatuses over HTTP as Server-Sent Events.

``GET /v1/statuses:watch?after_sequence=N&filter.…`` answers ``text/event-stream``:

- one ``event: status`` per StatusEvent, its proto3 JSON in ``data:``, its sequence as
  the ``id:``;
- one ``event: caught_up`` (``data: {}``) once the replay reached the live tail, whose
  ``id:`` is the sequence the stream caught up with, so a reconnect misses nothing even
  when no event matched the filter;
- a comment (``: keep-alive``) after every ``sse_keepalive_seconds`` of silence, which
  keeps proxies from closing a quiet stream and tells the gateway the client left;
- ``event: error`` with the ``google.rpc.Status`` JSON when the stream ends (the
  gateway shutting down, the store failing): reconnect and resume.

A browser's ``EventSource`` reconnects to the same URL with ``Last-Event-ID``, which
wins over the URL's ``after_sequence``, so it resumes with no gap. Refusals (a bad
filter, no token, the client's stream limit, which gRPC and HTTP streams share) come
before the stream starts, as ordinary JSON errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web
from google.protobuf import json_format

from statusgate.api.errors import error_document, status_of
from statusgate.api.fields import FieldProblem
from statusgate.api.transcoder import StreamHandler
from statusgate.core.errors import ApiError
from statusgate.rpc.access import Principal
from statusgate.rpc.service import StatusService
from statusgate.store.base import StoreUnavailableError
from statusgate.v1 import status_pb2 as pb

LAST_EVENT_ID = "Last-Event-ID"
# How long a browser waits before reconnecting (the SSE "retry" field, milliseconds).
RETRY_MILLISECONDS = 1000


def watch_handler(keepalive_seconds: float) -> StreamHandler:
    async def serve(
        request: web.Request, message: Any, service: Any, caller: Principal
    ) -> web.StreamResponse:
        assert isinstance(service, StatusService) and isinstance(message, pb.WatchStatusesRequest)
        last = request.headers.get(LAST_EVENT_ID, "").strip()
        if last:
            if not last.isdigit():
                raise FieldProblem(LAST_EVENT_ID, f"{last!r} is not a sequence number")
            message.after_sequence = int(last)
        stream = await service.watch(message, caller)
        try:
            return await _serve(request, stream, keepalive_seconds)
        finally:
            await stream.close()

    return serve


async def _serve(request: web.Request, stream: Any, keepalive: float) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            # Proxies (nginx) must pass each event on at once, not buffer the stream.
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    await response.write(f"retry: {RETRY_MILLISECONDS}\n\n".encode())
    batches = stream.batches()
    pending: asyncio.Future[list[pb.StatusEvent]] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(batches))
            # wait, not wait_for: a timeout must not cancel (and so end) the generator.
            done, _ = await asyncio.wait({pending}, timeout=keepalive)
            if not done:
                await response.write(b": keep-alive\n\n")
                continue
            batch, pending = pending.result(), None
            await response.write(_frames(batch, stream.head_sequence))
    except StopAsyncIteration:
        pass
    except (ApiError, StoreUnavailableError) as error:
        document = json.dumps(error_document(status_of(error)), separators=(",", ":"))
        with contextlib.suppress(ConnectionError):
            await response.write(f"event: error\ndata: {document}\n\n".encode())
    except ConnectionError:
        pass  # the client went away
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        await batches.aclose()
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


def _frames(batch: list[pb.StatusEvent], head: int) -> bytes:
    if not batch:
        return f"id: {head}\nevent: caught_up\ndata: {{}}\n\n".encode()
    parts = []
    for event in batch:
        data = json.dumps(json_format.MessageToDict(event), separators=(",", ":"))
        parts.append(f"id: {event.sequence}\nevent: status\ndata: {data}\n\n")
    return "".join(parts).encode()

"""``statusgate tail``: follow WatchStatuses, resuming by itself.

It starts at the live head (``--after N`` replays from N first) and remembers where it
is: the last event's sequence, or the head the stream said it caught up with (so a
filter that matches nothing for a while does not make a resume replay everything
since). When the stream breaks (a network drop, the gateway restarting or draining)
it reconnects with backoff and resumes right after that point, so no event is lost or
printed twice. Errors a retry cannot fix (a bad token, a bad filter) end it.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

import grpc

from statusgate.client.connection import Target
from statusgate.client.formatting import event_line, json_line
from statusgate.v1 import status_pb2 as pb
from statusgate.v1 import status_service_pb2_grpc

# Codes after which the same request may well succeed later.
RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.ABORTED,
}
FIRST_DELAY = 0.2
MAX_DELAY = 5.0


async def tail(
    target: Target,
    status_filter: pb.StatusFilter,
    *,
    after: int | None,
    json_lines: bool,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    position = after
    delay = FIRST_DELAY
    while True:
        request = pb.WatchStatusesRequest(filter=status_filter)
        if position is not None:
            request.after_sequence = position
        try:
            async with target.channel() as channel:
                stub = status_service_pb2_grpc.StatusServiceStub(channel)
                call = stub.WatchStatuses(request, metadata=target.metadata())
                async for response in call:
                    delay = FIRST_DELAY
                    for event in response.events:
                        print(json_line(event) if json_lines else event_line(event), file=out)
                        position = max(position or 0, event.sequence)
                    out.flush()
                    if response.caught_up:
                        position = max(position or 0, response.head_sequence)
            reason = "the stream ended"
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE:
                print(f"statusgate tail: {error.code().name}: {error.details()}", file=err)
                return 1
            reason = f"{error.code().name}: {error.details()}"
        where = "the live head" if position is None else f"sequence {position}"
        print(f"statusgate tail: {reason}; resuming after {where}", file=err, flush=True)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_DELAY)

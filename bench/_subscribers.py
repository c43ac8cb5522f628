"""Watch subscribers for the benchmarks, in their own process (grpc.aio).

``python -m bench._subscribers --target HOST:PORT --subscribers 100 --expect N --out F``
opens one WatchStatuses stream per subscriber, each on its own channel (so its own TCP
connection, as separate clients would have), live tail only. Once every stream has
received its ``caught_up`` marker it prints ``READY`` on stdout; the benchmark starts
its load then. Each subscriber stamps every message with ``time.monotonic_ns()`` as
soon as grpc hands it over (decoded), and stops after ``N`` events. The worker then
writes, per subscriber, the sequences it got and when, as JSON to ``F``, for the
benchmark to join with its send times. It checks nothing itself: the benchmark does.

With ``--filtered-prefix P`` subscriber i watches only the session named
``sources/finbox/sessions/P{i:07d}`` (a filter on its name), and ``--channels C`` puts
the streams on C channels (connections) in turn, as many clients each watching a few
sessions would: thousands of connections would measure the TCP stack instead.
``--open-batch B`` opens the streams B at a time, each group caught up before the next.
A stream that ends with an error counts as ready (its error is in the output).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from statusgate.v1 import status_pb2 as pb
from statusgate.v1 import status_service_pb2_grpc


@dataclass(slots=True)
class Received:
    sequences: list[int] = field(default_factory=list)
    received_ns: list[int] = field(default_factory=list)
    messages: int = 0
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "sequences": self.sequences,
            "received_ns": self.received_ns,
            "messages": self.messages,
            "error": self.error,
        }


async def subscribe(
    stub: status_service_pb2_grpc.StatusServiceAsyncStub,
    expect: int,
    caught_up: asyncio.Event,
    log: Received,
    status_filter: pb.StatusFilter | None = None,
) -> None:
    call = stub.WatchStatuses(pb.WatchStatusesRequest(filter=status_filter))
    try:
        async for message in call:
            now = time.monotonic_ns()
            if message.caught_up:
                caught_up.set()
            if not message.events:
                continue
            log.messages += 1
            for event in message.events:
                log.sequences.append(event.sequence)
                log.received_ns.append(now)
            if len(log.sequences) >= expect:
                return
        log.error = "the stream ended"
    except grpc.aio.AioRpcError as error:
        log.error = f"{error.code().name}: {error.details()}"
    finally:
        caught_up.set()  # ended: READY must not wait for it (its error is recorded)
        call.cancel()


async def run(
    target: str,
    subscribers: int,
    expect: int,
    timeout: float,
    out: Path,
    *,
    filtered_prefix: str | None = None,
    channel_count: int | None = None,
    open_batch: int | None = None,
) -> int:
    # A local subchannel pool per channel: without it grpc shares one connection among
    # channels with equal arguments, and 100 "clients" would be one TCP connection.
    options = [("grpc.use_local_subchannel_pool", 1)]
    count = min(channel_count or subscribers, subscribers) or 1
    channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(count)]
    stubs = [status_service_pb2_grpc.StatusServiceStub(channel) for channel in channels]
    logs = [Received() for _ in range(subscribers)]
    ready = [asyncio.Event() for _ in range(subscribers)]
    filters = [
        None
        if filtered_prefix is None
        else pb.StatusFilter(names=[f"sources/finbox/sessions/{filtered_prefix}{i:07d}"])
        for i in range(subscribers)
    ]
    tasks: list[asyncio.Task[None]] = []
    try:
        # Opened in groups, each caught up before the next opens: what is measured is
        # the streams being served, not how many calls a server takes at once.
        group = open_batch or subscribers
        for start in range(0, subscribers, group):
            opened = range(start, min(start + group, subscribers))
            tasks += [
                asyncio.create_task(
                    subscribe(stubs[i % count], expect, ready[i], logs[i], filters[i])
                )
                for i in opened
            ]
            await asyncio.wait_for(asyncio.gather(*(ready[i].wait() for i in opened)), 120)
        print("READY", flush=True)
        _, pending = await asyncio.wait(tasks, timeout=timeout) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        for task, log in zip(tasks, logs, strict=True):
            if task in pending and log.error is None:
                log.error = f"timed out after {timeout} s with {len(log.sequences)} events"
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await asyncio.gather(*(channel.close(None) for channel in channels))
    out.write_text(json.dumps({"subscribers": [log.as_json() for log in logs]}))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True, help="HOST:PORT of the gateway's gRPC")
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--expect", type=int, required=True, help="events each one waits for")
    parser.add_argument("--timeout", type=float, default=60, help="seconds after READY")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--filtered-prefix", help="subscriber i watches session PREFIX{i:07d}")
    parser.add_argument("--channels", type=int, help="channels the streams share (one each)")
    parser.add_argument("--open-batch", type=int, help="open the streams this many at a time")
    args = parser.parse_args()
    sys.exit(
        asyncio.run(
            run(
                args.target,
                args.subscribers,
                args.expect,
                args.timeout,
                args.out,
                filtered_prefix=args.filtered_prefix,
                channel_count=args.channels,
                open_batch=args.open_batch,
            )
        )
    )


if __name__ == "__main__":
    main()

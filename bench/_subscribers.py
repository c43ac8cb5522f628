"""Watch subscribers for the benchmarks, in their own process (grpc.aio).

``python -m bench._subscribers --target HOST:PORT --subscribers 100 --expect N --out F``
opens one WatchStatuses stream per subscriber, each on its own channel (so its own TCP
connection, as separate clients would have), live tail only. Once every stream has
received its ``caught_up`` marker it prints ``READY`` on stdout; the benchmark starts
its load then. Each subscriber stamps every message with ``time.monotonic_ns()`` as
soon as grpc hands it over (decoded), and stops after ``N`` events. The worker then
writes, per subscriber, the sequences it got and when, as JSON to ``F``, for the
benchmark to join with its send times. It checks nothing itself: the benchmark does.
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
) -> None:
    call = stub.WatchStatuses(pb.WatchStatusesRequest())
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
        call.cancel()


async def run(target: str, subscribers: int, expect: int, timeout: float, out: Path) -> int:
    # A local subchannel pool per channel: without it grpc shares one connection among
    # channels with equal arguments, and 100 "clients" would be one TCP connection.
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(subscribers)]
    logs = [Received() for _ in range(subscribers)]
    ready = [asyncio.Event() for _ in range(subscribers)]
    tasks = [
        asyncio.create_task(
            subscribe(status_service_pb2_grpc.StatusServiceStub(channel), expect, event, log)
        )
        for channel, event, log in zip(channels, ready, logs, strict=True)
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in ready)), 30)
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
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args.target, args.subscribers, args.expect, args.timeout, args.out)))


if __name__ == "__main__":
    main()

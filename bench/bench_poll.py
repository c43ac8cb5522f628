"""Polling benchmark: PollStatuses latency against the slowest upstream call (the floor),
and upstream calls for concurrent identical polls.

    python -m bench.bench_poll            # the default run (~30 s)
    python -m bench.bench_poll --quick    # a smoke run (~10 s)

``statusgate serve`` runs as a subprocess on a fresh SQLite file, with one FinBox source
whose API is the fake FinBox of the tests (``tests.fakes.finbox``), served by this
process on loopback with injected latency: ``session_upload_status`` answers after
``--upload-ms``, ``progress`` after ``--progress-ms``. A FinBox session is described by
both, so one PollStatuses of one session name costs two upstream calls, which the
gateway makes concurrently. Two parts:

1. Latency: ``--polls`` PollStatuses of one name, one after the other (no
   max_staleness, so every one calls both endpoints), against the floor: the slowest
   endpoint called directly by this process, as many times. The difference is what the
   gateway adds: gRPC, two concurrent upstream calls instead of one, mapping, the
   SQLite commit of the events and the read of the result.
2. Single flight: ``--rounds`` rounds of 100 concurrent identical PollStatuses; the
   fake counts the requests each endpoint got per round (the aim: 1 per endpoint).
   Polls share the upstream call that is in flight when they arrive; one that reaches
   the gateway after it ended makes a new one (without max_staleness a poll always asks
   the provider). So the count also shows how long 100 RPCs take to reach the poller
   against the upstream latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import grpc

from bench._common import Service, Summary, format_table, free_port, python_module, wait_http_ready
from statusgate.v1 import status_pb2 as pb
from statusgate.v1 import status_service_pb2_grpc
from tests.fakes import finbox
from tests.fakes.finbox import FakeFinbox

SESSION_ID = "bench-session"
NAME = f"sources/finbox/sessions/{SESSION_ID}"
CONFIG = """\
http = "127.0.0.1:{http}"
grpc = "127.0.0.1:{grpc}"
store = "sqlite:///{db}"

[sources.finbox]
provider = "finbox"

[sources.finbox.api]
base_url = "{base_url}"
api_key_env = "BENCH_FINBOX_API_KEY"
server_hash_env = "BENCH_FINBOX_SERVER_HASH"

[sources.finbox.poll]
enabled = false
"""


def ms(value: float) -> str:
    return f"{value:.1f} ms"


async def timed(call: object) -> int:
    start = time.monotonic_ns()
    await call  # type: ignore[misc]
    return time.monotonic_ns() - start


async def floor(fake: FakeFinbox, endpoint: str, count: int) -> Summary:
    """The slowest upstream call alone, made directly."""
    headers = {"x-api-key": finbox.API_KEY, "server-hash": finbox.SERVER_HASH}
    url = f"{fake.url}/session_data/{SESSION_ID}/{endpoint}/"
    samples = []
    async with aiohttp.ClientSession() as http:

        async def get() -> None:
            async with http.get(url, headers=headers) as response:
                await response.read()

        await get()  # connect once, as the gateway's pooled session is connected
        for _ in range(count):
            samples.append(await timed(get()))
    return Summary.of_ns(samples)


async def poll_latency(stub: status_service_pb2_grpc.StatusServiceStub, count: int) -> Summary:
    request = pb.PollStatusesRequest(names=[NAME])
    samples = []
    for _ in range(10):  # warm-up: connections, caches
        await stub.PollStatuses(request, timeout=30)
    for _ in range(count):
        start = time.monotonic_ns()
        response = await stub.PollStatuses(request, timeout=30)
        samples.append(time.monotonic_ns() - start)
        result = response.results[0]
        if result.HasField("error") or result.upstream_calls != 2:
            raise RuntimeError(f"unexpected poll result: {result}")
    return Summary.of_ns(samples)


async def single_flight(
    stub: status_service_pb2_grpc.StatusServiceStub, fake: FakeFinbox, rounds: int
) -> list[tuple[int, int]]:
    """(session_upload_status requests, progress requests) per round of 100 polls."""
    request = pb.PollStatusesRequest(names=[NAME])
    counts = []
    for _ in range(rounds):
        before = (fake.calls["upload_status"], fake.calls["progress"])
        await asyncio.gather(*(stub.PollStatuses(request, timeout=30) for _ in range(100)))
        counts.append((fake.calls["upload_status"] - before[0], fake.calls["progress"] - before[1]))
    return counts


async def run(args: argparse.Namespace) -> None:
    fake = FakeFinbox()
    await fake.start()
    fake.uploaded(SESSION_ID, ("acct-1", "COMPLETED"), ("acct-2", "COMPLETED"))
    fake.processing(SESSION_ID)
    fake.latency["upload_status"] = args.upload_ms / 1000
    fake.latency["progress"] = args.progress_ms / 1000
    slowest = "progress" if args.progress_ms >= args.upload_ms else "session_upload_status"

    work = Path(tempfile.mkdtemp(prefix="statusgate-bench-poll-"))
    http_port, grpc_port = free_port(), free_port()
    config = work / "statusgate.toml"
    config.write_text(
        CONFIG.format(http=http_port, grpc=grpc_port, db=work / "statusgate.db", base_url=fake.url)
    )
    os.environ["BENCH_FINBOX_API_KEY"] = finbox.API_KEY
    os.environ["BENCH_FINBOX_SERVER_HASH"] = finbox.SERVER_HASH
    gateway = Service(
        "statusgate",
        python_module("statusgate.cli", "serve", "--config", str(config)),
        work / "statusgate.log",
    )
    try:
        async with aiohttp.ClientSession() as http:
            await wait_http_ready(http, f"http://127.0.0.1:{http_port}/readyz", gateway)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = status_service_pb2_grpc.StatusServiceStub(channel)
            polls = await poll_latency(stub, args.polls)
            direct = await floor(fake, slowest.removeprefix("session_"), args.polls)
            rounds = await single_flight(stub, fake, args.rounds)
    finally:
        gateway.stop()
        await fake.close()

    command = ["python", "-m", "bench.bench_poll", *sys.argv[1:]]
    print(f"command: {shlex.join(command)}")
    print(
        f"upstream latency injected: session_upload_status {args.upload_ms} ms, "
        f"progress {args.progress_ms} ms; {args.polls} sequential polls\n"
    )
    rows = [
        [
            f"floor: {slowest} alone, called directly",
            ms(direct.p50),
            ms(direct.p90),
            ms(direct.p99),
        ],
        [
            "PollStatuses, 1 name, 2 concurrent upstream calls",
            ms(polls.p50),
            ms(polls.p90),
            ms(polls.p99),
        ],
        [
            "gateway overhead over the floor",
            ms(polls.p50 - direct.p50),
            ms(polls.p90 - direct.p90),
            ms(polls.p99 - direct.p99),
        ],
    ]
    print(format_table(["", "p50", "p90", "p99"], rows))
    print()
    headers = ["100 concurrent identical polls", "rounds", "1 request", "2 requests", "3 or more"]
    table = []
    for label, counts in (
        ("session_upload_status", [u for u, _ in rounds]),
        ("progress", [p for _, p in rounds]),
    ):
        spread = Counter(min(count, 3) for count in counts)
        table.append([label, str(len(counts)), str(spread[1]), str(spread[2]), str(spread[3])])
    print(format_table(headers, table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer polls and rounds")
    parser.add_argument("--polls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--upload-ms", type=float, default=30.0)
    parser.add_argument("--progress-ms", type=float, default=50.0)
    args = parser.parse_args()
    if args.quick:
        args.polls, args.rounds = 50, 5
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

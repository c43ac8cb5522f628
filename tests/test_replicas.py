"""Two real ``statusgate serve`` processes on one real PostgreSQL schema.

Webhooks are posted to both replicas at once; Watch subscribers on both replicas must
each see every event exactly once, in sequence order, with no gap, including the events
the other replica ingested (LISTEN/NOTIFY wakes them, the events table feeds them); and
a subscriber resumes on the other replica from its last sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import statistics
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import grpc
import pytest

from statusgate.v1 import status_pb2 as pb
from statusgate.v1 import status_service_pb2_grpc
from tests.payloads import finbox_expiry
from tests.store.conftest import drop_schema, new_schema_name, report, require_postgres, with_params

PER_REPLICA = 300
CONCURRENCY = 32
# Guards against a hang, never a latency assertion.
PATIENCE = 60.0


def free_port() -> int:
    """A port that was free a moment ago: the subprocess cannot report one it bound."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Replica:
    name: str
    process: asyncio.subprocess.Process
    http_port: int
    grpc_port: int
    log_path: Path
    log: IO[bytes]
    http: aiohttp.ClientSession
    channel: grpc.aio.Channel
    stub: status_service_pb2_grpc.StatusServiceAsyncStub

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    async def post_expiry(self, session_id: str) -> list[int]:
        async with self.http.post(
            self.url("/webhooks/finbox"), json=finbox_expiry(session_id)
        ) as response:
            body = await response.json()
            assert response.status == 200, body
            return [event["sequence"] for event in body["events"]]

    def logs(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]


async def start_replica(name: str, store_url: str, tmp_path: Path) -> Replica:
    http_port, grpc_port = free_port(), free_port()
    log_path = tmp_path / f"{name}.log"
    log = log_path.open("wb")
    # The replica reads only its flags: no STATUSGATE_* variable of this environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATUSGATE_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "statusgate.cli",
        "serve",
        "--store",
        store_url,
        "--http",
        f"127.0.0.1:{http_port}",
        "--grpc",
        f"127.0.0.1:{grpc_port}",
        "--api",
        f"127.0.0.1:{free_port()}",
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
    replica = Replica(
        name,
        process,
        http_port,
        grpc_port,
        log_path,
        log,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)),
        channel,
        status_service_pb2_grpc.StatusServiceStub(channel),  # type: ignore[arg-type]
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while True:
        assert process.returncode is None, f"{name} exited:\n{replica.logs()}"
        assert loop.time() < deadline, f"{name} never became ready:\n{replica.logs()}"
        with contextlib.suppress(aiohttp.ClientError):
            async with replica.http.get(replica.url("/readyz")) as response:
                if response.status == 200:
                    return replica
        await asyncio.sleep(0.1)


async def stop_replica(replica: Replica) -> None:
    await replica.http.close()
    await replica.channel.close()
    if replica.process.returncode is None:
        replica.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(replica.process.wait(), 20)
        except TimeoutError:
            replica.process.kill()
            await replica.process.wait()
    replica.log.close()


@dataclass
class Subscriber:
    """One WatchStatuses stream and every event it received, with when it arrived."""

    replica: Replica
    stream: Any
    events: list[pb.StatusEvent] = field(default_factory=list)
    arrived: dict[str, float] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, replica: Replica, after: int) -> Subscriber:
        request = pb.WatchStatusesRequest(after_sequence=after)
        subscriber = cls(replica, replica.stub.WatchStatuses(request))
        first = await asyncio.wait_for(anext(aiter(subscriber.stream)), PATIENCE)
        subscriber.events.extend(first.events)
        subscriber.task = asyncio.create_task(subscriber._read())
        return subscriber

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        async for message in self.stream:
            now = loop.time()
            for event in message.events:
                self.events.append(event)
                self.arrived[event.status.name] = now

    async def wait_for(self, count: int) -> list[pb.StatusEvent]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PATIENCE
        while len(self.events) < count:
            assert self.task is not None and not self.task.done(), self.task
            assert loop.time() < deadline, (
                f"{self.replica.name} subscriber saw {len(self.events)} of {count} events"
            )
            await asyncio.sleep(0.02)
        return self.events

    def cancel(self) -> None:
        self.stream.cancel()
        if self.task is not None:
            self.task.cancel()


@pytest.fixture
async def replicas(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Replica, Replica]]:
    base = require_postgres(request.config)
    schema = new_schema_name()
    url = with_params(base, schema=schema)
    started: list[Replica] = []
    try:
        # Started together: both run the migrations at once, which must apply them once.
        results = await asyncio.gather(
            *(start_replica(name, url, tmp_path) for name in ("replica1", "replica2")),
            return_exceptions=True,
        )
        started = [r for r in results if isinstance(r, Replica)]
        for result in results:
            if isinstance(result, BaseException):
                raise result
        yield started[0], started[1]
    finally:
        await asyncio.gather(*(stop_replica(r) for r in started))
        await drop_schema(base, schema)


def assert_gap_free(events: list[pb.StatusEvent], first: int, last: int) -> None:
    assert [e.sequence for e in events] == list(range(first, last + 1))
    assert len({e.event_id for e in events}) == len(events)


async def test_two_replicas_deliver_every_event_once_in_order_and_resume_across(
    replicas: tuple[Replica, Replica], request: pytest.FixtureRequest
) -> None:
    r1, r2 = replicas
    subscribers = [await Subscriber.open(r, after=0) for r in (r1, r1, r2, r2)]
    run = uuid.uuid4().hex[:6]

    async def load(replica: Replica) -> list[int]:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(i: int) -> list[int]:
            async with gate:
                return await replica.post_expiry(f"{run}-{replica.name}-{i}")

        results = await asyncio.gather(*(one(i) for i in range(PER_REPLICA)))
        return [sequence for sequences in results for sequence in sequences]

    # Both replicas ingest at the same time.
    acked1, acked2 = await asyncio.gather(load(r1), load(r2))
    total = 2 * PER_REPLICA
    assert sorted(acked1 + acked2) == list(range(1, total + 1))
    # The replicas really interleaved: neither took one contiguous block of sequences.
    assert max(acked1) > min(acked2) and max(acked2) > min(acked1)

    expected_names = {
        f"sources/finbox/sessions/{run}-{r.name}-{i}" for r in (r1, r2) for i in range(PER_REPLICA)
    }
    for subscriber in subscribers:
        events = await subscriber.wait_for(total)
        assert_gap_free(events, 1, total)
        assert {e.status.name for e in events} == expected_names

    # Cross-replica delivery: each replica's subscribers got the other replica's events.
    # How much later than a subscriber on the ingesting replica is printed, not asserted.
    lags = []
    for ingested_on, here, there in (
        (r1, subscribers[0], subscribers[2]),
        (r2, subscribers[2], subscribers[0]),
    ):
        for i in range(PER_REPLICA):
            name = f"sources/finbox/sessions/{run}-{ingested_on.name}-{i}"
            assert name in there.arrived
            lags.append(there.arrived[name] - here.arrived[name])

    # One webhook at a time: from the ingesting replica's 200 to the other replica's
    # Watch stream.
    loop = asyncio.get_running_loop()
    quiet = []
    for i in range(20):
        poster, watcher = (r1, subscribers[2]) if i % 2 == 0 else (r2, subscribers[0])
        name = f"{run}-probe-{i}"
        await poster.post_expiry(name)
        acked = loop.time()
        await watcher.wait_for(total + i + 1)
        quiet.append(watcher.arrived[f"sources/finbox/sessions/{name}"] - acked)
    total += 20
    for subscriber in subscribers:
        assert_gap_free(await subscriber.wait_for(total), 1, total)
    report(
        request.config,
        "cross-replica Watch delivery: one at a time, median"
        f" {statistics.median(quiet) * 1000:.1f} ms after the ingesting replica's 200;"
        f" under load, median {statistics.median(lags) * 1000:.1f} ms /"
        f" p95 {statistics.quantiles(lags, n=20)[-1] * 1000:.1f} ms after a subscriber"
        " on the ingesting replica",
    )

    # Resume on the other replica from the last sequence a subscriber saw, while new
    # webhooks keep arriving on the first replica.
    mover = subscribers[1]
    mover.cancel()
    last_seen = mover.events[total // 2 - 1].sequence  # as if it had stopped halfway
    resumed = await Subscriber.open(r2, after=last_seen)
    more = [await r1.post_expiry(f"{run}-late-{i}") for i in range(20)]
    assert [s for ss in more for s in ss] == list(range(total + 1, total + 21))
    events = await resumed.wait_for(total + 20 - last_seen)
    assert_gap_free(events, last_seen + 1, total + 20)

    for subscriber in (*subscribers, resumed):
        subscriber.cancel()

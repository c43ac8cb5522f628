"""What the metrics cost on the hot paths, each beside its baseline from the same run.

- **gRPC**: GetStatus calls (``--calls`` per round, ``--concurrency`` in flight, on one
  channel) against the same StatusService served by two grpc.aio servers in this
  process, one without the interceptor that counts calls and one with it, in
  alternating rounds. Reported per server: calls/s and this process's CPU per call
  (client and server share the process, so the difference is the interceptor's).
- **Per webhook**: the metric updates one mapped webhook makes (its verdict, its ack
  latency, its event), ``--updates`` times: through the per-source children made up
  front, against ``labels()`` looked up each time as a naive hot path would.

    python -m bench.bench_metrics [--calls 3000] [--rounds 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import grpc

from bench._common import format_table, ratio
from statusgate.core.hub import Hub
from statusgate.core.names import parse_name
from statusgate.providers.common import build_status
from statusgate.rpc.server import RpcServer
from statusgate.rpc.service import StatusService
from statusgate.store.base import PollIngest
from statusgate.store.sqlite import SqliteStore
from statusgate.telemetry.metrics import Metrics
from statusgate.v1 import status_pb2 as pb
from statusgate.v1 import status_service_pb2_grpc

NAME = "sources/finbox/sessions/bench"


async def _round(port: int, calls: int, concurrency: int) -> tuple[float, float]:
    """(calls/s, CPU µs per call) of ``calls`` GetStatus calls."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = status_service_pb2_grpc.StatusServiceStub(channel)
        request = pb.GetStatusRequest(name=NAME)
        await stub.GetStatus(request)  # connected
        left = calls

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await stub.GetStatus(request)

        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return calls / wall, cpu / calls * 1e6


async def grpc_rows(calls: int, rounds: int, concurrency: int) -> list[list[str]]:
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteStore(Path(directory) / "bench.db")
        await store.open()
        hub = Hub(store)
        await hub.start()
        status = build_status(
            parse_name(NAME),
            pb.PROVIDER_FINBOX,
            pb.STATE_IN_PROGRESS,
            pb.STAGE_UPLOAD,
            final_stage=pb.STAGE_PROCESSING,
        )
        await store.ingest(PollIngest([status]))
        service = StatusService(store, hub, ["finbox"])
        servers = {
            "without the interceptor": RpcServer(service),
            "with the interceptor": RpcServer(service, metrics=Metrics({"finbox": "finbox"})),
        }
        ports = {label: await s.start("127.0.0.1:0") for label, s in servers.items()}
        results: dict[str, list[tuple[float, float]]] = {label: [] for label in servers}
        try:
            for _ in range(rounds):
                for label, port in ports.items():
                    results[label].append(await _round(port, calls, concurrency))
        finally:
            for server in servers.values():
                await server.stop(0)
            await hub.close()
            await store.close()
    rows = []
    base_cpu = min(c for _, c in results["without the interceptor"])
    for label, measured in results.items():
        best_rate = max(r for r, _ in measured)
        best_cpu = min(c for _, c in measured)
        rows.append([label, f"{best_rate:,.0f}", f"{best_cpu:.0f}", ratio(best_cpu, base_cpu)])
    return rows


def webhook_rows(updates: int) -> list[list[str]]:
    metrics = Metrics({"finbox": "finbox"})
    bundle = metrics.sources["finbox"]
    event = pb.StatusEvent(sequence=1, status=pb.Status(name=NAME))
    events = [event]

    def children() -> None:
        bundle.webhooks["mapped"].inc()
        bundle.ack_seconds.observe(0.003)
        metrics.record_events(pb.ORIGIN_WEBHOOK, events)

    def labels() -> None:
        metrics.webhooks.labels("finbox", "finbox", "mapped").inc()
        metrics.ack_seconds.labels("finbox", "finbox").observe(0.003)
        metrics.events.labels("finbox", "finbox", "webhook").inc(1)

    rows = []
    timings = {}
    for label, run in (("labels() each time", labels), ("children made up front", children)):
        started = time.perf_counter()
        for _ in range(updates):
            run()
        timings[label] = (time.perf_counter() - started) / updates * 1e6
    base = timings["labels() each time"]
    for label, micros in timings.items():
        rows.append([label, f"{micros:.2f}", ratio(micros, base)])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--updates", type=int, default=200_000)
    args = parser.parse_args()
    rows = asyncio.run(grpc_rows(args.calls, args.rounds, args.concurrency))
    print(f"GetStatus, {args.calls} calls x {args.rounds} rounds, best round:")
    print(format_table(["server", "calls/s", "CPU µs/call", "CPU ÷ without"], rows))
    print(f"\nThe metric updates of one mapped webhook, {args.updates:,} times:")
    print(format_table(["updates", "µs per webhook", "÷ labels()"], webhook_rows(args.updates)))


if __name__ == "__main__":
    main()

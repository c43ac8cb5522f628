"""Store benchmark: ingest throughput on SQLite and on PostgreSQL, one and two replicas.

    python -m bench.bench_store                             # ~30 s on 2 cores
    python -m bench.bench_store --requests 1000 --rounds 1  # a smoke run

Every scenario runs real ``statusgate serve`` processes and drives their real HTTP front
door from this process (one aiohttp client, closed loop): a fixed number of FinBox
expiry webhooks (one event each, every one a new subject), ``--concurrency`` in flight,
each acknowledged only after its transaction committed durably (SQLite WAL with
synchronous=FULL; PostgreSQL with synchronous_commit as the server has it). All three
scenarios run in the same invocation, on the same machine, one after the other:

1. ``sqlite``: one replica on a fresh SQLite file (in a temporary directory);
2. ``postgres``: one replica on a fresh schema of the PostgreSQL server;
3. ``postgres x2``: two replicas on one fresh schema, the load split evenly between them
   (each gets half the requests and half the concurrency), as a load balancer would.

PostgreSQL is ``--postgres-url`` (default: ``STATUSGATE_TEST_POSTGRES_URL`` or
``postgresql://postgres@127.0.0.1:5432/test``); each scenario's schema is dropped at
the end. A warm-up of ``--warmup`` webhooks per replica precedes each measurement, and
the three scenarios are run ``--rounds`` times, interleaved; the median round of each is
reported (all rounds' throughputs are printed too).

Then the same three scenarios without HTTP: one process per replica calls
``store.ingest`` directly (``--store-requests`` ingests, ``--concurrency`` in flight in
all). That is the ceiling of the database path, against which the front door's figures
say where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench._common import (
    CpuMeter,
    LoadResult,
    Service,
    Summary,
    client_session,
    closed_loop,
    format_table,
    free_port,
    machine_info,
    python_module,
    wait_http_ready,
    webhook_bodies,
)
from statusgate.store.base import Delivery, DeliveryVerdict, IngestRequest, WebhookIngest
from statusgate.store.factory import open_store
from statusgate.v1.status_pb2 import Kind, Stage, State, Status
from tests.payloads import finbox_expiry

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
MACHINE = "machine"
LOADGEN = "load generator"


@dataclass(frozen=True, slots=True)
class Outcome:
    scenario: str
    replicas: int
    requests: int
    ok: int
    elapsed_s: float
    ack: Summary
    gateway_cores: float
    loadgen_cores: float
    machine_cores: float

    @property
    def throughput(self) -> float:
        return self.ok / self.elapsed_s


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


async def drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def start_gateway(name: str, store: str, log_dir: Path) -> tuple[Service, int]:
    http = free_port()
    argv = python_module(
        "statusgate.cli",
        "serve",
        "--store",
        store,
        "--http",
        f"127.0.0.1:{http}",
        "--grpc",
        f"127.0.0.1:{free_port()}",
        "--api",
        f"127.0.0.1:{free_port()}",
    )
    return Service(name, argv, log_dir / f"{name}.log"), http


async def run_scenario(
    scenario: str, stores: Sequence[str], args: argparse.Namespace, log_dir: Path
) -> Outcome:
    gateways = [
        start_gateway(f"{scenario.replace(' ', '')}-{i}", store, log_dir)
        for i, store in enumerate(stores)
    ]
    replicas = len(gateways)
    share = args.concurrency // replicas
    run = uuid.uuid4().hex[:8]
    try:
        async with client_session(args.concurrency) as session:
            for service, port in gateways:
                await wait_http_ready(session, f"http://127.0.0.1:{port}/readyz", service)
            urls = [f"http://127.0.0.1:{port}/webhooks/finbox" for _, port in gateways]
            await asyncio.gather(
                *(
                    closed_loop(
                        session,
                        url,
                        webhook_bodies("expiry", f"warm-{run}-{i}-", args.warmup),
                        concurrency=share,
                    )
                    for i, url in enumerate(urls)
                )
            )
            bodies = webhook_bodies("expiry", f"{run}-", args.requests)
            pids = {service.name: service.pid for service, _ in gateways}
            meter = CpuMeter({**pids, LOADGEN: os.getpid()})
            results = await asyncio.gather(
                *(
                    closed_loop(session, url, bodies[i::replicas], concurrency=share)
                    for i, url in enumerate(urls)
                )
            )
            cores = meter.cores()
        for service, _ in gateways:
            service.check_running()
    finally:
        for service, _ in gateways:
            service.stop()
    return Outcome(
        scenario=scenario,
        replicas=replicas,
        requests=args.requests,
        ok=sum(result.ok for result in results),
        elapsed_s=(max(max(r.done_ns) for r in results) - min(min(r.send_ns) for r in results))
        / 1e9,
        ack=_merged_ack(results),
        gateway_cores=sum(cores[service.name] for service, _ in gateways),
        loadgen_cores=cores[LOADGEN],
        machine_cores=cores[MACHINE],
    )


def median_round(results: Sequence[Outcome]) -> Outcome:
    return sorted(results, key=lambda outcome: outcome.throughput)[len(results) // 2]


def _merged_ack(results: Sequence[LoadResult]) -> Summary:
    return Summary.of_ns(
        [
            done - sent
            for result in results
            for sent, done, status in zip(
                result.send_ns, result.done_ns, result.status, strict=True
            )
            if status
        ]
    )


# --- the store alone -------------------------------------------------------------------


def expiry_request(session_id: str) -> IngestRequest:
    """What the front door hands the store for one FinBox expiry webhook."""
    body = json.dumps(finbox_expiry(session_id)).encode()
    status = Status(
        name=f"sources/finbox/sessions/{session_id}",
        source="finbox",
        kind=Kind.KIND_SESSION,
        state=State.STATE_EXPIRED,
        stage=Stage.STAGE_UPLOAD,
        terminal=True,
        provider_state="SESSION_EXPIRY_NOTIFICATION",
    )
    delivery = Delivery(
        id=uuid.uuid4().hex,
        source="finbox",
        received_at=datetime.now(UTC),
        body=body,
        headers={"content-type": "application/json"},
        verdict=DeliveryVerdict.MAPPED,
    )
    return WebhookIngest(delivery, [status])


async def _ingest_many(store: Any, prefix: str, count: int, concurrency: int) -> None:
    requests = iter([expiry_request(f"{prefix}{i}") for i in range(count)])

    async def worker() -> None:
        for request in requests:
            await store.ingest(request)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _store_process(url: str, tag: str, count: int, concurrency: int, start: Any, done: Any) -> None:
    """One process with one store, as one replica: warm up, wait for the others, load."""

    async def run() -> None:
        store = open_store(url)
        await store.open()
        try:
            await _ingest_many(store, f"warm-{tag}-", 300, concurrency)
            commits = store.commits  # type: ignore[attr-defined]
            await asyncio.to_thread(start.wait)
            await _ingest_many(store, f"{tag}-", count, concurrency)
            done.put(store.commits - commits)  # type: ignore[attr-defined]
        finally:
            await store.close()

    asyncio.run(run())


def store_alone(url: str, processes: int, count: int, concurrency: int) -> tuple[float, int]:
    """Ingests per second and commits of ``processes`` processes sharing ``count``
    ingests (the wall time from the moment all are warmed up to the last one's end)."""
    context = multiprocessing.get_context("spawn")
    start, done = context.Barrier(processes + 1), context.Queue()
    workers = [
        context.Process(
            target=_store_process,
            args=(url, f"p{i}", count // processes, concurrency // processes, start, done),
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    start.wait()
    started = time.monotonic()
    commits = sum(done.get(timeout=120) for _ in workers)
    elapsed = time.monotonic() - started
    for worker in workers:
        worker.join()
    return count / elapsed, commits


async def main_async(args: argparse.Namespace) -> int:
    try:
        conn = await asyncpg.connect(args.postgres_url, timeout=5)
        server_version = await conn.fetchval("SHOW server_version")
        synchronous_commit = await conn.fetchval("SHOW synchronous_commit")
        await conn.close()
    except (OSError, asyncpg.PostgresError) as error:
        print(f"PostgreSQL is not reachable at --postgres-url: {error!r}", file=sys.stderr)
        return 2

    # Rounds interleave the scenarios, so that background load on a shared machine
    # weighs on all of them alike; each scenario's median round is reported.
    rounds: dict[str, list[Outcome]] = {}
    with tempfile.TemporaryDirectory(prefix="statusgate-bench-store-") as tmp:
        log_dir = Path(tmp)
        for round_ in range(args.rounds):
            sqlite_url = f"sqlite:///{log_dir / f'gw-{round_}.db'}"
            rounds.setdefault("sqlite", []).append(
                await run_scenario("sqlite", [sqlite_url], args, log_dir)
            )
            for scenario, replicas in (("postgres", 1), ("postgres x2", 2)):
                schema = f"bench_{uuid.uuid4().hex[:12]}"
                try:
                    store = with_schema(args.postgres_url, schema)
                    rounds.setdefault(scenario, []).append(
                        await run_scenario(scenario, [store] * replicas, args, log_dir)
                    )
                finally:
                    await drop_schema(args.postgres_url, schema)
        # The store alone, without HTTP: what the database path itself sustains.
        alone: list[list[str]] = []
        for scenario, processes in (("sqlite", 1), ("postgres", 1), ("postgres x2", 2)):
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            url = (
                f"sqlite:///{log_dir / 'alone.db'}"
                if scenario == "sqlite"
                else with_schema(args.postgres_url, schema)
            )
            try:
                rate, commits = await asyncio.to_thread(
                    store_alone, url, processes, args.store_requests, args.concurrency
                )
            finally:
                if scenario != "sqlite":
                    await drop_schema(args.postgres_url, schema)
            alone.append(
                [
                    scenario,
                    str(processes),
                    f"{rate:,.0f}",
                    str(commits),
                    f"{args.store_requests / commits:.0f}",
                ]
            )
        info = machine_info(log_dir)
    outcomes = [median_round(results) for results in rounds.values()]

    headers = [
        "store",
        "replicas",
        "webhooks/s",
        "ack p50",
        "ack p99",
        "non-2xx",
        "gateway cores",
        "load generator cores",
        "rest (PostgreSQL...)",
    ]
    rows = [
        [
            o.scenario,
            str(o.replicas),
            f"{o.throughput:,.0f}",
            f"{o.ack.p50:.1f} ms",
            f"{o.ack.p99:.1f} ms",
            str(o.requests - o.ok),
            f"{o.gateway_cores:.2f}",
            f"{o.loadgen_cores:.2f}",
            f"{max(0.0, o.machine_cores - o.gateway_cores - o.loadgen_cores):.2f}",
        ]
        for o in outcomes
    ]
    every_round = "; ".join(
        f"{name} " + " / ".join(f"{o.throughput:,.0f}" for o in results)
        for name, results in rounds.items()
    )
    print(
        f"\n{args.requests} FinBox expiry webhooks per scenario, {args.concurrency} in flight,"
        f" durable ack; median of {args.rounds} interleaved rounds ({every_round} webhooks/s);"
        f" PostgreSQL {server_version} (synchronous_commit={synchronous_commit});"
        f" {info['nproc']} cores ({info['cpu']}), Python {info['python']},"
        f" revision {info['revision']}\n"
    )
    print(format_table(headers, rows))
    print(
        f"\nThe store alone (no HTTP): {args.store_requests} ingests of the same webhooks,"
        f" {args.concurrency} in flight, from one process per replica\n"
    )
    print(format_table(["store", "processes", "ingests/s", "commits", "ingests per commit"], alone))
    return 0 if all(o.ok == o.requests for o in outcomes) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.bench_store", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="webhooks per scenario")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument("--warmup", type=int, default=300, help="warm-up webhooks per replica")
    parser.add_argument("--rounds", type=int, default=3, help="runs of every scenario")
    parser.add_argument(
        "--store-requests", type=int, default=8000, help="ingests per store-alone scenario"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("STATUSGATE_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL,
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    code = asyncio.run(main_async(args))
    print(f"\n(ran in {time.monotonic() - started:.0f} s)")
    return code


if __name__ == "__main__":
    sys.exit(main())

"""Delivery listing benchmark: pages of 100 out of 100,000 deliveries, by verdict.

    python -m bench.bench_deliveries                 # ~1 min on 2 cores
    python -m bench.bench_deliveries --deliveries 20000 --repeat 20   # a smoke run

A store (SQLite on a fresh file, then PostgreSQL on a fresh schema when reachable) is
migrated by the store itself, then filled directly with ``--deliveries`` rows spread
over three sources and one second apart: 80% mapped (each with one event), 15%
unmapped, 5% rejected. Then, in the same run and on the same data, each query is timed
``--repeat`` times (the median and p90 are reported, in ms):

- ``store``: ``store.query_deliveries`` as ListDeliveries calls it (page of 100 plus
  one, newest first, no bodies, the page's events attached): the first page, a page
  2,000 deliveries deep (paged by keyset, from a cursor), two verdicts at once, and a
  scoped client's two sources with one verdict;
- ``JSON API``: ``GET /v1/deliveries?filter.verdicts=REJECTED&page_size=100`` through a
  real gateway's API listener on the same store (HTTP, auth, transcoding included);
- baselines, the same page of the same SELECT by raw SQL (no events, no decoding):
  ``unindexed`` reads the table without any index (SQLite ``NOT INDEXED``; PostgreSQL
  with index scans turned off), ``version 2's index`` forces the index the schema had
  before migration 3, ``(verdict, source, received_at)``, whose order does not serve a
  newest-first page across sources, so every rejected delivery is read and sorted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench._common import format_table, machine_info
from statusgate.app import Gateway, load_settings
from statusgate.store.base import DeliveryCursor, DeliveryQuery, DeliveryVerdict, Store
from statusgate.store.factory import open_store
from statusgate.v1.status_pb2 import StatusEvent

PAGE = 100
SOURCES = ("finbox", "banqware", "setu")
REJECTED = [DeliveryVerdict.REJECTED]
RAW_SQLITE = (
    "SELECT id, source, received_at, verdict, detail, headers, path FROM deliveries {hint}"
    " WHERE verdict = 'rejected' ORDER BY received_at DESC, id DESC LIMIT 101"
)
RAW_POSTGRES = (
    "SELECT id, source, received_at, verdict, detail, headers, path FROM deliveries"
    " WHERE verdict = 'rejected' ORDER BY received_at DESC, id DESC LIMIT 101"
)


def verdict_of(index: int) -> str:
    slot = index % 20
    return "rejected" if slot == 0 else "unmapped" if slot <= 3 else "mapped"


def rows(count: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Delivery rows (received_at as a datetime) and the events of the mapped ones."""
    deliveries, events = [], []
    data = StatusEvent(sequence=1).SerializeToString()
    # Recent, so the gateway's retention (30 days) leaves them alone.
    start = datetime.now(UTC) - timedelta(seconds=count + 60)
    for index in range(count):
        id_ = f"{index:014x}{uuid.uuid4().hex[:12]}"
        verdict = verdict_of(index)
        source = SOURCES[index % len(SOURCES)]
        at = start + timedelta(seconds=index)
        detail = "" if verdict == "mapped" else f"it was {verdict}"
        deliveries.append((id_, source, at, verdict, detail, '{"content-type": "json"}', b"{}", ""))
        if verdict == "mapped":
            name = f"sources/{source}/sessions/s{index}"
            events.append((len(events) + 1, uuid.uuid4().hex, name, id_, data))
    return deliveries, events


def fill_sqlite(path: Path, count: int) -> None:
    deliveries, events = rows(count)
    micros = [
        (*d[:2], (d[2] - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1), *d[3:])
        for d in deliveries
    ]
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO deliveries (id, source, received_at, verdict, detail, headers, body,"
            " path) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            micros,
        )
        conn.executemany(
            "INSERT INTO events (sequence, event_id, name, delivery_id, data)"
            " VALUES (?, ?, ?, ?, ?)",
            events,
        )
        # Version 2's index, for the baseline only.
        conn.execute(
            "CREATE INDEX deliveries_by_verdict ON deliveries (verdict, source, received_at)"
        )
    conn.execute("ANALYZE")
    conn.close()


async def fill_postgres(url: str, schema: str, count: int) -> None:
    deliveries, events = rows(count)
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        await conn.copy_records_to_table(
            "deliveries",
            records=deliveries,
            columns=["id", "source", "received_at", "verdict", "detail", "headers", "body", "path"],
        )
        await conn.copy_records_to_table(
            "events",
            records=events,
            columns=["sequence", "event_id", "name", "delivery_id", "data"],
        )
        await conn.execute(
            "CREATE INDEX deliveries_by_verdict ON deliveries (verdict, source, received_at)"
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def timed(repeat: int, run: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    await run()  # warm: the first call opens connections and pages the index in
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9) - 1]


async def deep_cursor(store: Store, depth: int) -> DeliveryCursor:
    after = None
    for _ in range(depth // PAGE):
        page = await store.query_deliveries(
            DeliveryQuery(verdicts=REJECTED), after=after, limit=PAGE
        )
        after = DeliveryCursor(page[-1].received_at, page[-1].id)
    assert after is not None
    return after


async def measure_store(
    store: Store, repeat: int, count: int
) -> list[tuple[str, tuple[float, float]]]:
    depth = min(2000, count // 20 // 2 // PAGE * PAGE)
    deep = await deep_cursor(store, depth)
    queries: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        (
            "store: rejected, first page",
            lambda: store.query_deliveries(DeliveryQuery(verdicts=REJECTED), limit=PAGE + 1),
        ),
        (
            f"store: rejected, {depth:,} deep",
            lambda: store.query_deliveries(
                DeliveryQuery(verdicts=REJECTED), after=deep, limit=PAGE + 1
            ),
        ),
        (
            "store: unmapped or rejected",
            lambda: store.query_deliveries(
                DeliveryQuery(verdicts=[DeliveryVerdict.UNMAPPED, DeliveryVerdict.REJECTED]),
                limit=PAGE + 1,
            ),
        ),
        (
            "store: 2 sources, rejected",
            lambda: store.query_deliveries(
                DeliveryQuery(sources=["finbox", "setu"], verdicts=REJECTED), limit=PAGE + 1
            ),
        ),
    ]
    return [(label, await timed(repeat, run)) for label, run in queries]


async def measure_api(store_url: str, tmp: Path, repeat: int) -> tuple[float, float]:
    settings = load_settings(
        None, http="127.0.0.1:0", grpc="127.0.0.1:0", api="127.0.0.1:0", store=store_url
    )
    gateway = Gateway(settings)
    ports = await gateway.start()
    url = f"http://127.0.0.1:{ports.api}/v1/deliveries?filter.verdicts=REJECTED&page_size={PAGE}"
    try:
        async with aiohttp.ClientSession() as http:

            async def get() -> None:
                async with http.get(url) as response:
                    assert response.status == 200, await response.text()
                    document = await response.json()
                    assert len(document["deliveries"]) == PAGE, document

            return await timed(repeat, get)
    finally:
        await gateway.stop()


async def run_sqlite(count: int, repeat: int, tmp: Path) -> list[tuple[str, tuple[float, float]]]:
    path = tmp / "deliveries.db"
    store = open_store(f"sqlite:///{path}")
    await store.open()
    await store.close()
    fill_sqlite(path, count)
    store = open_store(f"sqlite:///{path}")
    await store.open()
    try:
        results = await measure_store(store, repeat, count)
    finally:
        await store.close()
    results.append(
        (
            "JSON API: GET /v1/deliveries, rejected",
            await measure_api(f"sqlite:///{path}", tmp, repeat),
        )
    )
    conn = sqlite3.connect(path)

    def raw(hint: str) -> Callable[[], Awaitable[object]]:
        async def run() -> object:
            return conn.execute(RAW_SQLITE.format(hint=hint)).fetchall()

        return run

    results.append(
        (
            "baseline: raw SQL, version 2's index",
            await timed(repeat, raw("INDEXED BY deliveries_by_verdict")),
        )
    )
    results.append(("baseline: raw SQL, unindexed", await timed(repeat, raw("NOT INDEXED"))))
    results.append(("raw SQL, today's index", await timed(repeat, raw(""))))
    conn.close()
    return results


async def run_postgres(
    url: str, count: int, repeat: int, tmp: Path
) -> list[tuple[str, tuple[float, float]]]:
    schema = f"sgbench_{uuid.uuid4().hex[:12]}"
    store_url = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    store = open_store(store_url)
    await store.open()
    await store.close()
    await fill_postgres(url, schema, count)
    store = open_store(store_url)
    await store.open()
    try:
        results = await measure_store(store, repeat, count)
    finally:
        await store.close()
    results.append(
        ("JSON API: GET /v1/deliveries, rejected", await measure_api(store_url, tmp, repeat))
    )
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        results.append(
            ("raw SQL, today's index", await timed(repeat, lambda: conn.fetch(RAW_POSTGRES)))
        )
        await conn.execute("SET enable_indexscan = off; SET enable_bitmapscan = off")
        # Another text: asyncpg would reuse the statement prepared (and planned) above.
        unindexed = "/* unindexed */ " + RAW_POSTGRES
        plan = "\n".join(row[0] for row in await conn.fetch("EXPLAIN " + unindexed))
        assert "Seq Scan" in plan, plan
        results.append(
            ("baseline: raw SQL, unindexed", await timed(repeat, lambda: conn.fetch(unindexed)))
        )
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()
    return results


def report(title: str, results: list[tuple[str, tuple[float, float]]]) -> str:
    table = format_table(
        ["query (page of 100)", "median ms", "p90 ms"],
        [[label, f"{p50:.2f}", f"{p90:.2f}"] for label, (p50, p90) in results],
    )
    return f"### {title}\n\n{table}\n"


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("STATUSGATE_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/test",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sg-bench-deliveries-") as directory:
        tmp = Path(directory)
        print(json.dumps(machine_info(tmp)))
        print(
            f"{args.deliveries:,} deliveries ({args.deliveries // 20:,} rejected),"
            f" {args.repeat} runs per query\n"
        )
        print(report("SQLite", await run_sqlite(args.deliveries, args.repeat, tmp)))
        try:
            probe = await asyncpg.connect(args.postgres_url, timeout=3)
            await probe.close()
        except (OSError, asyncpg.PostgresError) as error:
            print(f"PostgreSQL skipped: not reachable ({error!r})")
            return
        print(
            report(
                "PostgreSQL",
                await run_postgres(args.postgres_url, args.deliveries, args.repeat, tmp),
            )
        )


if __name__ == "__main__":
    asyncio.run(main())

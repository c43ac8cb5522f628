"""/metrics of ``statusgate serve --workers 2``: whichever worker answers, counters are
summed over both, store-derived gauges are not multiplied by two, live gauges add up,
and the process metrics describe the supervisor and its workers together."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import aiohttp
import grpc

from statusgate.v1 import status_pb2 as pb
from statusgate.v1 import status_service_pb2_grpc
from tests.process import ServeProcess
from tests.scrape import Scrape, scrape
from tests.test_workers import PATIENCE, load

FINBOX = {"source": "finbox", "provider": "finbox"}
TOTAL = 200


async def scrapes(gateway: ServeProcess, count: int) -> list[Scrape]:
    """``count`` scrapes, each on a connection of its own (so both workers answer)."""
    found = []
    for _ in range(count):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            found.append(await scrape(http, f"{gateway.api_base}/metrics"))
    return found


def stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


async def test_counters_are_summed_over_the_workers_and_the_process_is_the_gateway(
    tmp_path: Path,
) -> None:
    gateway = ServeProcess(
        f"sqlite:///{tmp_path / 'g.db'}",
        workers=2,
        env={"STATUSGATE_METRICS_REFRESH_SECONDS": "0.1"},
    )
    await gateway.start()
    try:
        acknowledged = await load(gateway, "w", TOTAL)
        assert len(acknowledged) == TOTAL
        stored = re.findall(r'"message":"webhook stored".*?"worker":(\d)', gateway.log_text())
        assert set(stored) == {"0", "1"}  # both workers took some

        async def refreshed() -> None:
            while True:
                [found] = await scrapes(gateway, 1)
                if found.get("statusgate_subjects", **FINBOX, state="expired") == TOTAL:
                    return
                await asyncio.sleep(0.05)

        await asyncio.wait_for(refreshed(), PATIENCE)
        for found in await scrapes(gateway, 6):
            assert found.value("statusgate_webhooks_total", **FINBOX, verdict="mapped") == TOTAL
            assert found.value("statusgate_events_total", **FINBOX, origin="webhook") == TOTAL
            assert found.value("statusgate_webhook_ack_seconds_count", **FINBOX) == TOTAL
            assert found.value("statusgate_commit_batch_size_sum") == TOTAL
            # Read by one worker, not one per worker.
            assert found.value("statusgate_subjects", **FINBOX, state="expired") == TOTAL
            assert found.value("statusgate_store_head_sequence") == TOTAL
            assert found.value("statusgate_store_up") == 1
            assert found.value("statusgate_breaker_state", **FINBOX) == 0
            assert found.value("statusgate_watch_streams") == 0

        # Live gauges add up over the workers: a stream open on one is open.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
            stub = status_service_pb2_grpc.StatusServiceStub(channel)
            stream = stub.WatchStatuses(pb.WatchStatusesRequest())
            async for message in stream:
                if message.caught_up:
                    break
            for found in await scrapes(gateway, 4):
                assert found.value("statusgate_watch_streams") == 1
            stream.cancel()  # type: ignore[attr-defined]

        # The process metrics are the gateway's: the supervisor and both workers.
        supervisor = gateway.pid
        workers = gateway.worker_pids_now()
        assert len(workers) == 2
        [found] = await scrapes(gateway, 1)
        ticks = os.sysconf("SC_CLK_TCK")
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        started = boot + int(stat_fields(supervisor)[19]) / ticks
        assert found.value("process_start_time_seconds") == started
        page = os.sysconf("SC_PAGE_SIZE")
        largest = max(int(stat_fields(pid)[21]) * page for pid in workers)
        assert found.value("process_resident_memory_bytes") > largest
        assert found.value("process_open_fds") > len(os.listdir(f"/proc/{workers[0]}/fd"))
        assert found.value("process_cpu_seconds_total") > 0
        # GC counts: one series per generation (summed, not one per worker).
        assert found.label_values("python_gc_collections_total", "generation") == {"0", "1", "2"}
        assert found.value("python_gc_collections_total", generation="0") > 0
        assert "python_info" in found.names()
    finally:
        assert gateway.terminate() == 0

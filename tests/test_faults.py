"""No acknowledged webhook is ever lost: SIGKILL under load, a full disk, cut streams."""

from __future__ import annotations

import asyncio
import resource
from pathlib import Path

import aiohttp
import grpc
import pytest

from statusgate.v1 import status_pb2 as pb
from statusgate.v1 import status_service_pb2_grpc
from tests.payloads import finbox_expiry
from tests.process import ServeProcess
from tests.scrape import scrape


async def post(
    http: aiohttp.ClientSession,
    gateway: ServeProcess,
    payload: object,
) -> tuple[int, dict[str, object] | None]:
    """(status, body); status 0 when the connection failed (the gateway is gone)."""
    try:
        async with http.post(f"{gateway.base}/webhooks/finbox", json=payload) as response:
            return response.status, await response.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError):
        return 0, None


class Watcher:
    """A WatchStatuses client that resumes from its last sequence whenever cut off."""

    def __init__(self) -> None:
        self.events: list[pb.StatusEvent] = []
        self.cuts = 0

    @property
    def last(self) -> int:
        return self.events[-1].sequence if self.events else 0

    async def follow(self, gateway: ServeProcess, until: int) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
            stub = status_service_pb2_grpc.StatusServiceStub(channel)
            request = pb.WatchStatusesRequest(after_sequence=self.last)
            try:
                async for message in stub.WatchStatuses(request):
                    self.events.extend(message.events)
                    if self.last >= until:
                        return
            except grpc.aio.AioRpcError:
                self.cuts += 1


# Every test runs against a single gateway and against a supervisor with two workers
# sharing the SQLite file; ``kill`` then SIGKILLs the supervisor and both workers at once.
WORKERS = pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])


@WORKERS
async def test_sigkill_under_load_loses_no_acknowledged_webhook(
    tmp_path: Path, workers: int
) -> None:
    store = f"sqlite:///{tmp_path / 'g.db'}"
    gateway = ServeProcess(store, workers=workers)
    await gateway.start()
    watcher = Watcher()
    watching = asyncio.ensure_future(watcher.follow(gateway, until=10**9))
    sent = 600
    acknowledged: dict[str, str] = {}  # session id -> delivery id
    refused = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        semaphore = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            nonlocal refused
            async with semaphore:
                code, body = await post(http, gateway, finbox_expiry(f"k{i}"))
            if 200 <= code < 300 and body is not None:
                acknowledged[f"k{i}"] = str(body["delivery_id"])
            else:
                refused += 1

        load = [asyncio.ensure_future(one(i)) for i in range(sent)]
        while len(acknowledged) < sent // 3:  # kill mid-load, not before or after
            await asyncio.sleep(0.005)
        gateway.kill()
        await asyncio.gather(*load)
    await asyncio.wait_for(watching, 10)
    assert sent == len(acknowledged) + refused  # the ledger balances
    assert 0 < len(acknowledged) < sent

    await gateway.start()  # same store, after the crash
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
            stub = status_service_pb2_grpc.StatusServiceStub(channel)
            names = [f"sources/finbox/sessions/{sid}" for sid in acknowledged]
            found = await stub.BatchGetStatuses(pb.BatchGetStatusesRequest(names=names))
            assert list(found.missing_names) == []
            assert all(s.state == pb.STATE_EXPIRED for s in found.statuses)
            listed = await stub.ListStatuses(pb.ListStatusesRequest(page_size=1000))
            total = len(listed.statuses)
        # The stream cut by the crash resumes on the restarted gateway without a gap.
        await asyncio.wait_for(watcher.follow(gateway, until=total), 20)
        assert watcher.cuts == 1
        assert [e.sequence for e in watcher.events] == list(range(1, total + 1))
        delivered = {e.status.name.rsplit("/", 1)[1]: e.delivery_id for e in watcher.events}
        for session_id, delivery_id in acknowledged.items():
            assert delivered[session_id] == delivery_id
    finally:
        assert gateway.terminate() == 0


@WORKERS
async def test_a_full_disk_answers_503_and_recovers_by_itself(tmp_path: Path, workers: int) -> None:
    gateway = ServeProcess(f"sqlite:///{tmp_path / 'g.db'}", workers=workers)
    await gateway.start()
    padding = "x" * 200_000
    try:
        async with aiohttp.ClientSession() as http:
            code, before = await post(http, gateway, finbox_expiry("before"))
            assert code == 200 and before is not None
            # A real EFBIG from the kernel: cap the size of any file the gateway writes.
            # Only the soft limit: raising it back needs no privilege.
            unlimited = resource.RLIM_INFINITY
            writers = gateway.worker_pids_now() if workers > 1 else [gateway.pid]
            for pid in writers:
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (64 * 1024, unlimited))
            full_codes = []
            for i in range(5):
                payload = {**finbox_expiry(f"full{i}"), "padding": padding}
                code, _ = await post(http, gateway, payload)
                full_codes.append(code)
            assert 503 in full_codes and all(c in (200, 503) for c in full_codes)
            async with http.get(f"{gateway.base}/readyz") as response:
                assert response.status == 503

            for pid in writers:
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (unlimited, unlimited))
            await gateway.wait_ready(timeout=30)  # recovers without any traffic
            code, after = await post(http, gateway, finbox_expiry("after"))
            assert code == 200 and after is not None
            metrics = await scrape(http, f"{gateway.api_base}/metrics")
            unavailable = {"source": "finbox", "provider": "finbox", "verdict": "unavailable"}
            assert metrics.value("statusgate_webhooks_total", **unavailable) >= 1
            # Every 503 is a failed commit (its batch, maybe shared with others).
            assert metrics.value("statusgate_commit_failures_total") >= 1
            # Up again once every worker's store has committed (or probed) since.
            async with asyncio.timeout(30):
                while metrics.value("statusgate_store_up") != 1:
                    await asyncio.sleep(0.1)
                    metrics = await scrape(http, f"{gateway.api_base}/metrics")
    finally:
        assert gateway.terminate() == 0

    # Everything acknowledged is there after a restart.
    await gateway.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
            stub = status_service_pb2_grpc.StatusServiceStub(channel)
            for session_id in ("before", "after"):
                status = await stub.GetStatus(
                    pb.GetStatusRequest(name=f"sources/finbox/sessions/{session_id}")
                )
                assert status.state == pb.STATE_EXPIRED
    finally:
        gateway.terminate()


@WORKERS
async def test_sigterm_drains_and_ends_watch_streams_with_unavailable(
    tmp_path: Path, workers: int
) -> None:
    gateway = ServeProcess(f"sqlite:///{tmp_path / 'g.db'}", workers=workers)
    await gateway.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
        stub = status_service_pb2_grpc.StatusServiceStub(channel)
        stream = stub.WatchStatuses(pb.WatchStatusesRequest())
        first = await anext(aiter(stream))
        assert first.caught_up
        exit_code = await asyncio.to_thread(gateway.terminate)
        assert exit_code == 0
        try:
            async for _ in stream:
                pass
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE
        else:
            raise AssertionError("the stream ended without telling the client to resume")

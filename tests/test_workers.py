"""``statusgate serve --workers 2``: a supervisor and two real worker processes on one
SQLite file, behind the same ports, as a user runs them."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import grpc

from statusgate.v1 import status_pb2 as pb
from statusgate.v1 import status_service_pb2_grpc
from tests.payloads import finbox_expiry
from tests.process import ServeProcess, wait_gone
from tests.scrape import scrape
from tests.test_faults import Watcher, post

# Guards against a hang, never a latency assertion.
PATIENCE = 60


async def wait_for_log(gateway: ServeProcess, pattern: str, count: int = 1) -> list[str]:
    async def seen() -> list[str]:
        while len(found := re.findall(pattern, gateway.log_text())) < count:
            await asyncio.sleep(0.05)
        return found

    return await asyncio.wait_for(seen(), PATIENCE)


async def load(gateway: ServeProcess, prefix: str, count: int) -> dict[str, str]:
    """``count`` expiry webhooks over 32 connections; session id -> delivery id of
    every acknowledged one."""
    acknowledged: dict[str, str] = {}
    connector = aiohttp.TCPConnector(limit=32, force_close=False)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=20)
    ) as http:
        semaphore = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with semaphore:
                code, body = await post(http, gateway, finbox_expiry(f"{prefix}{i}"))
            if code == 200 and body is not None:
                acknowledged[f"{prefix}{i}"] = str(body["delivery_id"])

        await asyncio.gather(*(one(i) for i in range(count)))
    return acknowledged


async def test_workers_share_the_ports_and_nobody_else_can(tmp_path: Path) -> None:
    gateway = ServeProcess(f"sqlite:///{tmp_path / 'g.db'}", workers=2)
    await gateway.start()
    try:
        assert len(gateway.worker_pids()) == 2
        # Another gateway on the same ports (with a store of its own) cannot start...
        for workers, http, grpc_port in (
            (1, gateway.http_port, 0),
            (1, 0, gateway.grpc_port),
            (2, gateway.http_port, 0),
            (2, 0, gateway.grpc_port),
        ):
            intruder = await asyncio.create_subprocess_exec(
                *_serve_command(tmp_path / f"other{workers}.db", http, grpc_port, workers),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await asyncio.wait_for(intruder.communicate(), PATIENCE)
            assert intruder.returncode != 0
            assert b"in use" in err or b"cannot listen" in err, err[-500:]
        # ...nor one on the same SQLite file.
        intruder = await asyncio.create_subprocess_exec(
            *_serve_command(tmp_path / "g.db", 0, 0, 1),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(intruder.communicate(), PATIENCE)
        assert intruder.returncode != 0 and b"in use by another statusgate process" in err
    finally:
        assert gateway.terminate() == 0


def _serve_command(db: Path, http: int, grpc_port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "statusgate.cli",
        "serve",
        f"--http=127.0.0.1:{http}",
        f"--grpc=127.0.0.1:{grpc_port}",
        "--api=127.0.0.1:0",
        f"--store=sqlite:///{db}",
        f"--workers={workers}",
    ]


async def test_every_event_reaches_every_watcher_whichever_worker_took_it(
    tmp_path: Path,
) -> None:
    gateway = ServeProcess(f"sqlite:///{tmp_path / 'g.db'}", workers=2)
    await gateway.start()
    try:
        # Each watcher on its own connection, so the kernel spreads them over workers.
        watchers = [Watcher() for _ in range(6)]
        total = 400
        following = [asyncio.ensure_future(w.follow(gateway, until=total)) for w in watchers]
        await asyncio.sleep(0.5)  # streams open (they resume from 0 anyway)
        acknowledged = await load(gateway, "e", total)
        assert len(acknowledged) == total
        await asyncio.wait_for(asyncio.gather(*following), PATIENCE)
        for watcher in watchers:
            assert [e.sequence for e in watcher.events] == list(range(1, total + 1))
        # Both workers took webhooks, and /metrics sums them whichever answers.
        stored = re.findall(r'"message":"webhook stored".*?"worker":(\d)', gateway.log_text())
        assert set(stored) == {"0", "1"}
        async with aiohttp.ClientSession() as http:
            metrics = await scrape(http, f"{gateway.api_base}/metrics")
        mapped = {"source": "finbox", "provider": "finbox", "verdict": "mapped"}
        assert metrics.value("statusgate_webhooks_total", **mapped) == total
    finally:
        assert gateway.terminate() == 0


async def test_a_killed_worker_is_restarted_and_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    gateway = ServeProcess(f"sqlite:///{tmp_path / 'g.db'}", workers=2)
    await gateway.start()
    try:
        victim = gateway.worker_pids()[0]
        loading = asyncio.ensure_future(load(gateway, "k", 600))
        await asyncio.sleep(0.5)
        os.kill(victim, signal.SIGKILL)
        acknowledged = await loading
        assert acknowledged  # the other worker kept answering
        await wait_for_log(gateway, rf"worker \d \(pid {victim}\) was killed by SIGKILL")
        await wait_for_log(gateway, r"statusgate worker \d serving", count=3)
        # The restarted worker serves; every acknowledged webhook is there.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
            stub = status_service_pb2_grpc.StatusServiceStub(channel)
            names = [f"sources/finbox/sessions/{sid}" for sid in acknowledged]
            found = await stub.BatchGetStatuses(pb.BatchGetStatusesRequest(names=names))
            assert list(found.missing_names) == []
            listed = await stub.ListStatuses(pb.ListStatusesRequest(page_size=1000))
        total = len(listed.statuses)  # acknowledged or not, every committed webhook
        watcher = Watcher()
        await asyncio.wait_for(watcher.follow(gateway, until=total), PATIENCE)
        assert [e.sequence for e in watcher.events] == list(range(1, total + 1))
        delivered = {e.status.name.rsplit("/", 1)[1]: e.delivery_id for e in watcher.events}
        for session_id, delivery_id in acknowledged.items():
            assert delivered[session_id] == delivery_id
    finally:
        assert gateway.terminate() == 0


async def test_when_the_supervisor_dies_its_workers_drain_and_exit(tmp_path: Path) -> None:
    gateway = ServeProcess(f"sqlite:///{tmp_path / 'g.db'}", workers=2)
    await gateway.start()
    pids = gateway.worker_pids()
    loading = asyncio.ensure_future(load(gateway, "s", 600))
    await asyncio.sleep(0.5)
    gateway.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    gateway.process.wait(timeout=10)  # type: ignore[union-attr]
    acknowledged = await loading
    await asyncio.to_thread(wait_gone, pids)
    await wait_for_log(gateway, "the supervisor is gone, draining", count=2)

    await gateway.start()  # the file and the ports are free again
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
            stub = status_service_pb2_grpc.StatusServiceStub(channel)
            names = [f"sources/finbox/sessions/{sid}" for sid in acknowledged]
            found = await stub.BatchGetStatuses(pb.BatchGetStatusesRequest(names=names))
            assert list(found.missing_names) == []
    finally:
        assert gateway.terminate() == 0


async def test_a_worker_that_keeps_dying_stops_the_gateway(tmp_path: Path) -> None:
    gateway = ServeProcess(f"sqlite:///{tmp_path / 'g.db'}", workers=2)
    await gateway.start()
    for death in range(1, 6):
        (pid,) = [p for p in gateway.worker_pids_now() if p != gateway.worker_pids()[1]][:1]
        os.kill(pid, signal.SIGKILL)
        if death < 5:
            await wait_for_log(gateway, r"statusgate worker 0 serving", count=death + 1)
    code = await asyncio.wait_for(asyncio.to_thread(gateway.process.wait), PATIENCE)  # type: ignore[union-attr]
    assert code == 1
    assert "it died 5 times in a row" in gateway.log_text()


async def test_a_worker_that_cannot_start_stops_the_gateway(tmp_path: Path) -> None:
    config = tmp_path / "statusgate.toml"
    config.write_text(
        '[sources.finbox]\nprovider = "finbox"\n'
        '[sources.finbox.auth]\nmethod = "shared_secret"\nsecret_env = "NOT_SET_ANYWHERE"\n'
    )
    gateway = ServeProcess(f"sqlite:///{tmp_path / 'g.db'}", workers=2, config=config)
    try:
        await gateway.start(timeout=PATIENCE)
    except RuntimeError as error:
        assert "exited with 2" in str(error)
    else:
        raise AssertionError("the gateway started without its secret")
    assert "sources.finbox.auth.secret_env" in gateway.log_text()
    assert "could not start" in gateway.log_text()

"""One SQLite file shared by the workers of one gateway (``store.sqlite_shared``): each
worker is a ``SqliteStore`` with its own writer, readers and hub; here two run side by
side in one process, which is the same to SQLite, flock and the sockets as two
processes (``tests/test_workers.py`` runs real ones)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from statusgate.core.hub import Hub
from statusgate.store.base import StoreUnavailableError
from statusgate.store.sqlite import SqliteStore
from statusgate.store.sqlite_shared import SqliteSharing, take_lock
from statusgate.v1.status_pb2 import State
from tests.store.builders import poll, update

SUBJECT = "sources/setu/consents/shared"
# Guards against a hang, never a latency assertion.
PATIENCE = 30


@dataclass
class Worker:
    store: SqliteStore
    hub: Hub


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[list[Worker]]:
    path = tmp_path / "shared.db"
    lock = take_lock(path)  # as the supervisor does
    started: list[Worker] = []
    try:
        for index in range(2):
            sharing = SqliteSharing(os.dup(lock.fileno()), tmp_path, index, 2)
            store = SqliteStore(path, sharing=sharing)
            await store.open()
            hub = Hub(store)
            store.add_commit_listener(hub.notify)
            await hub.start()
            started.append(Worker(store, hub))
        yield started
    finally:
        for worker in started:
            await worker.hub.close()
            await worker.store.close()
        lock.close()


async def test_two_workers_alternately_updating_one_subject_make_every_version_once(
    workers: list[Worker],
) -> None:
    """Each version is applied on the other worker's latest snapshot: a cached snapshot
    the other worker changed would repeat a version or drop an update."""
    versions = 200
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stop = asyncio.Event()

    async def background(worker: Worker, prefix: str) -> None:
        # Load on both writers, so the subject's updates share batches with others.
        i = 0
        while not stop.is_set():
            batch = [
                worker.store.ingest(poll(update(f"sources/finbox/sessions/{prefix}{i}-{j}", 1)))
                for j in range(8)
            ]
            await asyncio.gather(*batch)
            i += 1

    loads = [asyncio.ensure_future(background(w, f"w{n}-")) for n, w in enumerate(workers)]
    try:
        for i in range(versions):
            worker = workers[i % 2]
            change = update(
                SUBJECT,
                State.STATE_ACTIVE,
                occurred_at=start + timedelta(seconds=i),
                attributes={"i": str(i)},
            )
            result = await worker.store.ingest(poll(change))
            assert len(result.events) == 1, f"update {i} on worker {i % 2} made no event"
    finally:
        stop.set()
        await asyncio.gather(*loads)

    events = await workers[0].store.list_events(SUBJECT, limit=1000)
    assert [e.status.version for e in events] == list(range(1, versions + 1))
    assert [e.status.attributes["i"] for e in events] == [str(i) for i in range(versions)]
    status = await workers[1].store.get_status(SUBJECT)
    assert status is not None and status.version == versions

    # Every sequence of both writers, once, gap-free, in commit order.
    last = await workers[0].store.last_sequence()
    every = await workers[1].store.read_events(after_sequence=0, limit=last + 10)
    assert [e.sequence for e in every] == list(range(1, last + 1))


async def test_each_hub_hears_the_other_workers_commits(workers: list[Worker]) -> None:
    received: list[list[int]] = [[], []]

    async def follow(index: int, want: int) -> None:
        async for batch in workers[index].hub.subscribe(0):
            received[index] += [e.sequence for e in batch]
            if len(received[index]) >= want:
                return

    followers = [asyncio.ensure_future(follow(i, 40)) for i in range(2)]
    for i in range(40):
        worker = workers[i % 2]
        result = await worker.store.ingest(poll(update(f"sources/finbox/sessions/h{i}", 1)))
        # Only the local hub is offered the events; the other hears of them.
        worker.hub.offer(result.events)
    await asyncio.wait_for(asyncio.gather(*followers), PATIENCE)
    assert received == [list(range(1, 41))] * 2


async def test_another_process_is_still_refused(workers: list[Worker], tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    independent = SqliteStore(path)
    with pytest.raises(StoreUnavailableError, match="in use by another statusgate process"):
        await independent.open()

    # A descriptor of the lock file that does not hold the lock is refused too.
    fd = os.open(f"{path}.lock", os.O_RDWR)
    impostor = SqliteStore(path, sharing=SqliteSharing(fd, tmp_path, 5, 6))
    with pytest.raises(StoreUnavailableError, match="in use by another statusgate process"):
        await impostor.open()

    # And so is a descriptor of some other file.
    other = os.open(tmp_path / "other", os.O_RDWR | os.O_CREAT)
    wrong = SqliteStore(path, sharing=SqliteSharing(other, tmp_path, 5, 6))
    with pytest.raises(StoreUnavailableError, match="is not the lock"):
        await wrong.open()
    os.close(other)


async def test_the_lock_is_held_until_the_last_worker_closes(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    lock = take_lock(path)
    store = SqliteStore(path, sharing=SqliteSharing(os.dup(lock.fileno()), tmp_path, 0, 1))
    await store.open()
    lock.close()  # the supervisor is gone; its worker still holds the file
    with pytest.raises(StoreUnavailableError):
        take_lock(path).close()
    await store.close()
    take_lock(path).close()  # free once the last holder closed it


async def test_workers_lease_disjoint_subjects_to_their_reconcilers(
    workers: list[Worker],
) -> None:
    names = [f"sources/finbox/sessions/lease{i}" for i in range(60)]
    for name in names:
        await workers[0].store.ingest(poll(update(name, State.STATE_PENDING)))
    now = datetime.now(UTC) + timedelta(seconds=1)

    async def claim(worker: Worker, owner: str) -> list[str]:
        claimed: list[str] = []
        for _ in range(6):  # small batches, interleaved with the other worker's
            batch = await worker.store.claim_due_polls(
                "finbox",
                now=now,
                quiet_before=now,
                changed_after=now - timedelta(days=1),
                owner=owner,
                lease_until=now + timedelta(hours=1),
                limit=7,
            )
            claimed += [c.name for c in batch]
        return claimed

    first, second = await asyncio.gather(claim(workers[0], "w0"), claim(workers[1], "w1"))
    assert first and second
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(names)

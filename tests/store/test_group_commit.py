"""Group commit: the commit delay lets requests that arrive a moment apart share one
commit; every batch, failure and recovery is reported to the store's observer (the
metrics)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from statusgate.store.base import IngestRequest, IngestResult, Store, StoreUnavailableError
from statusgate.store.group_commit import GroupCommitter
from statusgate.store.sqlite import SqliteStore
from statusgate.v1.status_pb2 import State
from tests.store.builders import poll, update


async def commits_for_two_requests_10ms_apart(path: Path, commit_delay: float) -> int:
    store = SqliteStore(path, commit_delay=commit_delay)
    await store.open()
    try:
        first = asyncio.ensure_future(
            store.ingest(poll(update("sources/finbox/sessions/a", State.STATE_PENDING)))
        )
        await asyncio.sleep(0.01)
        second = store.ingest(poll(update("sources/finbox/sessions/b", State.STATE_PENDING)))
        await asyncio.gather(first, second)
        return store.commits
    finally:
        await store.close()


async def test_commit_delay_gathers_requests_into_one_commit(tmp_path: Path) -> None:
    # A delay far longer than the gap, so scheduling noise cannot split the batch.
    assert await commits_for_two_requests_10ms_apart(tmp_path / "a.db", 0.2) == 1
    assert await commits_for_two_requests_10ms_apart(tmp_path / "b.db", 0.0) == 2


class Recorder:
    """A CommitObserver that keeps what it was told."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.failed: list[int] = []
        self.recovered = 0

    def committed(self, size: int, seconds: float) -> None:
        assert seconds >= 0
        self.sizes.append(size)

    def commit_failed(self, size: int) -> None:
        self.failed.append(size)

    def commit_recovered(self) -> None:
        self.recovered += 1


async def test_every_batch_is_reported_to_the_observer(store: Store) -> None:
    recorder = Recorder()
    store.observe_commits(recorder)
    names = [f"sources/finbox/sessions/o{i}" for i in range(5)]
    await asyncio.gather(*(store.ingest(poll(update(n, State.STATE_PENDING))) for n in names))
    assert sum(recorder.sizes) == 5 and recorder.failed == []


async def test_a_failed_batch_and_the_recovery_are_reported() -> None:
    healthy = asyncio.Event()

    async def commit(batch: list[IngestRequest]) -> list[IngestResult | Exception]:
        raise OSError("disk full")

    async def probe() -> None:
        healthy.set()

    committer = GroupCommitter("test", commit, probe, max_batch=10, probe_interval=0.01)
    recorder = Recorder()
    committer.observer = recorder
    committer.start()
    try:
        requests = [
            poll(update(f"sources/finbox/sessions/f{i}", State.STATE_PENDING)) for i in range(2)
        ]
        outcomes = await asyncio.gather(*map(committer.submit, requests), return_exceptions=True)
        assert all(isinstance(o, StoreUnavailableError) for o in outcomes)
        await asyncio.wait_for(healthy.wait(), 10)
        await asyncio.sleep(0)
        assert sum(recorder.failed) == 2 and recorder.sizes == []
        assert recorder.recovered == 1 and committer.healthy
    finally:
        await committer.stop()

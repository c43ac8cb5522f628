"""The commit delay lets requests that arrive a moment apart share one commit."""

from __future__ import annotations

import asyncio
from pathlib import Path

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

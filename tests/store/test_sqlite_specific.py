"""What only the SQLite store has: its pragmas and migrations, its writer's batching,
and how it fails and recovers when a commit cannot happen."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from statusgate.store.base import PollIngest, StoreUnavailableError, WebhookIngest
from statusgate.store.migrations import load_migrations
from statusgate.store.sqlite import SqliteStore
from statusgate.v1.status_pb2 import Stage, State
from tests.store.builders import delivery, poll, sequences, update, webhook

SESSION = "sources/finbox/sessions/s1"


def failing_commits(errors: list[str]) -> type[sqlite3.Connection]:
    """A connection whose COMMITs fail with the errors queued in ``errors``, one each. A
    failing fsync surfaces from COMMIT as such an error; it cannot be provoked for real
    on demand (chmod does not stop root), so the connection raises it where SQLite
    would."""

    class FailingCommits(sqlite3.Connection):
        def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
            if sql == "COMMIT" and errors:
                raise sqlite3.OperationalError(errors.pop(0))
            return super().execute(sql, parameters)

    return FailingCommits


@pytest.fixture
def commit_errors() -> list[str]:
    """Errors the next COMMITs of ``sqlite_store``'s writer fail with."""
    return []


@pytest.fixture
async def sqlite_store(tmp_path: Path, commit_errors: list[str]) -> AsyncIterator[SqliteStore]:
    # A short busy timeout so lock contention fails fast; a short probe interval so
    # recovery without traffic is quick to observe.
    store = SqliteStore(
        tmp_path / "s.db",
        busy_timeout_ms=100,
        probe_interval=0.05,
        connection_class=failing_commits(commit_errors),
    )
    await store.open()
    yield store
    await store.close()


@contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the database's write lock, as a second process or a
    stuck backup would: the store's writer cannot begin a transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def test_migrations_are_packaged_in_order() -> None:
    migrations = load_migrations("sqlite")
    assert [version for version, _ in migrations] == list(range(1, len(migrations) + 1))
    assert "CREATE TABLE statuses" in migrations[0][1]
    with pytest.raises(ValueError, match="dialect"):
        load_migrations("oracle")


async def test_file_is_in_wal_mode_and_migrated_once(tmp_path: Path) -> None:
    for _ in range(2):  # the second open finds the migrations applied
        store = SqliteStore(tmp_path / "s.db")
        await store.open()
        await store.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
        assert versions == [version for version, _ in load_migrations("sqlite")]
    finally:
        conn.close()


async def test_trace_parent_has_a_column_of_its_own(sqlite_store: SqliteStore) -> None:
    # So that SQL can find the events of one trace without decoding every event.
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    changed = update("sources/finbox/sessions/t", State.STATE_PENDING)
    await sqlite_store.ingest(PollIngest([changed], trace_parent=parent))
    conn = sqlite3.connect(sqlite_store.path)
    try:
        assert conn.execute("SELECT trace_parent FROM events").fetchall() == [(parent,)]
    finally:
        conn.close()


async def test_open_refuses_a_schema_newer_than_the_code(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    await store.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    with conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, 0)")
    conn.close()
    with pytest.raises(StoreUnavailableError, match="newer"):
        await SqliteStore(tmp_path / "s.db").open()


async def test_open_fails_clearly_when_the_file_cannot_be_created(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "missing-dir" / "s.db")
    with pytest.raises(StoreUnavailableError, match="missing-dir"):
        await store.open()
    assert not await store.ready()


async def test_batches_are_bounded(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", max_batch=10)
    await store.open()
    try:
        await asyncio.gather(
            *(store.ingest(poll(update(f"{SESSION}{i}", State.STATE_PENDING))) for i in range(100))
        )
        assert store.commits >= 10
    finally:
        await store.close()


async def test_reads_proceed_while_the_write_lock_is_held(sqlite_store: SqliteStore) -> None:
    await sqlite_store.ingest(poll(update(SESSION, State.STATE_PENDING)))
    with write_lock(sqlite_store.path):
        assert (await sqlite_store.get_status(SESSION)) is not None
        assert await sqlite_store.last_sequence() == 1


async def test_lock_beyond_busy_timeout_is_unavailable_then_recovers(
    sqlite_store: SqliteStore,
) -> None:
    with write_lock(sqlite_store.path):
        results = await asyncio.gather(
            sqlite_store.ingest(webhook(update(SESSION, State.STATE_PENDING))),
            sqlite_store.ingest(poll(update(f"{SESSION}/accounts/a", State.STATE_PENDING))),
            return_exceptions=True,
        )
        assert all(isinstance(result, StoreUnavailableError) for result in results)
        assert not await sqlite_store.ready()

    # The next batch tries again and succeeds; nothing of the failed one was kept.
    result = await sqlite_store.ingest(webhook(update(SESSION, State.STATE_PENDING)))
    assert sequences(result.events) == [1]
    assert await sqlite_store.ready()
    assert len(await sqlite_store.list_deliveries([])) == 1


async def test_readiness_recovers_without_traffic(sqlite_store: SqliteStore) -> None:
    with write_lock(sqlite_store.path):
        with pytest.raises(StoreUnavailableError):
            await sqlite_store.ingest(poll(update(SESSION, State.STATE_PENDING)))
        await asyncio.sleep(0.3)  # probes keep failing while the lock is held
        assert not await sqlite_store.ready()
    for _ in range(100):
        if await sqlite_store.ready():
            break
        await asyncio.sleep(0.05)
    assert await sqlite_store.ready()


async def test_commit_failure_fails_the_batch_and_rolls_back_memory(
    sqlite_store: SqliteStore, commit_errors: list[str]
) -> None:
    await sqlite_store.ingest(poll(update(SESSION, State.STATE_PENDING, Stage.STAGE_UPLOAD)))
    commits = sqlite_store.commits
    commit_errors.append("disk I/O error")  # the next COMMIT only
    batch = [
        poll(update(SESSION, State.STATE_COMPLETED, Stage.STAGE_UPLOAD)),
        webhook(update(f"{SESSION}/accounts/a", State.STATE_PENDING)),
        webhook(update(f"{SESSION}/accounts/b", State.STATE_PENDING)),
    ]
    results = await asyncio.gather(*map(sqlite_store.ingest, batch), return_exceptions=True)
    assert all(isinstance(result, StoreUnavailableError) for result in results)
    assert isinstance(results[0], StoreUnavailableError)
    assert "disk I/O error" in str(results[0])
    assert not await sqlite_store.ready()
    assert sqlite_store.commits == commits

    # Sent again, the same requests apply as if the first attempt never happened: the
    # status cache did not keep the rolled-back snapshots (which would make them
    # duplicates) and the sequence counter did not skip the rolled-back numbers.
    retried = await asyncio.gather(*map(sqlite_store.ingest, batch))
    assert sorted(seq for result in retried for seq in sequences(result.events)) == [2, 3, 4]
    assert await sqlite_store.ready()
    assert sequences(await sqlite_store.read_events(after_sequence=0, limit=10)) == [1, 2, 3, 4]
    status = await sqlite_store.get_status(SESSION)
    assert status is not None and (status.state, status.version) == (State.STATE_COMPLETED, 2)


async def test_disk_full_inside_a_request_fails_the_whole_batch(sqlite_store: SqliteStore) -> None:
    """A real SQLITE_FULL: the writer connection may not grow the file. A store error in
    one request's statements means nothing can commit, so the whole batch is reported
    unavailable (503, retry), unlike a request's own error which fails it alone."""
    await sqlite_store.ingest(poll(update(SESSION, State.STATE_PENDING)))

    def limit_file_size(pages: int | None) -> None:
        conn = sqlite_store._writer.conn  # the writer's own connection, in its thread
        size = pages if pages is not None else conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {size}")

    async def in_writer(pages: int | None) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(sqlite_store._writer_pool, limit_file_size, pages)

    await in_writer(None)
    big = webhook(update(f"{SESSION}/accounts/a", State.STATE_PENDING))
    big = WebhookIngest(
        delivery(body=b"x" * 200_000),
        big.updates,
    )
    small = poll(update(f"{SESSION}/accounts/b", State.STATE_PENDING))
    results = await asyncio.gather(
        sqlite_store.ingest(small), sqlite_store.ingest(big), return_exceptions=True
    )
    assert all(isinstance(result, StoreUnavailableError) for result in results), results
    assert "full" in str(results[1])
    assert not await sqlite_store.ready()

    await in_writer(1 << 30)
    retried = await asyncio.gather(sqlite_store.ingest(small), sqlite_store.ingest(big))
    assert sorted(seq for result in retried for seq in sequences(result.events)) == [2, 3]
    assert await sqlite_store.ready()


def _chattr(flag: str, path: Path) -> str | None:
    """None when ``chattr`` worked; otherwise why it could not."""
    if shutil.which("chattr") is None:
        return "chattr is not installed"
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        return f"chattr {flag} was refused: {done.stderr.strip()}"
    return None


def test_an_immutable_shm_file_is_refused_at_start_with_one_line(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    sqlite3.connect(db).execute("PRAGMA journal_mode=WAL").close()
    shm = tmp_path / "g.db-shm"
    # Shorter than the index SQLite maps: reading past its end is what raised SIGBUS.
    shm.write_bytes(b"\0" * 100)
    why = _chattr("+i", shm)
    if why is not None:
        pytest.skip(why)
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "statusgate.cli",
                "serve",
                "--http",
                "127.0.0.1:0",
                "--grpc",
                "127.0.0.1:0",
                "--api",
                "127.0.0.1:0",
                "--store",
                f"sqlite:///{db}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        _chattr("-i", shm)
    assert done.returncode == 1, done.stderr  # not -SIGBUS, not a traceback
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "g.db-shm is not writable" in lines[0]


async def test_the_status_cache_is_bounded_in_bytes_and_misses_read_the_file(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "s.db", cache_size=4096)
    await store.open()
    try:
        for i in range(100):
            await store.ingest(poll(update(f"sources/finbox/sessions/c{i}", State.STATE_PENDING)))
        writer = store._writer
        assert 0 < writer._cache_bytes <= 4096
        assert len(writer._cache) < 100
        # A subject long evicted still moves forward from its stored snapshot.
        result = await store.ingest(
            poll(update("sources/finbox/sessions/c0", State.STATE_EXPIRED, terminal=True))
        )
        assert [e.previous_state for e in result.events] == [State.STATE_PENDING]
        assert [e.status.version for e in result.events] == [2]
    finally:
        await store.close()

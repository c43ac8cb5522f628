"""The embedded store: one SQLite file in WAL mode, written with group commit.

``ingest`` queues its request and awaits a future. One writer task takes everything that
is pending (up to ``max_batch``) and runs it as one transaction in the single writer
thread; while that batch syncs, new requests queue up for the next one, so N concurrent
webhooks cost one fsync instead of N. Reads run in a small pool of threads with one
read-only connection each, which WAL lets proceed while the writer commits.

The file belongs to one process, or to the workers of one gateway (``sharing``): then
they hold its lock together, number their batches one after the other inside SQLite's
write lock (``sqlite_writer``), and wake each other's hubs after every commit
(``sqlite_shared``).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TypeVar

from statusgate.core.filters import StatusQuery
from statusgate.store import sqlite_queries as queries
from statusgate.store.base import (
    CommitObserver,
    Delivery,
    DeliveryCursor,
    DeliveryQuery,
    DeliveryVerdict,
    IngestRequest,
    IngestResult,
    PollBacklog,
    PollClaim,
    StoreUnavailableError,
)
from statusgate.store.group_commit import GroupCommitter
from statusgate.store.sqlite_shared import PeerChannel, SqliteSharing, adopt_lock, take_lock
from statusgate.store.sqlite_writer import SqliteWriter
from statusgate.v1.status_pb2 import Status, StatusEvent

log = logging.getLogger(__name__)

_T = TypeVar("_T")


_FIX_URL = "point the store elsewhere (--store, STATUSGATE_STORE)"


def probe(path: str) -> str | None:
    """Whether a gateway could create or open the SQLite store at ``path`` (its
    directory exists and is writable): None, or the one line ``open`` would fail with.
    Nothing is created, and no lock is taken (a running gateway may hold it)."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        return _unopenable(path, FileNotFoundError(errno.ENOENT, "missing", directory))
    if not os.access(directory, os.W_OK | os.X_OK):
        return _unopenable(path, PermissionError(errno.EACCES, "denied", directory))
    return None


def _unopenable(path: str, error: OSError) -> str:
    directory = os.path.dirname(path) or "."
    if isinstance(error, FileNotFoundError):
        return (
            f"cannot open the SQLite store {path}: the directory {directory} does "
            f"not exist; create it, or {_FIX_URL}"
        )
    if isinstance(error, PermissionError):
        return (
            f"cannot open the SQLite store {path}: this user may not write in "
            f"{directory}; give it that right, or {_FIX_URL}"
        )
    return f"cannot open the SQLite store {path}: {error.strerror or error}; {_FIX_URL}"


class SqliteStore:
    """``Store`` on a SQLite file.

    ``commits`` counts committed ingest transactions (batches); with concurrent ingests
    it stays well below the number of requests, which is the point of group commit.
    ``cache_size`` bounds the writer's cache of current statuses, in bytes (16 MiB: some
    50,000 subjects of a few hundred bytes each; the others are read from the file).
    ``connection_class`` is the class of the writer's connection (``sqlite3.connect``'s
    ``factory``); readers always use ``sqlite3.Connection``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_ms: int = 5000,
        max_batch: int = 512,
        read_threads: int = 2,
        cache_size: int = 16 * 1024 * 1024,
        probe_interval: float = 1.0,
        commit_delay: float = 0.002,
        connection_class: type[sqlite3.Connection] = sqlite3.Connection,
        sharing: SqliteSharing | None = None,
    ) -> None:
        if max_batch < 1 or read_threads < 1 or cache_size < 0 or probe_interval <= 0:
            raise ValueError(
                "max_batch, read_threads and probe_interval must be positive,"
                " cache_size not negative"
            )
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._read_threads = read_threads
        self._writer = SqliteWriter(
            self.path,
            busy_timeout_ms=busy_timeout_ms,
            cache_size=cache_size,
            connection_class=connection_class,
            write_lock=Path(f"{path}.writer-lock") if sharing is not None else None,
        )
        self._sharing = sharing
        self._peers = (
            PeerChannel(sharing.run_dir, sharing.index, sharing.count) if sharing else None
        )
        self._state = "new"  # -> "open" -> "closing" -> "closed"
        self._committer = GroupCommitter(
            "SQLite",
            self._commit,
            self._probe,
            max_batch=max_batch,
            probe_interval=probe_interval,
            commit_delay=commit_delay,
        )
        self._writer_pool: ThreadPoolExecutor | None = None
        self._read_pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._read_conns_lock = threading.Lock()
        self._lock_file: BinaryIO | None = None

    @property
    def commits(self) -> int:
        """Committed ingest transactions (batches)."""
        return self._committer.commits

    def observe_commits(self, observer: CommitObserver) -> None:
        self._committer.observer = observer

    # --- lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        if self._state != "new":
            raise RuntimeError(f"the store is {self._state}; a SqliteStore opens once")
        self._take_process_lock()
        try:
            self._check_writable()
        except StoreUnavailableError:
            self._state = "closed"
            self._release_process_lock()
            raise
        loop = asyncio.get_running_loop()
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        try:
            await loop.run_in_executor(self._writer_pool, self._writer.open)
            if self._peers is not None:
                self._peers.start()
        except BaseException as exc:
            self._writer_pool.shutdown(wait=False)
            self._state = "closed"
            if self._peers is not None:
                self._peers.close()
            self._release_process_lock()
            if isinstance(exc, sqlite3.Error | OSError):
                raise StoreUnavailableError(
                    f"cannot open the SQLite store {self.path}: {exc}; check that the file is "
                    f"a statusgate database and writable, or {_FIX_URL}"
                ) from exc
            raise
        self._read_pool = ThreadPoolExecutor(self._read_threads, thread_name_prefix="sqlite-read")
        self._state = "open"
        self._committer.start()

    async def close(self) -> None:
        if self._state != "open":
            return
        # New ingests are refused from here on; the writer drains what is queued.
        self._state = "closing"
        await self._committer.stop()
        if self._peers is not None:
            self._peers.close()
        assert self._writer_pool is not None and self._read_pool is not None
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._writer_pool, self._writer.close)
        finally:
            # Shutting down waits for running reads; do it off the event loop.
            await asyncio.to_thread(self._writer_pool.shutdown)
            await asyncio.to_thread(self._read_pool.shutdown)
            with self._read_conns_lock:
                for conn in self._read_conns:
                    conn.close()
                self._read_conns.clear()
            self._state = "closed"
            self._release_process_lock()

    def _take_process_lock(self) -> None:
        """One process per SQLite store, or the workers of one gateway together (see
        ``sqlite_shared``): a writer outside them (another gateway, or ``statusgate
        replay`` while one runs) is refused. PostgreSQL is the store for several
        gateways."""
        try:
            if self._sharing is None:
                self._lock_file = take_lock(self.path)
            else:
                self._lock_file = adopt_lock(self.path, self._sharing.lock_fd)
        except StoreUnavailableError:
            self._state = "closed"
            raise
        except OSError as error:
            self._state = "closed"
            raise StoreUnavailableError(_unopenable(str(self.path), error)) from error

    def _check_writable(self) -> None:
        """Refuse a store whose files cannot be written, before SQLite maps them. A
        ``-shm`` file SQLite cannot open for writing is mapped read-only, and touching
        a page beyond its end kills the process with SIGBUS; an immutable file (chattr
        +i) refuses writes even to root."""
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{self.path}{suffix}")
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue  # SQLite creates it
            except OSError as error:
                raise StoreUnavailableError(
                    f"cannot open SQLite store {self.path}: {path.name} is not writable "
                    f"({error.strerror or error}); make it writable, or {_FIX_URL}"
                ) from None
            os.close(fd)

    def _release_process_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor releases the flock
            self._lock_file = None

    async def ready(self) -> bool:
        return self._state == "open" and self._committer.running and self._committer.healthy

    # --- writes ----------------------------------------------------------------------

    def add_commit_listener(self, listener: Callable[[int], None]) -> None:
        """Called when another worker sharing the file committed; a store of one
        process never calls it (its commits come back from ``ingest``)."""
        if self._peers is not None:
            self._peers.add(listener)

    async def ingest(self, request: IngestRequest) -> IngestResult:
        if self._state != "open":
            raise StoreUnavailableError(f"the SQLite store is {self._state}")
        return await self._committer.submit(request)

    async def _commit(self, requests: list[IngestRequest]) -> list[IngestResult | Exception]:
        assert self._writer_pool is not None
        loop = asyncio.get_running_loop()
        before = self._writer.sequence
        outcomes = await loop.run_in_executor(
            self._writer_pool, self._writer.commit_batch, requests
        )
        if self._peers is not None and self._writer.sequence > before:
            self._peers.announce(self._writer.sequence)
        return outcomes

    async def _probe(self) -> None:
        assert self._writer_pool is not None
        await asyncio.get_running_loop().run_in_executor(self._writer_pool, self._writer.probe)

    # --- reads -----------------------------------------------------------------------

    async def get_status(self, name: str) -> Status | None:
        return await self._read(queries.get_status, name)

    async def get_statuses(self, names: Sequence[str]) -> dict[str, Status]:
        if not names:
            return {}
        return await self._read(queries.get_statuses, names)

    async def list_statuses(
        self, query: StatusQuery, *, after_name: str = "", limit: int = 100
    ) -> list[Status]:
        _check_limit(limit)
        return await self._read(
            functools.partial(queries.list_statuses, after_name=after_name, limit=limit), query
        )

    async def list_events(
        self, name: str, *, after_sequence: int = 0, limit: int = 100
    ) -> list[StatusEvent]:
        _check_limit(limit)
        return await self._read(
            functools.partial(queries.list_events, after_sequence=after_sequence, limit=limit),
            name,
        )

    async def read_events(self, *, after_sequence: int, limit: int) -> list[StatusEvent]:
        _check_limit(limit)
        return await self._read(
            functools.partial(queries.read_events, after_sequence=after_sequence, limit=limit)
        )

    async def last_sequence(self) -> int:
        return await self._read(queries.last_sequence)

    # --- the reconciler's schedule ---------------------------------------------------

    async def claim_due_polls(
        self,
        source: str,
        *,
        now: datetime,
        quiet_before: datetime,
        changed_after: datetime,
        owner: str,
        lease_until: datetime,
        limit: int,
    ) -> list[PollClaim]:
        _check_limit(limit)
        return await self._write(
            functools.partial(
                queries.claim_due_polls,
                source=source,
                now=now,
                quiet_before=quiet_before,
                changed_after=changed_after,
                owner=owner,
                lease_until=lease_until,
                limit=limit,
            )
        )

    async def finish_poll(
        self, name: str, *, owner: str, next_poll_at: datetime, attempts: int
    ) -> None:
        held = await self._write(
            functools.partial(
                queries.finish_poll,
                name=name,
                owner=owner,
                next_poll_at=next_poll_at,
                attempts=attempts,
            )
        )
        if not held:
            log.info("the poll lease on %s had passed to another owner", name)

    async def poll_backlog(
        self, source: str, *, now: datetime, quiet_before: datetime, changed_after: datetime
    ) -> PollBacklog:
        return await self._read(
            functools.partial(
                queries.poll_backlog,
                now=now,
                quiet_before=quiet_before,
                changed_after=changed_after,
            ),
            source,
        )

    async def oldest_non_terminal(self, source: str) -> Status | None:
        return await self._read(queries.oldest_non_terminal, source)

    async def count_subjects(self) -> dict[tuple[str, int], int]:
        return await self._read(queries.count_subjects)

    async def count_deliveries(
        self, *, received_after: datetime
    ) -> dict[tuple[str, DeliveryVerdict], int]:
        return await self._read(
            functools.partial(queries.count_deliveries, received_after=received_after)
        )

    async def prune_deliveries(self, received_before: datetime) -> int:
        pruned: int = await self._write(
            functools.partial(queries.prune_deliveries, received_before=received_before)
        )
        return pruned

    async def _write(self, statement: Callable[[sqlite3.Connection], _T]) -> _T:
        """A small write of its own on the writer connection. The writer thread runs one
        thing at a time, so it slips in between group-commit batches."""
        if self._state != "open" or self._writer_pool is None:
            raise StoreUnavailableError(f"the SQLite store is {self._state}")
        writer = self._writer
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._writer_pool, writer.run, statement
            )
        except RuntimeError as exc:  # the pool was shut down by a concurrent close()
            raise StoreUnavailableError("the SQLite store is closed") from exc
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"SQLite write failed: {exc}") from exc

    async def list_deliveries(
        self,
        verdicts: Sequence[DeliveryVerdict],
        *,
        source: str | None = None,
        since: datetime | None = None,
        after_id: str = "",
        limit: int = 100,
    ) -> list[Delivery]:
        _check_limit(limit)
        return await self._read(
            functools.partial(
                queries.list_deliveries,
                source=source,
                since=since,
                after_id=after_id,
                limit=limit,
            ),
            verdicts,
        )

    async def find_delivery(self, source: str, idempotency_key: str) -> Delivery | None:
        return await self._read(queries.find_delivery, source, idempotency_key)

    async def query_deliveries(
        self,
        query: DeliveryQuery,
        *,
        after: DeliveryCursor | None = None,
        limit: int = 100,
        oldest_first: bool = False,
        bodies: bool = False,
    ) -> list[Delivery]:
        _check_limit(limit)
        return await self._read(
            functools.partial(
                queries.query_deliveries,
                after=after,
                limit=limit,
                oldest_first=oldest_first,
                bodies=bodies,
            ),
            query,
        )

    async def get_deliveries(self, ids: Sequence[str]) -> dict[str, Delivery]:
        if not ids:
            return {}
        return await self._read(queries.get_deliveries, ids)

    async def preview(self, requests: Sequence[IngestRequest]) -> list[IngestResult | Exception]:
        if not requests:
            return []
        return await self._read(
            functools.partial(queries.preview_ingest, now=datetime.now(UTC)), requests
        )

    async def _read(self, query: Callable[..., _T], *args: object) -> _T:
        if self._state != "open" or self._read_pool is None:
            raise StoreUnavailableError(f"the SQLite store is {self._state}")
        loop = asyncio.get_running_loop()
        try:
            running = loop.run_in_executor(
                self._read_pool, functools.partial(self._in_reader, query, *args)
            )
        except RuntimeError as exc:  # the pool was shut down by a concurrent close()
            raise StoreUnavailableError("the SQLite store is closed") from exc
        try:
            return await running
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(f"SQLite read failed: {exc}") from exc

    def _in_reader(self, query: Callable[..., _T], *args: object) -> _T:
        """Run ``query`` on this reader thread's own connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = queries.connect(self.path, busy_timeout_ms=self._busy_timeout_ms, read_only=True)
            self._local.conn = conn
            with self._read_conns_lock:
                self._read_conns.append(conn)
        return query(conn, *args)


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be positive, not {limit}")

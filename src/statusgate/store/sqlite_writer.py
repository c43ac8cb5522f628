"""The write side of ``SqliteStore``: one connection, used only by the writer thread.

``commit_batch`` runs a whole group-commit batch as one transaction: the batch is
staged in Python (``staging``) and its rows written with one ``executemany`` per table.
A request that cannot be staged fails alone; when a write fails on a request's own
error (a duplicate delivery id) the batch is staged again and each request written
inside its own SAVEPOINT, so that request is rolled back alone while the rest of the
batch commits. Everything here is synchronous and must only ever run in the store's
single writer thread.

Several processes (the workers of one gateway) may write one file. Every write
transaction is ``BEGIN IMMEDIATE``, which takes SQLite's write lock, and reads the last
committed sequence inside it, so batches of all the processes are numbered one after
the other and commit in sequence order: the sequence stays gap-free. The status cache
holds committed snapshots only, and a batch that finds sequences it did not write
evicts the subjects of those events first, so a snapshot another process changed is
never served from memory. With ``write_lock`` (set when the file is shared), the
writers also queue on a ``flock`` of that file before beginning: the kernel hands the
lock over the moment it is free, where SQLite's own busy handler would sleep and retry
for milliseconds under contention.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from statusgate.store.base import IngestRequest
from statusgate.store.migrations import load_migrations
from statusgate.store.sqlite_queries import (
    connect,
    existing_deliveries,
    get_statuses,
    last_sequence,
    to_micros,
)
from statusgate.store.staging import (
    Outcome,
    Rows,
    Stager,
    failed_alone,
    replayed,
    stage_all,
    subjects,
)
from statusgate.v1.status_pb2 import Status

_T = TypeVar("_T")

log = logging.getLogger(__name__)

# Errors that are the request's own fault; any other sqlite3.DatabaseError (I/O error,
# disk full, locked, corrupt) means the store cannot commit and fails the whole batch.
_REQUEST_ERRORS = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.ProgrammingError)


def is_store_failure(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, _REQUEST_ERRORS)


def migrate(conn: sqlite3.Connection) -> None:
    """Apply pending migrations in order, each in its own transaction.

    Recording the version is the first statement of each transaction, so when two
    processes open a new file at once the second one fails on the primary key, rolls
    back and skips the migration instead of running it twice.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
    )
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    migrations = load_migrations("sqlite")
    known = max((version for version, _ in migrations), default=0)
    if applied and max(applied) > known:
        # A newer statusgate migrated this file; this one would misread its schema.
        raise sqlite3.OperationalError(
            f"database schema version {max(applied)} is newer than this statusgate ({known})"
        )
    for version, sql in migrations:
        if version in applied:
            continue
        now = to_micros(datetime.now(UTC))
        try:
            # executescript would COMMIT an open transaction first, so BEGIN goes inside.
            conn.executescript(
                f"BEGIN IMMEDIATE;\nINSERT INTO schema_migrations VALUES ({version}, {now});\n"
                f"{sql}\n;COMMIT;"
            )
        except sqlite3.IntegrityError:
            conn.rollback()
            log.info("sqlite migration %04d was applied concurrently", version)
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        else:
            log.info("applied sqlite migration %04d", version)


_INSERT_DELIVERY = (
    "INSERT INTO deliveries"
    " (id, source, received_at, verdict, detail, headers, body, idempotency_key, path)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_REPLAYED = "UPDATE deliveries SET verdict = ?, detail = ? WHERE id = ?"
_INSERT_EVENT = (
    "INSERT INTO events (sequence, event_id, name, delivery_id, data, trace_parent)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_UPSERT_STATUS = (
    "INSERT INTO statuses"
    " (name, source, parent, kind, state, terminal, updated_at, sequence, data)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (name) DO UPDATE SET source = excluded.source,"
    " parent = excluded.parent, kind = excluded.kind, state = excluded.state,"
    " terminal = excluded.terminal, updated_at = excluded.updated_at,"
    " sequence = excluded.sequence, data = excluded.data"
)


class SqliteWriter:
    """``connection_class`` is what the writer's connection is made of (``sqlite3.connect``'s
    ``factory``), e.g. to observe or break its statements."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_ms: int,
        cache_size: int,
        connection_class: type[sqlite3.Connection] = sqlite3.Connection,
        write_lock: Path | None = None,
    ) -> None:
        self._path = path
        self._write_lock_path = write_lock
        self._write_lock: int | None = None
        self._busy_timeout_ms = busy_timeout_ms
        self._cache_size = cache_size
        self._connection_class = connection_class
        self._conn: sqlite3.Connection | None = None
        # Current statuses by name, committed state only, serialized (a parsed Status
        # costs several times its encoding in memory); insertion order = LRU order.
        # Bounded by ``cache_size`` bytes, counted as ``_entry_cost`` each.
        self._cache: dict[str, bytes] = {}
        self._cache_bytes = 0
        # The greatest committed sequence, as of this writer's last transaction.
        self._sequence = 0
        # After a failed batch the cache and counter may not match the file (SQLite can
        # roll back on its own after an I/O error): both are rebuilt by the next batch.
        self._stale = False

    def open(self) -> None:
        conn = connect(
            self._path,
            busy_timeout_ms=self._busy_timeout_ms,
            connection_class=self._connection_class,
        )
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot use WAL mode on {self._path} ({mode})")
            # FULL: with WAL, every COMMIT syncs the log, so an acknowledged webhook
            # survives power loss (NORMAL would only survive a process crash).
            conn.execute("PRAGMA synchronous = FULL")
            if self._write_lock_path is not None:
                self._write_lock = os.open(self._write_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            with self._locked():
                migrate(conn)
            self._sequence = last_sequence(conn)
        except BaseException:
            conn.close()
            self._close_write_lock()
            raise
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._close_write_lock()
        self._forget_all()

    @property
    def sequence(self) -> int:
        """The greatest sequence committed, as of this writer's last transaction."""
        return self._sequence

    def _close_write_lock(self) -> None:
        if self._write_lock is not None:
            os.close(self._write_lock)
            self._write_lock = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Queue behind the other processes' writers (only when the file is shared)."""
        if self._write_lock is None:
            yield
            return
        # Blocking, in the writer thread: whoever holds it holds SQLite's write lock
        # for one transaction at most (bounded by busy_timeout), then lets go.
        fcntl.flock(self._write_lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._write_lock, fcntl.LOCK_UN)

    def run(self, statement: Callable[[sqlite3.Connection], _T]) -> _T:
        """A small write of its own (the reconciler's schedule, retention), queued
        like a batch behind the other processes' writers."""
        with self._locked():
            return statement(self.conn)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError("the SQLite writer is not open")
        return self._conn

    def commit_batch(self, requests: Sequence[IngestRequest]) -> list[Outcome]:
        """Apply and commit every request in one transaction.

        Returns one outcome per request: its result, or the exception that rolled back
        its changes. Raises when the batch as a whole cannot commit; then nothing of it
        is durable and every request must be reported as unavailable.
        """
        conn = self.conn
        with self._locked():
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._catch_up(conn)
                outcomes, stager = self._apply(requests)
                conn.execute("COMMIT")
            except BaseException:
                self._stale = True
                _rollback(conn, "batch")
                raise
        self._sequence = stager.sequence
        for name, status in stager.statuses.items():
            self._remember(name, status)
        return outcomes

    def _catch_up(self, conn: sqlite3.Connection) -> None:
        """Inside the write transaction: learn the last committed sequence, and forget
        the cached snapshots of every subject another process changed since this
        writer's last transaction (each change is an event)."""
        last = last_sequence(conn)
        if self._stale or last < self._sequence:
            self._forget_all()
        elif last > self._sequence and self._cache:
            for (name,) in conn.execute(
                "SELECT DISTINCT name FROM events WHERE sequence > ?", (self._sequence,)
            ):
                self._forget(name)
        self._sequence = last
        self._stale = False

    def probe(self) -> None:
        """Commit a tiny real write (and its fsync) to tell whether commits work again."""
        conn = self.conn
        with self._locked():
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "INSERT OR REPLACE INTO writer_probe (id, probed_at) VALUES (1, ?)",
                    (to_micros(datetime.now(UTC)),),
                )
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn, "probe")
                raise

    def _apply(self, requests: Sequence[IngestRequest]) -> tuple[list[Outcome], Stager]:
        """Stage the batch and write it with one ``executemany`` per table; only when that
        fails on a request's own error is it rolled back, staged again and written
        request by request, each in its own SAVEPOINT, so the request at fault fails
        alone. Returns the outcomes and the stager holding what the batch changed."""
        conn = self.conn
        # Read before the batch writes anything, so what is read is committed state.
        snapshots = self._lookup_all(subjects(requests))
        replays = replayed(requests)
        deliveries = existing_deliveries(conn, replays) if replays else set()
        now = datetime.now(UTC)

        def fresh() -> Stager:
            return Stager(snapshots, deliveries=deliveries, sequence=self._sequence, now=now)

        stager = fresh()
        outcomes, rows = stage_all(stager, requests)
        conn.execute("SAVEPOINT batch")
        try:
            self._write(rows)
        except Exception as exc:
            if is_store_failure(exc):
                raise
            conn.execute("ROLLBACK TO batch")
            conn.execute("RELEASE batch")
            log.info("a request of the batch failed (%r); applying them one by one", exc)
            stager = fresh()
            return [self._apply_alone(request, stager) for request in requests], stager
        conn.execute("RELEASE batch")
        return outcomes, stager

    def _apply_alone(self, request: IngestRequest, stager: Stager) -> Outcome:
        """The slow path: one request in its own SAVEPOINT, rolled back alone on failure."""
        try:
            plan = stager.stage(request)
        except Exception as exc:
            return failed_alone(exc)
        conn = self.conn
        conn.execute("SAVEPOINT request")
        try:
            self._write(plan.rows)
        except Exception as exc:
            if is_store_failure(exc):
                raise
            conn.execute("ROLLBACK TO request")
            conn.execute("RELEASE request")
            return failed_alone(exc)
        conn.execute("RELEASE request")
        stager.accept(plan)
        return plan.result

    def _lookup_all(self, names: Sequence[str]) -> dict[str, Status]:
        """The committed snapshot of every named subject that exists: from the cache,
        else read from the file in one query per 500 names."""
        known: dict[str, Status] = {}
        missing: list[str] = []
        cache = self._cache
        for name in names:
            cached = cache.pop(name, None)
            if cached is not None:
                cache[name] = cached  # most recently used now
                known[name] = Status.FromString(cached)
            else:
                missing.append(name)
        if missing:
            loaded = get_statuses(self.conn, missing)
            for name, status in loaded.items():
                self._remember(name, status)
            known.update(loaded)
        return known

    def _write(self, rows: Rows) -> None:
        conn = self.conn
        if rows.deliveries:
            conn.executemany(
                _INSERT_DELIVERY,
                [
                    (
                        r.id,
                        r.source,
                        to_micros(r.received_at),
                        r.verdict,
                        r.detail,
                        r.headers,
                        r.body,
                        r.idempotency_key,
                        r.path,
                    )
                    for r in rows.deliveries
                ],
            )
        if rows.replays:
            conn.executemany(
                _REPLAYED, [(r.verdict, r.detail, r.id) for r in rows.replays.values()]
            )
        if rows.events:
            conn.executemany(_INSERT_EVENT, rows.events)
        if rows.statuses:
            conn.executemany(
                _UPSERT_STATUS,
                [
                    (
                        r.name,
                        r.source,
                        r.parent,
                        r.kind,
                        r.state,
                        int(r.terminal),
                        to_micros(r.updated_at),
                        r.sequence,
                        r.data,
                    )
                    for r in rows.statuses.values()
                ],
            )

    def _remember(self, name: str, status: Status) -> None:
        self._forget(name)
        encoded = status.SerializeToString()
        self._cache[name] = encoded
        self._cache_bytes += _entry_cost(name, encoded)
        cache = self._cache
        while self._cache_bytes > self._cache_size and cache:
            oldest = next(iter(cache))
            self._cache_bytes -= _entry_cost(oldest, cache.pop(oldest))

    def _forget(self, name: str) -> None:
        encoded = self._cache.pop(name, None)
        if encoded is not None:
            self._cache_bytes -= _entry_cost(name, encoded)

    def _forget_all(self) -> None:
        self._cache.clear()
        self._cache_bytes = 0


# What one cache entry is taken to cost: its name and encoding, and about as much again
# for the two objects and the dict slot that hold them.
_ENTRY_OVERHEAD = 160


def _entry_cost(name: str, encoded: bytes) -> int:
    return len(name) + len(encoded) + _ENTRY_OVERHEAD


def _rollback(conn: sqlite3.Connection, what: str) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("rollback of a failed %s failed", what)

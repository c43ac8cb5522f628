"""The write side of ``SqliteStore``: one connection, used only by the writer thread.

``commit_batch`` runs a whole group-commit batch as one transaction, each request inside
its own SAVEPOINT so a request that fails (a bug, a duplicate delivery id) is rolled back
alone while the rest of the batch commits. Everything here is synchronous and must only
ever run in the store's single writer thread.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from statusgate.core.apply import apply, previous_state
from statusgate.store.base import IngestRequest, IngestResult
from statusgate.store.migrations import load_migrations
from statusgate.store.sqlite_queries import connect, decode_status, last_sequence, to_micros
from statusgate.v1.status_pb2 import Status, StatusEvent

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


@dataclass(slots=True)
class _Staged:
    """What one request changed, merged into the batch only once its savepoint holds."""

    statuses: dict[str, Status]
    sequence: int


class SqliteWriter:
    def __init__(self, path: Path, *, busy_timeout_ms: int, cache_size: int) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._cache_size = cache_size
        self._conn: sqlite3.Connection | None = None
        # Current statuses by name, committed state only (insertion order = LRU order).
        self._cache: dict[str, Status] = {}
        # The greatest committed sequence.
        self._sequence = 0
        # After a failed batch the cache and counter may not match the file (SQLite can
        # roll back on its own after an I/O error): both are rebuilt by the next batch.
        self._stale = False
        # Test hook: called in the writer thread just before COMMIT. There is no portable
        # way to make a COMMIT's fsync fail on demand (tests may run as root, where file
        # permissions do not stop writes), so tests raise a real sqlite3 error here.
        self.before_commit: Callable[[], None] | None = None

    def open(self) -> None:
        conn = connect(self._path, busy_timeout_ms=self._busy_timeout_ms)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot use WAL mode on {self._path} ({mode})")
            # FULL: with WAL, every COMMIT syncs the log, so an acknowledged webhook
            # survives power loss (NORMAL would only survive a process crash).
            conn.execute("PRAGMA synchronous = FULL")
            migrate(conn)
            self._sequence = last_sequence(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._cache.clear()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError("the SQLite writer is not open")
        return self._conn

    def commit_batch(self, requests: Sequence[IngestRequest]) -> list[IngestResult | Exception]:
        """Apply and commit every request in one transaction.

        Returns one outcome per request: its result, or the exception that rolled back
        its savepoint. Raises when the batch as a whole cannot commit; then nothing of it
        is durable and every request must be reported as unavailable.
        """
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            if self._stale:
                self._cache.clear()
                self._sequence = last_sequence(conn)
                self._stale = False
            batch = _Staged(statuses={}, sequence=self._sequence)
            outcomes: list[IngestResult | Exception] = []
            for request in requests:
                outcomes.append(self._apply_in_savepoint(request, batch))
            if self.before_commit is not None:
                self.before_commit()
            conn.execute("COMMIT")
        except BaseException:
            self._stale = True
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("rollback of a failed batch failed")
            raise
        self._sequence = batch.sequence
        for name, status in batch.statuses.items():
            self._remember(name, status)
        return outcomes

    def probe(self) -> None:
        """Commit a tiny real write (and its fsync) to tell whether commits work again."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT OR REPLACE INTO writer_probe (id, probed_at) VALUES (1, ?)",
                (to_micros(datetime.now(UTC)),),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("rollback of a failed probe failed")
            raise

    def _apply_in_savepoint(
        self, request: IngestRequest, batch: _Staged
    ) -> IngestResult | Exception:
        conn = self.conn
        conn.execute("SAVEPOINT request")
        try:
            result, staged = self._apply(request, batch)
        except Exception as exc:
            if is_store_failure(exc):
                raise
            conn.execute("ROLLBACK TO request")
            conn.execute("RELEASE request")
            log.warning("ingest request failed and was rolled back alone: %r", exc)
            return exc
        conn.execute("RELEASE request")
        batch.statuses.update(staged.statuses)
        batch.sequence = staged.sequence
        return result

    def _apply(self, request: IngestRequest, batch: _Staged) -> tuple[IngestResult, _Staged]:
        conn = self.conn
        now = datetime.now(UTC)
        delivery = request.delivery
        if delivery is not None and request.replay_of:
            raise ValueError("an ingest request has either a delivery or replay_of, not both")
        if delivery is not None:
            conn.execute(
                "INSERT INTO deliveries (id, source, received_at, verdict, detail, headers, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    delivery.id,
                    delivery.source,
                    to_micros(delivery.received_at),
                    str(delivery.verdict),
                    delivery.detail,
                    json.dumps(delivery.headers, sort_keys=True),
                    delivery.body,
                ),
            )
            delivery_id = delivery.id
        elif request.replay_of:
            delivery_id = request.replay_of
            if request.updates:
                updated = conn.execute(
                    "UPDATE deliveries SET verdict = 'mapped', detail = '' WHERE id = ?",
                    (delivery_id,),
                )
                if updated.rowcount != 1:
                    raise LookupError(f"replay of unknown delivery {delivery_id!r}")
        else:
            delivery_id = ""
        received_at = request.received_at or (delivery.received_at if delivery else now)

        staged = _Staged(statuses={}, sequence=batch.sequence)
        events: list[StatusEvent] = []
        for update in request.updates:
            if not update.name:
                raise ValueError("a status update without a name")
            if update.name in staged.statuses:
                current: Status | None = staged.statuses[update.name]
            else:
                current = self._current(update.name, batch)
            new = apply(current, update)
            if new is None:
                continue
            staged.sequence += 1
            new.sequence = staged.sequence
            new.updated_at.FromDatetime(now)
            event = StatusEvent(
                sequence=staged.sequence,
                event_id=uuid.uuid4().hex,
                previous_state=previous_state(current),
                origin=request.origin,
                delivery_id=delivery_id,
            )
            event.status.CopyFrom(new)
            event.received_at.FromDatetime(received_at)
            self._write(new, event, to_micros(now))
            staged.statuses[update.name] = new
            events.append(event)
        return IngestResult(delivery_id=delivery_id, events=events), staged

    def _write(self, status: Status, event: StatusEvent, updated_at: int) -> None:
        conn = self.conn
        conn.execute(
            "INSERT INTO events (sequence, event_id, name, delivery_id, data)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                event.sequence,
                event.event_id,
                status.name,
                event.delivery_id or None,
                event.SerializeToString(deterministic=True),
            ),
        )
        conn.execute(
            "INSERT INTO statuses"
            " (name, source, parent, kind, state, terminal, updated_at, sequence, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET source = excluded.source,"
            " parent = excluded.parent, kind = excluded.kind, state = excluded.state,"
            " terminal = excluded.terminal, updated_at = excluded.updated_at,"
            " sequence = excluded.sequence, data = excluded.data",
            (
                status.name,
                status.source,
                status.parent,
                int(status.kind),
                int(status.state),
                int(status.terminal),
                updated_at,
                status.sequence,
                status.SerializeToString(deterministic=True),
            ),
        )

    def _current(self, name: str, batch: _Staged) -> Status | None:
        """The subject's latest snapshot: this batch's, else the cache, else the file."""
        if name in batch.statuses:
            return batch.statuses[name]
        cached = self._cache.get(name)
        if cached is not None:
            self._remember(name, cached)
            return cached
        row = self.conn.execute("SELECT data FROM statuses WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        # Inside the batch's transaction the file shows earlier requests' uncommitted
        # writes, but those names are in batch.statuses and never reach this read: what
        # is read here is committed state and safe to cache.
        status = decode_status(row[0])
        self._remember(name, status)
        return status

    def _remember(self, name: str, status: Status) -> None:
        self._cache.pop(name, None)
        self._cache[name] = status
        if len(self._cache) > self._cache_size:
            del self._cache[next(iter(self._cache))]

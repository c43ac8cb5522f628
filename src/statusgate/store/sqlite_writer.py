"""The write side of ``SqliteStore``: one connection, used only by the writer thread.

``commit_batch`` runs a whole group-commit batch as one transaction: the batch's rows
are computed in Python and written with one ``executemany`` per table. A request whose
rules fail (a bug) is left out alone; when a write fails on a request's own error (a
duplicate delivery id) the batch is redone with each request inside its own SAVEPOINT,
so that request is rolled back alone while the rest of the batch commits. Everything
here is synchronous and must only ever run in the store's single writer thread.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from statusgate.core.apply import apply, previous_state
from statusgate.store.base import (
    IngestRequest,
    IngestResult,
    delivery_of,
    received_at_of,
    replay_of,
)
from statusgate.store.migrations import load_migrations
from statusgate.store.sqlite_queries import (
    connect,
    get_statuses,
    last_sequence,
    to_micros,
)
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


_INSERT_DELIVERY = (
    "INSERT INTO deliveries (id, source, received_at, verdict, detail, headers, body)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EVENT = (
    "INSERT INTO events (sequence, event_id, name, delivery_id, data) VALUES (?, ?, ?, ?, ?)"
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
# json.dumps(..., sort_keys=True) builds a new encoder per call; this is the same encoder.
_encode_headers = json.JSONEncoder(sort_keys=True).encode
_REPLAY_DELIVERY = "UPDATE deliveries SET verdict = 'mapped', detail = '' WHERE id = ?"

_DeliveryRow = tuple[str, str, int, str, str, str, bytes]
_EventRow = tuple[int, str, str, str | None, bytes]
_StatusRow = tuple[str, str, str, int, int, int, int, int, bytes]


@dataclass(slots=True)
class _Staged:
    """What one request changed, merged into the batch only once its writes hold."""

    statuses: dict[str, Status]
    sequence: int


@dataclass(slots=True)
class _Rows:
    """The rows a request (or a whole batch) writes, in foreign-key order."""

    deliveries: list[_DeliveryRow]
    events: list[_EventRow]
    # By name: a subject changed twice in one batch is written once, as it ends up.
    statuses: dict[str, _StatusRow]


def _set_micros(timestamp: Timestamp, micros: int) -> None:
    """``Timestamp.FromDatetime`` from UTC microseconds (the same floor division, so
    times before the epoch get the same seconds and positive nanos)."""
    seconds, rest = divmod(micros, 1_000_000)
    timestamp.seconds = seconds
    timestamp.nanos = rest * 1000


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
    ) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._cache_size = cache_size
        self._connection_class = connection_class
        self._conn: sqlite3.Connection | None = None
        # Current statuses by name, committed state only (insertion order = LRU order).
        self._cache: dict[str, Status] = {}
        # The greatest committed sequence.
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
        its changes. Raises when the batch as a whole cannot commit; then nothing of it
        is durable and every request must be reported as unavailable.

        The whole batch is first written with one ``executemany`` per table; only when
        that fails on a request's own error (a duplicate delivery id) is it rolled back
        and applied again request by request, each in its own SAVEPOINT, so the request
        at fault fails alone.
        """
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            if self._stale:
                self._cache.clear()
                self._sequence = last_sequence(conn)
                self._stale = False
            now = to_micros(datetime.now(UTC))
            applied = self._apply_batch(requests, now)
            if applied is None:
                batch = _Staged(statuses={}, sequence=self._sequence)
                outcomes = [self._apply_in_savepoint(request, batch, now) for request in requests]
            else:
                outcomes, batch = applied
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

    def _apply_batch(
        self, requests: Sequence[IngestRequest], now: int
    ) -> tuple[list[IngestResult | Exception], _Staged] | None:
        """The fast path: every request's rows computed in Python, then written with one
        ``executemany`` per table. None (with nothing written) when a write failed on a
        request's own error, or when the batch holds a replay: then the caller applies
        the batch request by request."""
        if any(replay_of(request) for request in requests):
            return None
        known = self._lookup_all(requests)
        batch = _Staged(statuses={}, sequence=self._sequence)
        rows = _Rows(deliveries=[], events=[], statuses={})

        def current(name: str) -> Status | None:
            if name in batch.statuses:
                return batch.statuses[name]
            return known.get(name)

        outcomes: list[IngestResult | Exception] = []
        for request in requests:
            try:
                result, staged = self._prepare(request, current, batch.sequence, now, rows)
            except Exception as exc:
                # Nothing of the request was written or merged yet: it fails alone.
                log.warning("ingest request failed and was rolled back alone: %r", exc)
                outcomes.append(exc)
                continue
            batch.statuses.update(staged.statuses)
            batch.sequence = staged.sequence
            outcomes.append(result)

        conn = self.conn
        conn.execute("SAVEPOINT batch")
        try:
            self._write(rows)
        except Exception as exc:
            if is_store_failure(exc):
                raise
            conn.execute("ROLLBACK TO batch")
            conn.execute("RELEASE batch")
            log.info("a request of the batch failed (%r); applying them one by one", exc)
            return None
        conn.execute("RELEASE batch")
        return outcomes, batch

    def _lookup_all(self, requests: Sequence[IngestRequest]) -> dict[str, Status]:
        """The committed snapshot of every subject the batch updates and that exists:
        from the cache, else read from the file in one query per 500 names. Runs before
        the batch writes anything, so what it reads is committed and safe to cache."""
        known: dict[str, Status] = {}
        missing: list[str] = []
        cache = self._cache
        for request in requests:
            for update in request.updates:
                name = update.name
                if name in known:
                    continue
                cached = cache.get(name)
                if cached is not None:
                    self._remember(name, cached)
                    known[name] = cached
                else:
                    missing.append(name)
        if missing:
            loaded = get_statuses(self.conn, missing)
            for name, status in loaded.items():
                self._remember(name, status)
            known.update(loaded)
        return known

    def _apply_in_savepoint(
        self, request: IngestRequest, batch: _Staged, now: int
    ) -> IngestResult | Exception:
        """The slow path: one request in its own SAVEPOINT, rolled back alone on failure."""
        conn = self.conn
        conn.execute("SAVEPOINT request")
        try:
            rows = _Rows(deliveries=[], events=[], statuses={})
            result, staged = self._prepare(
                request, lambda name: self._current(name, batch), batch.sequence, now, rows
            )
            if replay_of(request) and request.updates:
                updated = conn.execute(_REPLAY_DELIVERY, (replay_of(request),))
                if updated.rowcount != 1:
                    raise LookupError(f"replay of unknown delivery {replay_of(request)!r}")
            self._write(rows)
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

    def _prepare(
        self,
        request: IngestRequest,
        current: Callable[[str], Status | None],
        sequence: int,
        now: int,
        rows: _Rows,
    ) -> tuple[IngestResult, _Staged]:
        """Apply ``request`` in memory and append the rows it writes to ``rows``, only
        once it cannot fail any more (so a failing request leaves ``rows`` untouched).
        ``now`` is the batch's time in UTC microseconds; ``sequence`` the last one used."""
        delivery = delivery_of(request)
        if delivery is not None and replay_of(request):
            raise ValueError("an ingest request has either a delivery or replay_of, not both")
        delivery_row: _DeliveryRow | None = None
        received_at = now
        if delivery is not None:
            received_at = to_micros(delivery.received_at)
            delivery_row = (
                delivery.id,
                delivery.source,
                received_at,
                str(delivery.verdict),
                delivery.detail,
                _encode_headers(delivery.headers),
                delivery.body,
            )
            delivery_id = delivery.id
        else:
            delivery_id = replay_of(request)
        if (polled_at := received_at_of(request)) is not None:
            received_at = to_micros(polled_at)

        staged = _Staged(statuses={}, sequence=sequence)
        events: list[StatusEvent] = []
        event_rows: list[_EventRow] = []
        status_rows: list[_StatusRow] = []
        for update in request.updates:
            name = update.name
            if not name:
                raise ValueError("a status update without a name")
            previous = staged.statuses[name] if name in staged.statuses else current(name)
            new = apply(previous, update)
            if new is None:
                continue
            staged.sequence += 1
            new.sequence = staged.sequence
            _set_micros(new.updated_at, now)
            event = StatusEvent(
                sequence=staged.sequence,
                # 128 random bits, as uuid4().hex but cheaper.
                event_id=os.urandom(16).hex(),
                previous_state=previous_state(previous),
                origin=request.origin,
                delivery_id=delivery_id,
            )
            event.status.CopyFrom(new)
            _set_micros(event.received_at, received_at)
            event_rows.append(
                (
                    event.sequence,
                    event.event_id,
                    name,
                    delivery_id or None,
                    event.SerializeToString(deterministic=True),
                )
            )
            status_rows.append(
                (
                    name,
                    new.source,
                    new.parent,
                    int(new.kind),
                    int(new.state),
                    int(new.terminal),
                    now,
                    new.sequence,
                    new.SerializeToString(deterministic=True),
                )
            )
            staged.statuses[name] = new
            events.append(event)
        if delivery_row is not None:
            rows.deliveries.append(delivery_row)
        rows.events.extend(event_rows)
        for row in status_rows:
            rows.statuses[row[0]] = row
        return IngestResult(delivery_id=delivery_id, events=events), staged

    def _write(self, rows: _Rows) -> None:
        conn = self.conn
        if rows.deliveries:
            conn.executemany(_INSERT_DELIVERY, rows.deliveries)
        if rows.events:
            conn.executemany(_INSERT_EVENT, rows.events)
        if rows.statuses:
            conn.executemany(_UPSERT_STATUS, rows.statuses.values())

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
        status = Status.FromString(row[0])
        self._remember(name, status)
        return status

    def _remember(self, name: str, status: Status) -> None:
        self._cache.pop(name, None)
        self._cache[name] = status
        if len(self._cache) > self._cache_size:
            del self._cache[next(iter(self._cache))]

"""SQLite connections, row codecs and the read queries of ``SqliteStore``.

Every function here takes a ``sqlite3.Connection`` and runs synchronously: the store
calls them in its reader threads (one connection each) so the event loop never waits on
disk. WAL mode lets them run while the writer commits.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from statusgate.core.filters import StatusQuery
from statusgate.store import delivery_sql
from statusgate.store.base import (
    Delivery,
    DeliveryCursor,
    DeliveryQuery,
    DeliveryVerdict,
    EventRef,
    IngestRequest,
    PollBacklog,
    PollClaim,
)
from statusgate.store.staging import Outcome, Stager, preview, replayed, subjects
from statusgate.v1.status_pb2 import Status, StatusEvent

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Stay well below SQLite's limit on bound parameters in one statement.
_MAX_PARAMS = 500


def connect(
    path: Path,
    *,
    busy_timeout_ms: int,
    read_only: bool = False,
    connection_class: type[sqlite3.Connection] = sqlite3.Connection,
) -> sqlite3.Connection:
    """A connection in autocommit mode, so transactions are exactly the BEGIN/COMMIT the
    store issues (the sqlite3 module's implicit transactions would hide them)."""
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        timeout=busy_timeout_ms / 1000,
        # Reader connections are closed by whichever thread runs close(), after their
        # pool has stopped; the writer connection never leaves its thread.
        check_same_thread=not read_only,
        factory=connection_class,
    )
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA foreign_keys = ON")
    if read_only:
        conn.execute("PRAGMA query_only = ON")
    return conn


def to_micros(value: datetime) -> int:
    """UTC microseconds since the epoch; a naive datetime is taken as UTC (never local
    time, which ``datetime.timestamp`` would assume)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


def get_status(conn: sqlite3.Connection, name: str) -> Status | None:
    row = conn.execute("SELECT data FROM statuses WHERE name = ?", (name,)).fetchone()
    return Status.FromString(row[0]) if row is not None else None


def get_statuses(conn: sqlite3.Connection, names: Sequence[str]) -> dict[str, Status]:
    found: dict[str, Status] = {}
    unique = list(dict.fromkeys(names))
    for start in range(0, len(unique), _MAX_PARAMS):
        chunk = unique[start : start + _MAX_PARAMS]
        rows = conn.execute(
            f"SELECT name, data FROM statuses WHERE name IN ({_placeholders(len(chunk))})",  # noqa: S608
            chunk,
        )
        found.update((name, Status.FromString(data)) for name, data in rows)
    return found


def existing_deliveries(conn: sqlite3.Connection, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _MAX_PARAMS):
        chunk = unique[start : start + _MAX_PARAMS]
        rows = conn.execute(
            f"SELECT id FROM deliveries WHERE id IN ({_placeholders(len(chunk))})",  # noqa: S608
            chunk,
        )
        found.update(id_ for (id_,) in rows)
    return found


def status_query_sql(
    query: StatusQuery, *, after_name: str, limit: int
) -> tuple[str, list[str | int]]:
    """The SELECT for ``list_statuses``: every set field of the query is one AND-ed
    clause; values are always bound, never formatted into the SQL."""
    clauses: list[str] = []
    params: list[str | int] = []

    def any_of(column: str, values: Sequence[str] | Sequence[int]) -> None:
        clauses.append(f"{column} IN ({_placeholders(len(values))})")
        params.extend(values)

    if query.sources:
        any_of("source", query.sources)
    if query.names:
        any_of("name", query.names)
    if query.name_prefixes:
        # Whole-segment prefixes as index-friendly ranges: every name below p + "/" sorts
        # in [p + "/", p + "0") because "0" is the character after "/" (BINARY collation
        # compares UTF-8 bytes, i.e. code points). Unlike LIKE this needs no escaping of
        # "%" and "_" in provider ids and is case-sensitive.
        alternatives = []
        for prefix in query.name_prefixes:
            base = prefix.rstrip("/")
            alternatives.append("(name = ? OR (name >= ? AND name < ?))")
            # Equality with the prefix as given, like core.names.name_has_prefix: a
            # trailing "/" selects the descendants only.
            params.extend((prefix, base + "/", base + "0"))
        clauses.append("(" + " OR ".join(alternatives) + ")")
    if query.kinds:
        any_of("kind", [int(kind) for kind in query.kinds])
    if query.states:
        any_of("state", [int(state) for state in query.states])
    if query.terminal is not None:
        clauses.append("terminal = ?")
        params.append(int(query.terminal))
    if query.updated_before is not None:
        clauses.append("updated_at < ?")
        params.append(to_micros(query.updated_before))
    if after_name:
        clauses.append("name > ?")
        params.append(after_name)
    where = " AND ".join(clauses) if clauses else "1"
    params.append(limit)
    return f"SELECT data FROM statuses WHERE {where} ORDER BY name LIMIT ?", params  # noqa: S608


def list_statuses(
    conn: sqlite3.Connection, query: StatusQuery, *, after_name: str, limit: int
) -> list[Status]:
    sql, params = status_query_sql(query, after_name=after_name, limit=limit)
    return [Status.FromString(data) for (data,) in conn.execute(sql, params)]


def list_events(
    conn: sqlite3.Connection, name: str, *, after_sequence: int, limit: int
) -> list[StatusEvent]:
    rows = conn.execute(
        "SELECT data FROM events WHERE name = ? AND sequence > ? ORDER BY sequence LIMIT ?",
        (name, after_sequence, limit),
    )
    return [StatusEvent.FromString(data) for (data,) in rows]


def read_events(conn: sqlite3.Connection, *, after_sequence: int, limit: int) -> list[StatusEvent]:
    # One writer commits batches in sequence order, so whatever a reader sees is a
    # prefix of the sequence: no gap can hide behind a later commit.
    rows = conn.execute(
        "SELECT data FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?",
        (after_sequence, limit),
    )
    return [StatusEvent.FromString(data) for (data,) in rows]


def last_sequence(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT COALESCE(MAX(sequence), 0) FROM events").fetchone()
    return int(row[0])


def list_deliveries(
    conn: sqlite3.Connection,
    verdicts: Sequence[DeliveryVerdict],
    *,
    source: str | None,
    since: datetime | None,
    after_id: str,
    limit: int,
) -> list[Delivery]:
    """Oldest first, by (received_at, id); ``after_id`` continues after that delivery.
    No verdicts means any verdict."""
    clauses: list[str] = []
    params: list[str | int] = []
    if verdicts:
        clauses.append(f"verdict IN ({_placeholders(len(verdicts))})")
        params.extend(str(verdict) for verdict in verdicts)
    if source is not None:
        clauses.append("source = ?")
        params.append(source)
    if since is not None:
        clauses.append("received_at >= ?")
        params.append(to_micros(since))
    if after_id:
        # Keyset paging on (received_at, id); an unknown after_id yields nothing rather
        # than silently restarting from the beginning.
        clauses.append("(received_at, id) > ((SELECT received_at FROM deliveries WHERE id = ?), ?)")
        params.extend((after_id, after_id))
    where = " AND ".join(clauses) if clauses else "1"
    params.append(limit)
    rows = conn.execute(
        f"SELECT {delivery_sql.BODY_COLUMNS} FROM deliveries"  # noqa: S608
        f" WHERE {where} ORDER BY received_at, id LIMIT ?",
        params,
    )
    return [_delivery(row) for row in rows]


def find_delivery(conn: sqlite3.Connection, source: str, key: str) -> Delivery | None:
    """The first accepted delivery of ``source`` stored with idempotency ``key``."""
    row = conn.execute(
        f"SELECT {delivery_sql.BODY_COLUMNS} FROM deliveries"  # noqa: S608
        " WHERE source = ? AND idempotency_key = ? AND verdict IN ('mapped', 'unmapped')"
        " ORDER BY received_at, id LIMIT 1",
        (source, key),
    ).fetchone()
    return None if row is None else _delivery(row)


def query_deliveries(
    conn: sqlite3.Connection,
    query: DeliveryQuery,
    *,
    after: DeliveryCursor | None,
    limit: int,
    oldest_first: bool,
    bodies: bool,
) -> list[Delivery]:
    params: list[object] = []

    def bind(value: object) -> str:
        # Numbered, so a placeholder can appear twice (the page size of every branch).
        params.append(value)
        return f"?{len(params)}"

    sql = delivery_sql.page_sql(
        query,
        after=after,
        limit=limit,
        oldest_first=oldest_first,
        bodies=bodies,
        bind=bind,
        time=to_micros,
    )
    return _with_events(conn, [_delivery(row) for row in conn.execute(sql, params)])


def get_deliveries(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, Delivery]:
    found: list[Delivery] = []
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _MAX_PARAMS):
        chunk = unique[start : start + _MAX_PARAMS]
        rows = conn.execute(
            f"SELECT {delivery_sql.BODY_COLUMNS} FROM deliveries"  # noqa: S608
            f" WHERE id IN ({_placeholders(len(chunk))})",
            chunk,
        )
        found.extend(_delivery(row) for row in rows)
    return {delivery.id: delivery for delivery in _with_events(conn, found)}


def _delivery(row: Sequence[Any]) -> Delivery:
    """A row of ``delivery_sql.COLUMNS`` (and the body, when selected)."""
    id_, source, received_at, verdict, detail, headers, key, path, *body = row
    return Delivery(
        id=id_,
        source=source,
        received_at=from_micros(received_at),
        body=bytes(body[0]) if body else b"",
        headers=json.loads(headers),
        verdict=DeliveryVerdict(verdict),
        detail=detail,
        idempotency_key=key,
        path=path,
    )


def _with_events(conn: sqlite3.Connection, deliveries: list[Delivery]) -> list[Delivery]:
    refs: dict[str, list[EventRef]] = {}
    ids = [delivery.id for delivery in deliveries]
    for start in range(0, len(ids), _MAX_PARAMS):
        chunk = ids[start : start + _MAX_PARAMS]
        rows = conn.execute(delivery_sql.events_sql(chunk, lambda _: "?"), chunk)
        for delivery_id, sequence, name in rows:
            refs.setdefault(delivery_id, []).append(EventRef(sequence, name))
    return [
        dataclasses.replace(d, events=tuple(refs[d.id])) if d.id in refs else d for d in deliveries
    ]


def preview_ingest(
    conn: sqlite3.Connection, requests: Sequence[IngestRequest], *, now: datetime
) -> list[Outcome]:
    """A dry run of ``requests`` against one consistent snapshot of the file (a read
    transaction), staged exactly as the writer would stage them."""
    conn.execute("BEGIN")
    try:
        snapshots = get_statuses(conn, subjects(requests))
        deliveries = existing_deliveries(conn, replayed(requests))
        sequence = last_sequence(conn)
    finally:
        conn.execute("COMMIT")
    stager = Stager(snapshots, deliveries=deliveries, sequence=sequence, now=now)
    return preview(stager, requests)


# --- the reconciler's schedule (written by the writer connection only) ------------------

# Quiet, non-terminal subjects of one source that are due and that nobody holds a lease
# on, never-polled ones first, then the longest unpolled. A subject that changed since
# its last poll (seen_sequence differs) is due at once and starts its backoff over.
_DUE_POLLS = """
SELECT s.name,
       s.updated_at,
       CASE WHEN p.seen_sequence = s.sequence THEN p.attempts ELSE 0 END AS attempts,
       p.last_polled_at
FROM statuses AS s
LEFT JOIN poll_schedule AS p ON p.name = s.name
WHERE s.source = :source
  AND s.terminal = 0
  AND s.updated_at < :quiet_before
  AND s.updated_at > :changed_after
  AND (p.name IS NULL OR p.seen_sequence <> s.sequence OR p.next_poll_at <= :now)
  AND (p.lease_until IS NULL OR p.lease_until <= :now)
ORDER BY p.last_polled_at IS NOT NULL, p.last_polled_at, s.updated_at
LIMIT :limit
"""

_TAKE_LEASE = """
INSERT INTO poll_schedule (name, source, lease_owner, lease_until)
VALUES (:name, :source, :owner, :lease_until)
ON CONFLICT (name) DO UPDATE
SET lease_owner = excluded.lease_owner, lease_until = excluded.lease_until
"""

# Only the lease's holder records the outcome: a reconciler whose lease expired (and
# was taken over) must not overwrite the newer owner's schedule.
_FINISH_POLL = """
UPDATE poll_schedule
SET attempts = :attempts,
    next_poll_at = :next_poll_at,
    last_polled_at = :now,
    seen_sequence = COALESCE((SELECT sequence FROM statuses WHERE name = :name), 0),
    lease_owner = NULL,
    lease_until = NULL
WHERE name = :name AND lease_owner = :owner
"""


def claim_due_polls(
    conn: sqlite3.Connection,
    source: str,
    *,
    now: datetime,
    quiet_before: datetime,
    changed_after: datetime,
    owner: str,
    lease_until: datetime,
    limit: int,
) -> list[PollClaim]:
    """Select and lease in one IMMEDIATE transaction, so no other writer can claim the
    same rows in between (with one writer per file this is belt and braces; the
    PostgreSQL store gets the same from FOR UPDATE SKIP LOCKED)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute(
            _DUE_POLLS,
            {
                "source": source,
                "now": to_micros(now),
                "quiet_before": to_micros(quiet_before),
                "changed_after": to_micros(changed_after),
                "limit": limit,
            },
        ).fetchall()
        conn.executemany(
            _TAKE_LEASE,
            [
                {
                    "name": row[0],
                    "source": source,
                    "owner": owner,
                    "lease_until": to_micros(lease_until),
                }
                for row in rows
            ],
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return [
        PollClaim(
            name=name,
            attempts=attempts,
            updated_at=from_micros(updated_at),
            last_polled_at=None if last_polled_at is None else from_micros(last_polled_at),
        )
        for name, updated_at, attempts, last_polled_at in rows
    ]


# The same subjects as _DUE_POLLS, counted: when each became due is its next_poll_at,
# or, never polled or changed since (its schedule does not apply), when it went quiet.
_POLL_BACKLOG = """
SELECT count(*),
       min(CASE WHEN p.name IS NULL OR p.seen_sequence <> s.sequence
                THEN s.updated_at + :quiet ELSE p.next_poll_at END)
FROM statuses AS s
LEFT JOIN poll_schedule AS p ON p.name = s.name
WHERE s.source = :source
  AND s.terminal = 0
  AND s.updated_at < :quiet_before
  AND s.updated_at > :changed_after
  AND (p.name IS NULL OR p.seen_sequence <> s.sequence OR p.next_poll_at <= :now)
  AND (p.lease_until IS NULL OR p.lease_until <= :now)
"""


def poll_backlog(
    conn: sqlite3.Connection,
    source: str,
    *,
    now: datetime,
    quiet_before: datetime,
    changed_after: datetime,
) -> PollBacklog:
    count, oldest = conn.execute(
        _POLL_BACKLOG,
        {
            "source": source,
            "now": to_micros(now),
            "quiet_before": to_micros(quiet_before),
            "changed_after": to_micros(changed_after),
            "quiet": to_micros(now) - to_micros(quiet_before),
        },
    ).fetchone()
    return PollBacklog(count, None if oldest is None else from_micros(oldest))


def oldest_non_terminal(conn: sqlite3.Connection, source: str) -> Status | None:
    # statuses_by_source_quiet (source, terminal, updated_at): one index probe.
    row = conn.execute(
        "SELECT data FROM statuses WHERE source = ? AND terminal = 0"
        " ORDER BY updated_at, name LIMIT 1",
        (source,),
    ).fetchone()
    return Status.FromString(row[0]) if row is not None else None


def count_subjects(conn: sqlite3.Connection) -> dict[tuple[str, int], int]:
    # One pass over the statuses: run on the metrics' schedule, never per request.
    rows = conn.execute("SELECT source, state, count(*) FROM statuses GROUP BY source, state")
    return {(source, state): count for source, state, count in rows}


def count_deliveries(
    conn: sqlite3.Connection, *, received_after: datetime
) -> dict[tuple[str, DeliveryVerdict], int]:
    # deliveries_by_received (received_at, id): a range scan of the recent rows only.
    rows = conn.execute(
        "SELECT source, verdict, count(*) FROM deliveries WHERE received_at >= ?"
        " GROUP BY source, verdict",
        (to_micros(received_after),),
    ).fetchall()
    return {(source, DeliveryVerdict(verdict)): count for source, verdict, count in rows}


def finish_poll(
    conn: sqlite3.Connection, name: str, *, owner: str, next_poll_at: datetime, attempts: int
) -> bool:
    """Record the outcome and release the lease; False when ``owner`` no longer held it."""
    cursor = conn.execute(
        _FINISH_POLL,
        {
            "name": name,
            "owner": owner,
            "attempts": attempts,
            "next_poll_at": to_micros(next_poll_at),
            "now": to_micros(datetime.now(UTC)),
        },
    )
    return cursor.rowcount == 1


def prune_deliveries(conn: sqlite3.Connection, received_before: datetime) -> int:
    cutoff = to_micros(received_before)
    deleted = conn.execute(
        "DELETE FROM deliveries WHERE received_at < ? AND NOT EXISTS"
        " (SELECT 1 FROM events WHERE events.delivery_id = deliveries.id)",
        (cutoff,),
    ).rowcount
    emptied = conn.execute(
        "UPDATE deliveries SET body = x'', headers = '{}'"
        " WHERE received_at < ? AND length(body) > 0",
        (cutoff,),
    ).rowcount
    return deleted + emptied

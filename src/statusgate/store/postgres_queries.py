"""Connection settings, error classes, row codecs and the read queries of ``PostgresStore``.

Every query function takes an asyncpg connection and binds every value (``$n``), never
formatting one into the SQL. Reads run at READ COMMITTED, one statement each, so each
sees a snapshot of committed transactions; because event-writing transactions commit in
sequence order (see ``postgres_writer``), such a snapshot always holds a prefix of the
sequence and ``read_events`` needs no gap detection of its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

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

# Query parameters of a store URL that statusgate reads itself; every other one goes to
# asyncpg (libpq-style parameters such as sslmode, or server settings).
SCHEMA_PARAM = "schema"
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_CHANNEL_PREFIX = "statusgate_events"
# PostgreSQL identifiers (and so NOTIFY channels) are at most 63 bytes.
_MAX_IDENTIFIER = 63

# Errors that are the request's own fault (a duplicate delivery id, a value PostgreSQL
# cannot store): they fail that request alone. Anything else fails the batch.
REQUEST_ERRORS = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError)

# Errors that mean "the database cannot serve us right now" (connection refused or
# lost, admin shutdown, timeouts, too many connections, disk full, lock timeouts):
# callers see StoreUnavailableError and should retry.
UNAVAILABLE_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.TransactionRollbackError,
    asyncpg.LockNotAvailableError,
)


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """What every connection of one store is opened with."""

    dsn: str
    # The schema named by ?schema=, created at start-up; None: the server's search_path.
    schema: str | None
    server_settings: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_url(cls, url: str) -> ConnectionConfig:
        """Split ``?schema=name`` off a ``postgresql://`` URL.

        The schema becomes the connections' ``search_path``, so several deployments (or
        test runs) can share one database without seeing each other's tables. Other
        query parameters stay in the DSN for asyncpg.
        """
        parts = urlsplit(url)
        params = parse_qsl(parts.query, keep_blank_values=True)
        schemas = [value for key, value in params if key == SCHEMA_PARAM]
        rest = [(key, value) for key, value in params if key != SCHEMA_PARAM]
        schema: str | None = None
        if len(schemas) > 1:
            raise ValueError("the store URL names more than one schema")
        if schemas:
            schema = schemas[0]
            if not _SCHEMA_RE.match(schema):
                raise ValueError(
                    f"schema {schema!r} must be a lower-case identifier ([a-z_][a-z0-9_]*,"
                    " at most 63 characters)"
                )
        # application_name is handled here so that one given in the URL (to tell the
        # replicas apart in pg_stat_activity) wins over the default.
        names = [value for key, value in rest if key == "application_name"]
        rest = [(key, value) for key, value in rest if key != "application_name"]
        settings = {"application_name": names[-1] if names else "statusgate"}
        if schema is not None:
            settings["search_path"] = quote_ident(schema)
        dsn = urlunsplit(parts._replace(query=urlencode(rest)))
        return cls(dsn=dsn, schema=schema, server_settings=settings)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def channel_for(schema: str) -> str:
    """The NOTIFY channel of the store in ``schema``. Channels are per database, not per
    schema, so the schema is part of the name; stores in other schemas stay silent."""
    channel = f"{_CHANNEL_PREFIX}_{schema}"
    if len(channel.encode()) > _MAX_IDENTIFIER:
        digest = hashlib.sha256(schema.encode()).hexdigest()[:24]
        channel = f"{_CHANNEL_PREFIX}_{digest}"
    return channel


def utc(value: datetime) -> datetime:
    """A naive datetime is taken as UTC (like the SQLite store), never local time."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# --- reads -------------------------------------------------------------------------------


async def get_status(conn: asyncpg.Connection, name: str) -> Status | None:
    data = await conn.fetchval("SELECT data FROM statuses WHERE name = $1", name)
    return Status.FromString(data) if data is not None else None


async def get_statuses(conn: asyncpg.Connection, names: Sequence[str]) -> dict[str, Status]:
    rows = await conn.fetch(
        "SELECT name, data FROM statuses WHERE name = ANY($1::text[])", list(set(names))
    )
    return {row["name"]: Status.FromString(row["data"]) for row in rows}


async def existing_deliveries(conn: asyncpg.Connection, ids: Sequence[str]) -> set[str]:
    rows = await conn.fetch("SELECT id FROM deliveries WHERE id = ANY($1::text[])", list(ids))
    return {row["id"] for row in rows}


def status_query_sql(query: StatusQuery, *, after_name: str, limit: int) -> tuple[str, list[Any]]:
    """The SELECT for ``list_statuses``: every set field of the query is one AND-ed
    clause (the same clauses as the SQLite store's)."""
    clauses: list[str] = []
    params: list[Any] = []

    def bind(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if query.sources:
        clauses.append(f"source = ANY({bind(list(query.sources))}::text[])")
    if query.names:
        clauses.append(f"name = ANY({bind(list(query.names))}::text[])")
    if query.name_prefixes:
        # Whole-segment prefixes as index-friendly ranges: every name below p + "/" sorts
        # in [p + "/", p + "0") because "0" follows "/" and the column collates "C"
        # (UTF-8 bytes, i.e. code points). Unlike LIKE this needs no escaping of "%" and
        # "_" in provider ids and is case-sensitive.
        alternatives = []
        for prefix in query.name_prefixes:
            base = prefix.rstrip("/")
            alternatives.append(
                f"(name = {bind(prefix)} OR (name >= {bind(base + '/')}"
                f" AND name < {bind(base + '0')}))"
            )
        clauses.append("(" + " OR ".join(alternatives) + ")")
    if query.kinds:
        clauses.append(f"kind = ANY({bind([int(kind) for kind in query.kinds])}::int[])")
    if query.states:
        clauses.append(f"state = ANY({bind([int(state) for state in query.states])}::int[])")
    if query.terminal is not None:
        clauses.append(f"terminal = {bind(query.terminal)}")
    if query.updated_before is not None:
        clauses.append(f"updated_at < {bind(utc(query.updated_before))}")
    if after_name:
        clauses.append(f"name > {bind(after_name)}")
    where = " AND ".join(clauses) if clauses else "TRUE"
    limit_param = bind(limit)
    sql = f"SELECT data FROM statuses WHERE {where} ORDER BY name LIMIT {limit_param}"  # noqa: S608
    return sql, params


async def list_statuses(
    conn: asyncpg.Connection, query: StatusQuery, *, after_name: str, limit: int
) -> list[Status]:
    sql, params = status_query_sql(query, after_name=after_name, limit=limit)
    return [Status.FromString(row["data"]) for row in await conn.fetch(sql, *params)]


async def list_events(
    conn: asyncpg.Connection, name: str, *, after_sequence: int, limit: int
) -> list[StatusEvent]:
    rows = await conn.fetch(
        "SELECT data FROM events WHERE name = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
        name,
        after_sequence,
        limit,
    )
    return [StatusEvent.FromString(row["data"]) for row in rows]


async def read_events(
    conn: asyncpg.Connection, *, after_sequence: int, limit: int
) -> list[StatusEvent]:
    # Gap-free without further checks: the statement's snapshot holds whole batches,
    # and batches become visible in sequence order (the event_sequence row lock).
    rows = await conn.fetch(
        "SELECT data FROM events WHERE sequence > $1 ORDER BY sequence LIMIT $2",
        after_sequence,
        limit,
    )
    return [StatusEvent.FromString(row["data"]) for row in rows]


async def last_sequence(conn: asyncpg.Connection) -> int:
    # The counter is written in the same transaction as the events it numbers.
    value = await conn.fetchval("SELECT value FROM event_sequence WHERE id = 1")
    return int(value)


async def list_deliveries(
    conn: asyncpg.Connection,
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
    params: list[Any] = []

    def bind(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if verdicts:
        clauses.append(f"verdict = ANY({bind([str(v) for v in verdicts])}::text[])")
    if source is not None:
        clauses.append(f"source = {bind(source)}")
    if since is not None:
        clauses.append(f"received_at >= {bind(utc(since))}")
    if after_id:
        # Keyset paging; an unknown after_id compares with NULL and yields nothing rather
        # than silently restarting from the beginning.
        after = bind(after_id)
        clauses.append(
            f"(received_at, id) > ((SELECT received_at FROM deliveries WHERE id = {after}),"  # noqa: S608
            f" {after}::text)"
        )
    where = " AND ".join(clauses) if clauses else "TRUE"
    limit_param = bind(limit)
    rows = await conn.fetch(
        f"SELECT {delivery_sql.BODY_COLUMNS} FROM deliveries"  # noqa: S608
        f" WHERE {where} ORDER BY received_at, id LIMIT {limit_param}",
        *params,
    )
    return [_delivery(row) for row in rows]


async def find_delivery(conn: asyncpg.Connection, source: str, key: str) -> Delivery | None:
    """The first accepted delivery of ``source`` stored with idempotency ``key``."""
    row = await conn.fetchrow(
        f"SELECT {delivery_sql.BODY_COLUMNS} FROM deliveries"  # noqa: S608
        " WHERE source = $1 AND idempotency_key = $2 AND verdict IN ('mapped', 'unmapped')"
        " ORDER BY received_at, id LIMIT 1",
        source,
        key,
    )
    return None if row is None else _delivery(row)


async def query_deliveries(
    conn: asyncpg.Connection,
    query: DeliveryQuery,
    *,
    after: DeliveryCursor | None,
    limit: int,
    oldest_first: bool,
    bodies: bool,
) -> list[Delivery]:
    params: list[Any] = []

    def bind(value: object) -> str:
        params.append(value)
        return f"${len(params)}"

    sql = delivery_sql.page_sql(
        query,
        after=after,
        limit=limit,
        oldest_first=oldest_first,
        bodies=bodies,
        bind=bind,
        time=utc,
    )
    return await _with_events(conn, [_delivery(row) for row in await conn.fetch(sql, *params)])


async def get_deliveries(conn: asyncpg.Connection, ids: Sequence[str]) -> dict[str, Delivery]:
    rows = await conn.fetch(
        f"SELECT {delivery_sql.BODY_COLUMNS} FROM deliveries"  # noqa: S608
        " WHERE id = ANY($1::text[])",
        list(set(ids)),
    )
    found = await _with_events(conn, [_delivery(row) for row in rows])
    return {delivery.id: delivery for delivery in found}


def _delivery(row: asyncpg.Record) -> Delivery:
    body = row.get("body")
    return Delivery(
        id=row["id"],
        source=row["source"],
        received_at=row["received_at"],
        body=b"" if body is None else bytes(body),
        headers=json.loads(row["headers"]),
        verdict=DeliveryVerdict(row["verdict"]),
        detail=row["detail"],
        idempotency_key=row["idempotency_key"],
        path=row["path"],
    )


async def _with_events(conn: asyncpg.Connection, deliveries: list[Delivery]) -> list[Delivery]:
    if not deliveries:
        return deliveries
    rows = await conn.fetch(
        "SELECT delivery_id, sequence, name FROM events WHERE delivery_id = ANY($1::text[])"
        " ORDER BY sequence",
        [delivery.id for delivery in deliveries],
    )
    refs: dict[str, list[EventRef]] = {}
    for row in rows:
        refs.setdefault(row["delivery_id"], []).append(EventRef(row["sequence"], row["name"]))
    return [
        dataclasses.replace(d, events=tuple(refs[d.id])) if d.id in refs else d for d in deliveries
    ]


async def preview_ingest(
    conn: asyncpg.Connection, requests: Sequence[IngestRequest], *, now: datetime
) -> list[Outcome]:
    """A dry run of ``requests`` against one snapshot (a read-only REPEATABLE READ
    transaction), staged exactly as a writer would stage them."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        names = subjects(requests)
        snapshots = await get_statuses(conn, names) if names else {}
        replays = replayed(requests)
        deliveries = await existing_deliveries(conn, replays) if replays else set()
        sequence = await last_sequence(conn)
    stager = Stager(snapshots, deliveries=deliveries, sequence=sequence, now=now)
    return preview(stager, requests)


# --- the reconciler's schedule ------------------------------------------------------------

# Every candidate gets a schedule row first (idempotent, committed on its own), so that
# the claim below can lock schedule rows: FOR UPDATE cannot lock the missing side of an
# outer join, and locking statuses rows instead would hold up the ingest writers.
_SCHEDULE_CANDIDATES = """
INSERT INTO poll_schedule (name, source)
SELECT s.name, s.source
FROM statuses AS s
WHERE s.source = $1 AND NOT s.terminal AND s.updated_at < $2 AND s.updated_at > $3
  AND NOT EXISTS (SELECT 1 FROM poll_schedule AS p WHERE p.name = s.name)
ON CONFLICT (name) DO NOTHING
"""

# Due, unleased subjects, never-polled ones first, then the longest unpolled (as in the
# SQLite store). SKIP LOCKED: rows another replica is claiming right now are left to it;
# a row it claimed and committed is re-checked by PostgreSQL against the lease condition
# before we lock it, so two replicas never lease one subject at once.
_CLAIM = """
WITH due AS (
    SELECT p.name,
           s.updated_at,
           CASE WHEN p.seen_sequence = s.sequence THEN p.attempts ELSE 0 END AS attempts,
           p.last_polled_at
    FROM poll_schedule AS p
    JOIN statuses AS s ON s.name = p.name
    WHERE p.source = $1 AND NOT s.terminal AND s.updated_at < $2 AND s.updated_at > $3
      AND (p.seen_sequence <> s.sequence OR p.next_poll_at <= $4)
      AND (p.lease_until IS NULL OR p.lease_until <= $4)
    ORDER BY p.last_polled_at IS NOT NULL, p.last_polled_at, s.updated_at
    LIMIT $5
    FOR UPDATE OF p SKIP LOCKED
)
UPDATE poll_schedule AS p
SET lease_owner = $6, lease_until = $7
FROM due
WHERE p.name = due.name
RETURNING due.name, due.updated_at, due.attempts, due.last_polled_at
"""

# Only the lease's holder records the outcome: a reconciler whose lease expired (and
# was taken over) must not overwrite the newer owner's schedule.
_FINISH_POLL = """
UPDATE poll_schedule
SET attempts = $3,
    next_poll_at = $4,
    last_polled_at = $5,
    seen_sequence = COALESCE((SELECT sequence FROM statuses WHERE name = $1), 0),
    lease_owner = NULL,
    lease_until = NULL
WHERE name = $1 AND lease_owner = $2
"""


async def claim_due_polls(
    conn: asyncpg.Connection,
    source: str,
    *,
    now: datetime,
    quiet_before: datetime,
    changed_after: datetime,
    owner: str,
    lease_until: datetime,
    limit: int,
) -> list[PollClaim]:
    await conn.execute(_SCHEDULE_CANDIDATES, source, utc(quiet_before), utc(changed_after))
    rows = await conn.fetch(
        _CLAIM,
        source,
        utc(quiet_before),
        utc(changed_after),
        utc(now),
        limit,
        owner,
        utc(lease_until),
    )
    claims = [
        PollClaim(
            name=row["name"],
            attempts=row["attempts"],
            updated_at=row["updated_at"],
            last_polled_at=row["last_polled_at"],
        )
        for row in rows
    ]
    # UPDATE ... RETURNING does not keep the CTE's order.
    claims.sort(
        key=lambda c: (c.last_polled_at is not None, c.last_polled_at or c.updated_at, c.updated_at)
    )
    return claims


# The subjects claim_due_polls would lease, counted (as in the SQLite store); a subject
# without a schedule row yet, or changed since its last poll, is due from when it went
# quiet.
_POLL_BACKLOG = """
SELECT count(*) AS due,
       min(CASE WHEN p.name IS NULL OR p.seen_sequence <> s.sequence
                THEN s.updated_at + $5::interval ELSE p.next_poll_at END) AS oldest
FROM statuses AS s
LEFT JOIN poll_schedule AS p ON p.name = s.name
WHERE s.source = $1 AND NOT s.terminal AND s.updated_at < $2 AND s.updated_at > $3
  AND (p.name IS NULL OR p.seen_sequence <> s.sequence OR p.next_poll_at <= $4)
  AND (p.lease_until IS NULL OR p.lease_until <= $4)
"""


async def poll_backlog(
    conn: asyncpg.Connection,
    source: str,
    *,
    now: datetime,
    quiet_before: datetime,
    changed_after: datetime,
) -> PollBacklog:
    row = await conn.fetchrow(
        _POLL_BACKLOG,
        source,
        utc(quiet_before),
        utc(changed_after),
        utc(now),
        utc(now) - utc(quiet_before),
    )
    assert row is not None  # an aggregate always has its one row
    return PollBacklog(row["due"], row["oldest"])


async def oldest_non_terminal(conn: asyncpg.Connection, source: str) -> Status | None:
    row = await conn.fetchrow(
        "SELECT data FROM statuses WHERE source = $1 AND NOT terminal"
        " ORDER BY updated_at, name LIMIT 1",
        source,
    )
    return Status.FromString(row["data"]) if row is not None else None


async def count_subjects(conn: asyncpg.Connection) -> dict[tuple[str, int], int]:
    rows = await conn.fetch(
        "SELECT source, state, count(*) AS n FROM statuses GROUP BY source, state"
    )
    return {(row["source"], row["state"]): row["n"] for row in rows}


async def count_deliveries(
    conn: asyncpg.Connection, *, received_after: datetime
) -> dict[tuple[str, DeliveryVerdict], int]:
    rows = await conn.fetch(
        "SELECT source, verdict, count(*) AS n FROM deliveries WHERE received_at >= $1"
        " GROUP BY source, verdict",
        utc(received_after),
    )
    return {(row["source"], DeliveryVerdict(row["verdict"])): row["n"] for row in rows}


async def finish_poll(
    conn: asyncpg.Connection, name: str, *, owner: str, next_poll_at: datetime, attempts: int
) -> bool:
    """Record the outcome and release the lease; False when ``owner`` no longer held it."""
    status = await conn.execute(
        _FINISH_POLL, name, owner, attempts, utc(next_poll_at), datetime.now(UTC)
    )
    return status == "UPDATE 1"


async def prune_deliveries(conn: asyncpg.Connection, received_before: datetime) -> int:
    cutoff = utc(received_before)
    async with conn.transaction():
        deleted = await conn.execute(
            "DELETE FROM deliveries WHERE received_at < $1 AND NOT EXISTS"
            " (SELECT 1 FROM events WHERE events.delivery_id = deliveries.id)",
            cutoff,
        )
        emptied = await conn.execute(
            "UPDATE deliveries SET body = ''::bytea, headers = '{}'"
            " WHERE received_at < $1 AND length(body) > 0",
            cutoff,
        )
    return int(deleted.split()[-1]) + int(emptied.split()[-1])

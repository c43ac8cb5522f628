"""The write side of ``PostgresStore``: migrations and one group-commit batch.

Sequences. Every batch first locks the one row of ``event_sequence``
(``SELECT ... FOR UPDATE``) and holds that lock until it commits. Batches that write
events therefore run one at a time across all replicas, and commit in sequence order: a
batch numbers its events after the counter's committed value and only the lock holder
can commit numbers, so a reader can never see sequence n + 1 while n is still in
flight. With group commit this costs one lock hand-off per batch, not per webhook, and
the serialization is where throughput is bounded anyway (one WAL flush at a time).

Apply rules under concurrency. Because the counter lock serializes every writer, the
statuses a batch reads after taking it are the latest committed ones, and nobody else
can change them until this batch commits: ``core.apply`` always sees the latest
snapshot without per-row locks (which could also deadlock between replicas). There is no
in-process status cache: another replica may have changed any status since our last
batch. Anything that writes ``statuses`` or ``events`` must take the counter lock first.
A future reconciler schedule can lease subjects with ``SELECT ... FOR UPDATE SKIP
LOCKED`` on its own table, outside this lock.

Round trips. A batch is a fixed number of statements whatever its size: lock, read the
statuses it touches (and the deliveries its replays point at), then one set-based
statement per table (``unnest`` of arrays). Each request is staged in Python first
(``staging``: ``core.apply`` and validation run there), so a request's own Python error
fails it alone without touching the transaction. A request whose rows PostgreSQL
refuses (a duplicate delivery id, a value it cannot store) would fail the set-based
statement for everyone; then the batch rolls back to its savepoint, is staged again and
writes each request inside its own SAVEPOINT (the SQLite store's way), so that one
fails alone and the rest still commit. That slow path is rare: delivery ids are random.

Wake-ups. The batch calls ``pg_notify`` before COMMIT; PostgreSQL delivers it only
if and when the transaction commits, so a listener never hears of an event it cannot
read yet.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from statusgate.store.base import IngestRequest
from statusgate.store.migrations import load_migrations
from statusgate.store.postgres_queries import (
    REQUEST_ERRORS,
    existing_deliveries,
    get_statuses,
    quote_ident,
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

log = logging.getLogger(__name__)

# pg_advisory_xact_lock(key1, key2): key1 marks statusgate's migrations, key2 the schema,
# so replicas starting together on one schema migrate one at a time while other schemas
# of the database are not held up.
_MIGRATION_LOCK = 0x5347_4D31  # "SGM1"


class SchemaTooNewError(Exception):
    """The database was migrated by a newer statusgate than this one."""


async def migrate(conn: asyncpg.Connection, schema: str | None) -> None:
    """Apply pending migrations in order, each in its own transaction, under an advisory
    lock held until that transaction ends: several replicas starting at once apply each
    migration exactly once (the others wait, then find it recorded)."""
    migrations = load_migrations("postgres")
    known = max((version for version, _ in migrations), default=0)
    for version, sql in [(0, ""), *migrations]:
        async with conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext(COALESCE($2, current_schema(), '')))",
                _MIGRATION_LOCK,
                schema,
            )
            if version == 0:
                # CREATE ... IF NOT EXISTS is not safe against a concurrent CREATE; under
                # the lock it is.
                if schema is not None:
                    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
                if await conn.fetchval("SELECT current_schema()") is None:
                    raise asyncpg.InvalidSchemaNameError("no schema of the search_path exists")
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations"
                    " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)"
                )
                newest = await conn.fetchval("SELECT MAX(version) FROM schema_migrations")
                if newest is not None and newest > known:
                    # A newer statusgate migrated this schema; we would misread it.
                    raise SchemaTooNewError(
                        f"database schema version {newest} is newer than this statusgate ({known})"
                    )
                continue
            if await conn.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", version):
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())", version
            )
            log.info("applied postgres migration %04d", version)


async def probe(conn: asyncpg.Connection) -> None:
    """Commit a tiny real write (and its WAL flush) to tell whether commits work again."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO writer_probe (id, probed_at) VALUES (1, now())"
            " ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at"
        )


async def commit_batch(
    conn: asyncpg.Connection, requests: Sequence[IngestRequest], *, channel: str
) -> list[Outcome]:
    """Apply and commit every request in one transaction.

    Returns one outcome per request: its result, or the exception that failed it alone.
    Raises when the batch as a whole cannot commit; then nothing of it is durable.
    """
    async with conn.transaction():
        base = int(await conn.fetchval("SELECT value FROM event_sequence WHERE id = 1 FOR UPDATE"))
        # Read once the lock is held: a batch that waited for another is dated after it
        # (as far as the replicas' clocks agree), not when it began to wait.
        now = datetime.now(UTC)
        names = subjects(requests)
        snapshots = await get_statuses(conn, names) if names else {}
        replays = replayed(requests)
        deliveries = await existing_deliveries(conn, replays) if replays else set()

        def fresh() -> Stager:
            return Stager(snapshots, deliveries=deliveries, sequence=base, now=now)

        stager = fresh()
        outcomes, rows = stage_all(stager, requests)
        try:
            async with conn.transaction():  # SAVEPOINT: the set-based fast path
                await _write(conn, rows)
        except REQUEST_ERRORS as exc:
            log.info("a request of the batch was refused (%r); writing one by one", exc)
            stager = fresh()
            outcomes = [await _write_alone(conn, request, stager) for request in requests]

        if stager.sequence != base:
            await conn.execute("UPDATE event_sequence SET value = $1 WHERE id = 1", stager.sequence)
            await conn.execute("SELECT pg_notify($1, $2)", channel, str(stager.sequence))
    return outcomes


async def _write_alone(conn: asyncpg.Connection, request: IngestRequest, stager: Stager) -> Outcome:
    """The slow path: one request in its own SAVEPOINT, rolled back alone on failure."""
    try:
        plan = stager.stage(request)
    except Exception as exc:
        return failed_alone(exc)
    try:
        async with conn.transaction():
            await _write(conn, plan.rows)
    except REQUEST_ERRORS as exc:
        # Anything else (the connection, the server) fails the whole batch.
        return failed_alone(exc)
    stager.accept(plan)
    return plan.result


async def _write(conn: asyncpg.Connection, rows: Rows) -> None:
    """Every row, one set-based statement per table."""
    if rows.deliveries:
        await conn.execute(
            "INSERT INTO deliveries"
            " (id, source, received_at, verdict, detail, headers, body, idempotency_key, path)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[],"
            " $5::text[], $6::json[], $7::bytea[], $8::text[], $9::text[])",
            *_columns(rows.deliveries),
        )
    if rows.replays:
        await conn.execute(
            "UPDATE deliveries AS d SET verdict = r.verdict, detail = r.detail"
            " FROM unnest($1::text[], $2::text[], $3::text[]) AS r (id, verdict, detail)"
            " WHERE d.id = r.id",
            *_columns(list(rows.replays.values())),
        )
    if rows.events:
        await conn.execute(
            "INSERT INTO events (sequence, event_id, name, delivery_id, data, trace_parent)"
            " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bytea[],"
            " $6::text[])",
            *_columns(rows.events),
        )
    if rows.statuses:
        await conn.execute(
            "INSERT INTO statuses"
            " (name, source, parent, kind, state, terminal, updated_at, sequence, data)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[],"
            " $6::bool[], $7::timestamptz[], $8::bigint[], $9::bytea[])"
            " ON CONFLICT (name) DO UPDATE SET source = excluded.source,"
            " parent = excluded.parent, kind = excluded.kind, state = excluded.state,"
            " terminal = excluded.terminal, updated_at = excluded.updated_at,"
            " sequence = excluded.sequence, data = excluded.data",
            *_columns(list(rows.statuses.values())),
        )


def _columns(rows: Sequence[tuple[object, ...]]) -> list[list[object]]:
    """Row tuples as one list per column: the arrays ``unnest`` takes."""
    return [list(column) for column in zip(*rows, strict=True)]

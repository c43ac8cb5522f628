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
statuses it touches, then one set-based INSERT per table (``unnest`` of arrays). Each
request is staged in Python first (``core.apply`` and validation run there), so a
request's own Python error fails it alone without touching the transaction. A request
whose rows PostgreSQL refuses (a duplicate delivery id, a value it cannot store) would
fail the set-based statement for everyone; then the batch rolls back to its savepoint
and writes each request inside its own SAVEPOINT (the SQLite store's way), so that one
fails alone and the rest still commit. That slow path is rare: delivery ids are random.

Wake-ups. The batch calls ``pg_notify`` before COMMIT; PostgreSQL delivers it only
if and when the transaction commits, so a listener never hears of an event it cannot
read yet.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from statusgate.core.apply import apply, previous_state
from statusgate.store.base import (
    IngestRequest,
    IngestResult,
    delivery_of,
    received_at_of,
    replay_of,
)
from statusgate.store.migrations import load_migrations
from statusgate.store.postgres_queries import REQUEST_ERRORS, quote_ident, utc
from statusgate.v1.status_pb2 import Status, StatusEvent

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


@dataclass(slots=True)
class _Plan:
    """The rows one request writes, staged in Python before any SQL runs."""

    result: IngestResult
    # (id, source, received_at, verdict, detail, headers json, body)
    delivery: tuple[str, str, datetime, str, str, str, bytes] | None = None
    replay_of: str = ""
    events: list[StatusEvent] = field(default_factory=list)
    statuses: dict[str, Status] = field(default_factory=dict)
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(slots=True)
class _BatchState:
    """What the batch has written so far, as later requests of the batch must see it."""

    statuses: dict[str, Status]
    sequence: int
    # Deliveries a replay may point at: in the database, or written earlier in the batch.
    deliveries: set[str]

    def merge(self, plan: _Plan) -> None:
        self.statuses.update(plan.statuses)
        if plan.events:
            self.sequence = plan.events[-1].sequence
        if plan.delivery is not None:
            self.deliveries.add(plan.delivery[0])


async def commit_batch(
    conn: asyncpg.Connection,
    requests: Sequence[IngestRequest],
    *,
    channel: str,
) -> list[IngestResult | Exception]:
    """Apply and commit every request in one transaction.

    Returns one outcome per request: its result, or the exception that failed it alone.
    Raises when the batch as a whole cannot commit; then nothing of it is durable.
    """
    async with conn.transaction():
        base = int(await conn.fetchval("SELECT value FROM event_sequence WHERE id = 1 FOR UPDATE"))
        # A name PostgreSQL cannot hold cannot be stored either; its request fails alone.
        names = list(
            {u.name for r in requests for u in r.updates if u.name and is_storable(u.name)}
        )
        current: dict[str, Status] = {}
        if names:
            rows = await conn.fetch(
                "SELECT name, data FROM statuses WHERE name = ANY($1::text[])", names
            )
            current = {row["name"]: Status.FromString(row["data"]) for row in rows}
        replays = list(
            {replay_of(r) for r in requests if replay_of(r) and is_storable(replay_of(r))}
        )
        existing: set[str] = set()
        if replays:
            rows = await conn.fetch("SELECT id FROM deliveries WHERE id = ANY($1::text[])", replays)
            existing = {row["id"] for row in rows}

        def fresh_state() -> _BatchState:
            return _BatchState(dict(current), base, set(existing))

        try:
            async with conn.transaction():  # SAVEPOINT: the set-based fast path
                outcomes = await _write_all(conn, requests, fresh_state())
        except REQUEST_ERRORS as exc:
            log.info("a request of the batch was refused (%r); writing one by one", exc)
            outcomes = await _write_one_by_one(conn, requests, fresh_state())

        last = max(
            (r.events[-1].sequence for r in outcomes if isinstance(r, IngestResult) and r.events),
            default=base,
        )
        if last != base:
            await conn.execute("UPDATE event_sequence SET value = $1 WHERE id = 1", last)
            await conn.execute("SELECT pg_notify($1, $2)", channel, str(last))
    return outcomes


async def _write_all(
    conn: asyncpg.Connection, requests: Sequence[IngestRequest], state: _BatchState
) -> list[IngestResult | Exception]:
    outcomes: list[IngestResult | Exception] = []
    plans: list[_Plan] = []
    for request in requests:
        try:
            plan = _stage(request, state)
        except Exception as exc:
            _log_failure(exc)
            outcomes.append(exc)
            continue
        state.merge(plan)
        plans.append(plan)
        outcomes.append(plan.result)
    await _write(conn, plans)
    return outcomes


async def _write_one_by_one(
    conn: asyncpg.Connection, requests: Sequence[IngestRequest], state: _BatchState
) -> list[IngestResult | Exception]:
    outcomes: list[IngestResult | Exception] = []
    for request in requests:
        try:
            plan = _stage(request, state)
        except Exception as exc:
            _log_failure(exc)
            outcomes.append(exc)
            continue
        try:
            async with conn.transaction():  # SAVEPOINT for this request alone
                await _write(conn, [plan])
        except REQUEST_ERRORS as exc:
            # Anything else (the connection, the server) fails the whole batch.
            _log_failure(exc)
            outcomes.append(exc)
            continue
        state.merge(plan)
        outcomes.append(plan.result)
    return outcomes


def is_storable(text: str) -> bool:
    """Whether a text column can hold ``text``: PostgreSQL refuses NUL, and an unpaired
    surrogate (JSON "\\ud800" decodes to one) is not UTF-8 at all."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_text(text: str) -> str:
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _keys(request: IngestRequest) -> list[str]:
    """The texts of a request that identify rows: refused, never altered, when they
    cannot be stored (SQLite would store them; the request fails here instead)."""
    texts = [text for u in request.updates for text in (u.name, u.source, u.parent)]
    if (delivery := delivery_of(request)) is not None:
        texts += [delivery.id, delivery.source]
    if replay_of(request):
        texts.append(replay_of(request))
    return texts


def _log_failure(exc: Exception) -> None:
    log.warning("ingest request failed and was rolled back alone: %r", exc)


def _stage(request: IngestRequest, state: _BatchState) -> _Plan:
    """Run the apply rules for one request against the batch's view, in memory only."""
    delivery = delivery_of(request)
    if delivery is not None and replay_of(request):
        raise ValueError("an ingest request has either a delivery or replay_of, not both")
    for text in _keys(request):
        if not is_storable(text):
            raise ValueError(f"{text!r} holds NUL or an unpaired surrogate")
    now = datetime.now(UTC)
    if delivery is not None:
        delivery_id = delivery.id
        row = (
            delivery.id,
            delivery.source,
            utc(delivery.received_at),
            str(delivery.verdict),
            # Our own prose about the body, which may quote it: made storable.
            storable_text(delivery.detail),
            # ensure_ascii: any str survives as \u escapes in a text column.
            json.dumps(delivery.headers, sort_keys=True, ensure_ascii=True),
            delivery.body,
        )
        plan = _Plan(IngestResult(delivery_id=delivery_id), delivery=row, updated_at=now)
    elif replay_of(request):
        delivery_id = replay_of(request)
        if request.updates and delivery_id not in state.deliveries:
            raise LookupError(f"replay of unknown delivery {delivery_id!r}")
        plan = _Plan(
            IngestResult(delivery_id=delivery_id),
            replay_of=delivery_id if request.updates else "",
            updated_at=now,
        )
    else:
        delivery_id = ""
        plan = _Plan(IngestResult(delivery_id=""), updated_at=now)
    received_at = received_at_of(request) or (delivery.received_at if delivery else now)

    sequence = state.sequence
    for update in request.updates:
        if not update.name:
            raise ValueError("a status update without a name")
        if update.name in plan.statuses:
            current: Status | None = plan.statuses[update.name]
        else:
            current = state.statuses.get(update.name)
        new = apply(current, update)
        if new is None:
            continue
        sequence += 1
        new.sequence = sequence
        new.updated_at.FromDatetime(now)
        event = StatusEvent(
            sequence=sequence,
            event_id=uuid.uuid4().hex,
            previous_state=previous_state(current),
            origin=request.origin,
            delivery_id=delivery_id,
        )
        event.status.CopyFrom(new)
        event.received_at.FromDatetime(received_at)
        plan.statuses[update.name] = new
        plan.events.append(event)
        plan.result.events.append(event)
    return plan


async def _write(conn: asyncpg.Connection, plans: Sequence[_Plan]) -> None:
    """Every row of ``plans``, one set-based statement per table."""
    deliveries = [plan.delivery for plan in plans if plan.delivery is not None]
    if deliveries:
        await conn.execute(
            "INSERT INTO deliveries (id, source, received_at, verdict, detail, headers, body)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[],"
            " $5::text[], $6::json[], $7::bytea[])",
            *(list(column) for column in zip(*deliveries, strict=True)),
        )
    replays = [plan.replay_of for plan in plans if plan.replay_of]
    if replays:
        await conn.execute(
            "UPDATE deliveries SET verdict = 'mapped', detail = '' WHERE id = ANY($1::text[])",
            replays,
        )
    events = [event for plan in plans for event in plan.events]
    if not events:
        return
    await conn.execute(
        "INSERT INTO events (sequence, event_id, name, delivery_id, data)"
        " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bytea[])",
        [event.sequence for event in events],
        [event.event_id for event in events],
        [event.status.name for event in events],
        [event.delivery_id or None for event in events],
        [event.SerializeToString(deterministic=True) for event in events],
    )
    # One row per name (the latest snapshot): ON CONFLICT DO UPDATE may not touch a row
    # twice in one statement.
    latest: dict[str, tuple[Status, datetime]] = {}
    for plan in plans:
        for name, status in plan.statuses.items():
            latest[name] = (status, plan.updated_at)
    rows = list(latest.values())
    await conn.execute(
        "INSERT INTO statuses"
        " (name, source, parent, kind, state, terminal, updated_at, sequence, data)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[],"
        " $6::bool[], $7::timestamptz[], $8::bigint[], $9::bytea[])"
        " ON CONFLICT (name) DO UPDATE SET source = excluded.source,"
        " parent = excluded.parent, kind = excluded.kind, state = excluded.state,"
        " terminal = excluded.terminal, updated_at = excluded.updated_at,"
        " sequence = excluded.sequence, data = excluded.data",
        [status.name for status, _ in rows],
        [status.source for status, _ in rows],
        [status.parent for status, _ in rows],
        [int(status.kind) for status, _ in rows],
        [int(status.state) for status, _ in rows],
        [status.terminal for status, _ in rows],
        [updated_at for _, updated_at in rows],
        [status.sequence for status, _ in rows],
        [status.SerializeToString(deterministic=True) for status, _ in rows],
    )

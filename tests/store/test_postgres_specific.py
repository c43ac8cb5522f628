"""What only the PostgreSQL store has: its URL and migrations, several stores on one
schema behaving as replicas (gap-free sequences, apply rules, wake-ups, the reconciler's
leases), and losing the database for real (a TCP proxy that is stopped and started,
backends terminated by the server) and recovering from it without help, in the store
and through a whole gateway."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from statusgate.app import load_settings
from statusgate.store.base import (
    IngestRequest,
    StoreUnavailableError,
)
from statusgate.store.factory import open_store
from statusgate.store.migrations import load_migrations
from statusgate.store.postgres import PostgresStore
from statusgate.store.postgres_queries import ConnectionConfig, channel_for
from statusgate.v1.status_pb2 import Stage, State
from tests.conftest import start_gateway, stop_gateway
from tests.payloads import finbox_expiry
from tests.store.builders import poll, sequences, update, webhook
from tests.store.conftest import postgres_base_url, with_params

SESSION = "sources/finbox/sessions/s1"
CONSENT = "sources/setu/consents/c1"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

# Short intervals so that failure and recovery are quick to observe.
FAST = {"probe_interval": 0.05, "max_retry_delay": 0.2, "connect_timeout": 2.0}


@pytest.fixture
async def stores(postgres_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Opens PostgresStores ("replicas") on the test's schema; closes them at the end."""
    opened: list[PostgresStore] = []

    async def open_one(url: str = postgres_url, **options: Any) -> PostgresStore:
        store = PostgresStore(url, **{**FAST, **options})
        await store.open()
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> None:
    """Wait until ``check()`` (sync or async) is truthy; the condition, not the time, is
    what the test asserts."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert loop.time() < deadline, "the condition did not become true"
        await asyncio.sleep(0.02)


async def admin(sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(postgres_base_url(), timeout=5)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def at_commit(schema: str, plpgsql: str) -> None:
    """Run ``plpgsql`` at the COMMIT of every transaction that writes events in
    ``schema``, once per transaction, while it still holds the sequence lock: a deferred
    constraint trigger, so the store's own COMMIT really stalls or fails."""
    conn = await asyncpg.connect(postgres_base_url(), timeout=5)
    try:
        await conn.execute(
            f"""
            CREATE FUNCTION "{schema}".at_commit() RETURNS trigger LANGUAGE plpgsql AS $body$
            BEGIN
                IF current_setting('sgtest.at_commit', true) IS DISTINCT FROM 'ran' THEN
                    PERFORM set_config('sgtest.at_commit', 'ran', true);
                    {plpgsql}
                END IF;
                RETURN NULL;
            END
            $body$;
            CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON "{schema}".events
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "{schema}".at_commit();
            """
        )
    finally:
        await conn.close()


async def terminate_backends(application_name: str) -> int:
    rows = await admin(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
        " WHERE application_name = $1 AND pid <> pg_backend_pid()",
        application_name,
    )
    return len(rows)


# --- URL, factory, migrations ---------------------------------------------------------


def test_url_schema_becomes_the_search_path() -> None:
    config = ConnectionConfig.from_url(
        "postgresql://gw:pw@db:5433/gw?sslmode=disable&schema=tenant_a&application_name=r1"
    )
    assert config.schema == "tenant_a"
    assert config.server_settings == {"application_name": "r1", "search_path": '"tenant_a"'}
    assert config.dsn == "postgresql://gw:pw@db:5433/gw?sslmode=disable"
    plain = ConnectionConfig.from_url("postgres://db/gw")
    assert (plain.schema, plain.server_settings) == (None, {"application_name": "statusgate"})


@pytest.mark.parametrize("schema", ["Upper", "a-b", "x;drop", "", "9lives", "s" * 64])
def test_bad_schema_names_are_refused_without_leaking_the_password(schema: str) -> None:
    with pytest.raises(ValueError, match="schema") as raised:
        open_store(f"postgresql://gw:hunter2@db/gw?schema={schema}")
    assert "hunter2" not in str(raised.value)


def test_factory_opens_postgres_urls() -> None:
    for url in ("postgresql://db/gw", "postgres://gw@db/gw?schema=x", "PostgreSQL://db/gw"):
        assert isinstance(open_store(url), PostgresStore)


def test_channels_are_per_schema_and_short_enough() -> None:
    assert channel_for("public") == "statusgate_events_public"
    long = channel_for("s" * 63)
    assert len(long) <= 63 and long != channel_for("t" * 63)


def test_migrations_are_packaged_in_order() -> None:
    migrations = load_migrations("postgres")
    assert [version for version, _ in migrations] == list(range(1, len(migrations) + 1))
    assert "CREATE TABLE statuses" in migrations[0][1]


async def test_replicas_starting_together_migrate_once(
    postgres_url: str, stores: Callable[..., Any]
) -> None:
    opened = await asyncio.gather(*(stores() for _ in range(6)))
    assert all([await store.ready() for store in opened])
    schema = opened[0].schema
    rows = await admin(f'SELECT version FROM "{schema}".schema_migrations ORDER BY version')
    assert [row["version"] for row in rows] == [v for v, _ in load_migrations("postgres")]


async def test_open_refuses_a_schema_newer_than_the_code(
    postgres_url: str, stores: Callable[..., Any]
) -> None:
    first = await stores()
    await admin(f'INSERT INTO "{first.schema}".schema_migrations VALUES (999, now())')
    with pytest.raises(StoreUnavailableError, match="newer"):
        await PostgresStore(postgres_url).open()


async def test_open_fails_clearly_when_the_server_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here
    store = PostgresStore(f"postgresql://gw:hunter2@127.0.0.1:{port}/gw", connect_timeout=2)
    with pytest.raises(
        StoreUnavailableError, match=r"cannot reach PostgreSQL at 127\.0\.0\.1"
    ) as raised:
        await store.open()
    assert "hunter2" not in str(raised.value)
    assert "start it" in str(raised.value)
    assert not await store.ready()


async def test_schemas_are_isolated(postgres_url: str, stores: Callable[..., Any]) -> None:
    other_schema = f"sgtest_{uuid.uuid4().hex[:16]}"
    mine = await stores()
    heard: list[int] = []
    mine.add_commit_listener(heard.append)
    try:
        other = await stores(with_params(postgres_base_url(), schema=other_schema))
        await other.ingest(poll(update(SESSION, State.STATE_PENDING)))
        await mine.ingest(poll(update(CONSENT, State.STATE_ACTIVE)))
        assert await mine.get_status(SESSION) is None
        assert [e.status.name for e in await mine.read_events(after_sequence=0, limit=9)] == [
            CONSENT
        ]
        await eventually(lambda: heard)  # our own commit is heard ...
        assert heard == [1]  # ... the other schema's is not
    finally:
        await admin(f'DROP SCHEMA IF EXISTS "{other_schema}" CASCADE')


# --- replicas: sequences, apply rules, wake-ups ---------------------------------------


async def test_a_later_transaction_cannot_commit_before_an_earlier_sequence(
    postgres_url: str, stores: Callable[..., Any]
) -> None:
    """Replica A holds sequence 1 open; replica B's batch must wait for it instead of
    committing sequence 2 first, so readers never see 2 without 1."""
    a_name, b_name = f"sgtest-{uuid.uuid4().hex[:8]}", f"sgtest-{uuid.uuid4().hex[:8]}"
    a = await stores(with_params(postgres_url, application_name=a_name))
    reader = await stores()
    b = await stores(with_params(postgres_url, application_name=b_name))
    # A's COMMIT waits for an advisory lock that this test holds until it lets go.
    key = random.getrandbits(62)
    await at_commit(
        a.schema,
        f"IF current_setting('application_name') = '{a_name}' THEN"
        f" PERFORM pg_advisory_xact_lock({key}); END IF;",
    )
    holder = await asyncpg.connect(postgres_base_url(), timeout=5)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", key)
        first = asyncio.create_task(a.ingest(webhook(update(SESSION, State.STATE_PENDING))))
        await eventually(lambda: waits_on_lock(a_name, "COMMIT%"))
        second = asyncio.create_task(b.ingest(webhook(update(CONSENT, State.STATE_ACTIVE))))

        # B's batch is blocked on the sequence row...
        await eventually(lambda: waits_on_lock(b_name, "%FOR UPDATE%"))
        assert not second.done()  # ... so it cannot have committed sequence 2
        assert await reader.read_events(after_sequence=0, limit=10) == []
        assert await reader.last_sequence() == 0

        await holder.execute("SELECT pg_advisory_unlock($1)", key)
        assert sequences((await first).events) == [1]
        assert sequences((await second).events) == [2]
        assert sequences(await reader.read_events(after_sequence=0, limit=10)) == [1, 2]
    finally:
        await holder.close()


async def waits_on_lock(application_name: str, query: str) -> bool:
    rows = await admin(
        "SELECT 1 FROM pg_stat_activity WHERE application_name = $1"
        " AND wait_event_type = 'Lock' AND query LIKE $2",
        application_name,
        query,
    )
    return bool(rows)


async def test_readers_never_see_a_gap_under_concurrent_replicas(
    stores: Callable[..., Any],
) -> None:
    """Three replicas ingest concurrently, each batch stalling a random while before its
    COMMIT (so, without the sequence lock, commits would land out of sequence order),
    while a reader polls read_events: every read continues exactly where the last one
    stopped."""
    replicas = [await stores() for _ in range(3)]
    reader = await stores()
    await at_commit(reader.schema, "PERFORM pg_sleep(random() * 0.01);")
    total = 600
    stop = asyncio.Event()
    reads: list[list[int]] = []

    async def read_continuously() -> None:
        cursor = 0
        while not stop.is_set() or cursor < total:
            batch = sequences(await reader.read_events(after_sequence=cursor, limit=1000))
            if batch:
                assert batch == list(range(cursor + 1, cursor + 1 + len(batch))), batch[:5]
                reads.append(batch)
                cursor = batch[-1]
            await asyncio.sleep(0)

    reading = asyncio.create_task(read_continuously())

    async def load(replica: PostgresStore, offset: int) -> None:
        for start in range(offset, total, 60):
            await asyncio.gather(
                *(
                    replica.ingest(webhook(update(f"{SESSION}-{i}", State.STATE_PENDING)))
                    for i in range(start, min(start + 20, total))
                )
            )

    await asyncio.gather(
        *(load(r, offset) for offset, r in zip((0, 20, 40), replicas, strict=True))
    )
    stop.set()
    await asyncio.wait_for(reading, 30)
    assert [s for batch in reads for s in batch] == list(range(1, total + 1))
    assert len(reads) > 3, "the reader should have raced the writers"
    assert all(replica.commits < total // 5 for replica in replicas)


async def test_replicas_apply_rules_on_the_latest_snapshot(stores: Callable[..., Any]) -> None:
    a, b = await stores(), await stores()

    def consent(i: int) -> IngestRequest:
        state = State.STATE_ACTIVE if i % 2 else State.STATE_PAUSED
        return webhook(
            update(CONSENT, state, Stage.STAGE_CONSENT, occurred_at=T0 + timedelta(seconds=i)),
            source="setu",
        )

    order = list(range(60))
    random.Random(7).shuffle(order)
    await asyncio.gather(*((a if i % 2 else b).ingest(consent(i)) for i in order))

    history = await a.list_events(CONSENT, limit=1000)
    assert [event.status.version for event in history] == list(range(1, len(history) + 1))
    occurred = [event.status.occurred_at.ToDatetime(UTC) for event in history]
    assert occurred == sorted(set(occurred)), "an older update overwrote a newer one"
    status = await b.get_status(CONSENT)
    assert status is not None and status.occurred_at.ToDatetime(UTC) == T0 + timedelta(seconds=59)
    assert status.version == len(history)


async def test_commit_listeners_hear_every_replica(stores: Callable[..., Any]) -> None:
    a, b = await stores(), await stores()
    heard_a: list[int] = []
    heard_b: list[int] = []
    a.add_commit_listener(heard_a.append)
    b.add_commit_listener(heard_b.append)

    await a.ingest(poll(update(SESSION, State.STATE_PENDING), update(CONSENT, State.STATE_ACTIVE)))
    await eventually(lambda: heard_b == [2])
    # The writer hears its own commits too (harmless: the hub ignores what it has, and
    # events whose caller was cancelled before offering them still reach Watch).
    await eventually(lambda: heard_a == [2])
    assert (await b.ingest(poll(update(SESSION, State.STATE_PENDING)))).events == []
    await asyncio.sleep(0.1)
    assert heard_a == heard_b == [2], "a batch without events notifies nobody"


# --- request failures -----------------------------------------------------------------


async def test_a_duplicate_delivery_id_falls_back_to_one_savepoint_per_request(
    stores: Callable[..., Any],
) -> None:
    """Only PostgreSQL knows an id is taken: the set-based write fails, the batch rolls
    back to its savepoint and writes request by request, so the rest still commits."""
    store = await stores()
    await store.ingest(webhook(update(SESSION, State.STATE_PENDING), delivery_id="taken"))
    again = webhook(update(CONSENT, State.STATE_ACTIVE), delivery_id="taken")
    results = await asyncio.gather(
        *(
            store.ingest(webhook(update(f"{SESSION}/accounts/{i}", State.STATE_PENDING)))
            for i in range(3)
        ),
        store.ingest(again),
        return_exceptions=True,
    )
    assert isinstance(results[-1], asyncpg.UniqueViolationError)
    assert sorted(
        s for r in results[:-1] if not isinstance(r, BaseException) for s in sequences(r.events)
    ) == [2, 3, 4]
    assert await store.get_status(CONSENT) is None
    assert await store.last_sequence() == 4


# --- losing the database --------------------------------------------------------------


class TcpProxy:
    """A TCP forwarder to the test server that can be stopped (every connection cut, new
    ones refused) and started again on the same port: the database going away and
    coming back, as the gateway's network sees it."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()
        await self._server.wait_closed()
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._transports |= {writer.transport, up_writer.transport}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._transports -= {writer.transport, up_writer.transport}


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    target = urlsplit(postgres_base_url())
    running = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await running.start()
    yield running
    if running._server is not None:
        await running.stop()


def through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{proxy.port}" if userinfo else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def test_losing_the_database_is_unavailable_then_recovers_by_itself(
    postgres_url: str, proxy: TcpProxy, stores: Callable[..., Any]
) -> None:
    store = await stores(through(proxy, postgres_url))
    direct = await stores()  # another replica, which keeps its database
    heard: list[int] = []
    store.add_commit_listener(heard.append)
    await store.ingest(webhook(update(SESSION, State.STATE_PENDING)))
    writer_task = store._writer_task

    await proxy.stop()
    with pytest.raises(StoreUnavailableError):
        await store.ingest(webhook(update(CONSENT, State.STATE_ACTIVE)))
    assert not await store.ready()
    with pytest.raises(StoreUnavailableError):
        await store.get_status(SESSION)
    # Meanwhile the other replica commits: its NOTIFY cannot reach this store.
    await direct.ingest(poll(update(f"{SESSION}/accounts/a", State.STATE_PENDING)))
    heard.clear()

    await proxy.start()
    await eventually(store.ready)  # no traffic needed: probes and the listener reconnect
    assert store._writer_task is writer_task and not writer_task.done()
    # After reconnecting, the listener was told about what committed in between.
    await eventually(lambda: 2 in heard)
    result = await store.ingest(webhook(update(CONSENT, State.STATE_ACTIVE)))
    assert sequences(result.events) == [3]
    assert sequences(await store.read_events(after_sequence=0, limit=10)) == [1, 2, 3]


async def test_readiness_fails_without_traffic_when_the_database_goes(
    postgres_url: str, proxy: TcpProxy, stores: Callable[..., Any]
) -> None:
    store = await stores(through(proxy, postgres_url))
    assert await store.ready()
    await proxy.stop()
    await eventually(lambda: _not(store.ready()))
    await asyncio.sleep(0.3)  # reconnection attempts keep failing while it is gone
    assert not await store.ready()
    await proxy.start()
    await eventually(store.ready)
    assert sequences((await store.ingest(poll(update(SESSION, State.STATE_PENDING)))).events) == [1]


async def _not(ready: Any) -> bool:
    return not await ready


async def test_backends_terminated_by_the_server_are_replaced(
    postgres_url: str, stores: Callable[..., Any]
) -> None:
    name = f"sgtest-{uuid.uuid4().hex[:8]}"
    store = await stores(with_params(postgres_url, application_name=name))
    other = await stores()
    heard: list[int] = []
    store.add_commit_listener(heard.append)
    await store.ingest(poll(update(SESSION, State.STATE_PENDING)))

    assert await terminate_backends(name) >= 2  # the writer, the listener, the read pool
    await other.ingest(poll(update(CONSENT, State.STATE_ACTIVE)))  # while not listening
    await eventually(store.ready)
    await eventually(lambda: 2 in heard)
    result = await store.ingest(poll(update(f"{SESSION}/accounts/a", State.STATE_PENDING)))
    assert sequences(result.events) == [3]
    assert await store.get_status(CONSENT) is not None


async def test_connection_lost_mid_batch_fails_the_batch_and_nothing_of_it_stays(
    postgres_url: str, stores: Callable[..., Any]
) -> None:
    name = f"sgtest-{uuid.uuid4().hex[:8]}"
    store = await stores(with_params(postgres_url, application_name=name))
    await store.ingest(poll(update(SESSION, State.STATE_PENDING, Stage.STAGE_UPLOAD)))
    commits = store.commits
    # The first batch's COMMIT terminates every backend of the store, its own last (a
    # sequence counts the batches: unlike a table, it does not roll back).
    await admin(f'CREATE SEQUENCE "{store.schema}".commits_seen')
    await at_commit(
        store.schema,
        f"""IF nextval('"{store.schema}".commits_seen') = 1 THEN
            PERFORM pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE application_name = '{name}' AND pid <> pg_backend_pid();
            PERFORM pg_terminate_backend(pg_backend_pid());
            PERFORM pg_sleep(10);
        END IF;""",
    )
    batch = [
        poll(update(SESSION, State.STATE_COMPLETED, Stage.STAGE_UPLOAD)),
        webhook(update(f"{SESSION}/accounts/a", State.STATE_PENDING)),
        webhook(update(f"{SESSION}/accounts/b", State.STATE_PENDING)),
    ]
    results = await asyncio.gather(*map(store.ingest, batch), return_exceptions=True)
    assert all(isinstance(result, StoreUnavailableError) for result in results), results
    assert store.commits == commits

    # Sent again, the same requests apply as if the first attempt never happened.
    retried = await asyncio.gather(*map(store.ingest, batch))
    assert sorted(seq for result in retried for seq in sequences(result.events)) == [2, 3, 4]
    assert sequences(await store.read_events(after_sequence=0, limit=10)) == [1, 2, 3, 4]
    assert len(await store.list_deliveries([])) == 2
    await eventually(store.ready)


async def test_the_gateway_answers_503_while_the_database_is_gone_then_recovers(
    postgres_url: str, proxy: TcpProxy
) -> None:
    """The whole front door on PostgreSQL through the proxy: webhooks 503 (retry) and
    /readyz 503 while the database is unreachable, both back without a restart."""
    settings = load_settings(
        None,
        http="127.0.0.1:0",
        grpc="127.0.0.1:0",
        api="127.0.0.1:0",
        store=through(proxy, postgres_url),
    )
    running = await start_gateway(settings)
    try:

        async def ready() -> bool:
            async with running.http.get(running.url("/readyz")) as response:
                return response.status == 200

        assert await ready()
        assert (await running.post("finbox", finbox_expiry("before")))[0] == 200

        await proxy.stop()
        code, body = await running.post("finbox", finbox_expiry("during"))
        assert code == 503, body
        assert not await ready()

        await proxy.start()
        await eventually(ready)
        code, body = await running.post("finbox", finbox_expiry("during"))
        assert code == 200, body
        assert [e["sequence"] for e in body["events"]] == [2]
    finally:
        await stop_gateway(running)


# --- the reconciler's schedule --------------------------------------------------------


async def test_replicas_claiming_at_once_never_lease_one_subject_twice(
    stores: Callable[..., Any],
) -> None:
    replicas = [await stores() for _ in range(3)]
    names = [f"sources/finbox/sessions/q{i:03d}" for i in range(120)]
    await replicas[0].ingest(poll(*(update(name, State.STATE_PENDING) for name in names)))
    now = datetime.now(UTC) + timedelta(seconds=1)

    async def claim(replica: PostgresStore, owner: str) -> list[str]:
        claimed: list[str] = []
        while batch := await replica.claim_due_polls(
            "finbox",
            now=now,
            quiet_before=now,
            changed_after=now - timedelta(days=1),
            owner=owner,
            lease_until=now + timedelta(minutes=5),
            limit=7,
        ):
            claimed += [c.name for c in batch]
        return claimed

    claims = await asyncio.gather(*(claim(r, f"owner-{i}") for i, r in enumerate(replicas)))
    every = [name for claimed in claims for name in claimed]
    assert sorted(every) == names, "each subject leased exactly once"

    # Only the holder records the outcome and releases the lease.
    first = claims[0][0]
    await replicas[1].finish_poll(first, owner="owner-1", next_poll_at=now, attempts=1)
    assert await claim(replicas[1], "owner-1") == []  # still leased by owner-0
    await replicas[0].finish_poll(first, owner="owner-0", next_poll_at=now, attempts=1)
    [again] = await replicas[1].claim_due_polls(
        "finbox",
        now=now,
        quiet_before=now,
        changed_after=now - timedelta(days=1),
        owner="owner-1",
        lease_until=now + timedelta(minutes=5),
        limit=10,
    )
    assert (again.name, again.attempts) == (first, 1)
    assert again.last_polled_at is not None

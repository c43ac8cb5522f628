"""The shared store: PostgreSQL through asyncpg, for several gateway replicas.

Writes. ``ingest`` queues its request and awaits a future; one writer task per process
takes everything pending (up to ``max_batch``) and commits it as one transaction on its
own connection (group commit, like the SQLite store): N concurrent webhooks cost one
WAL flush. How batches of several replicas get gap-free sequences and apply the rules
on the latest snapshots is explained in ``postgres_writer``.

Wake-ups. Every committed batch NOTIFYs its greatest sequence; a dedicated LISTEN
connection calls the callbacks registered with ``add_commit_listener`` (see
``postgres_listen``), also after reconnecting, so another replica's commits reach this
process's Watch streams within milliseconds.

Availability. Connection refused or lost, admin shutdown, timeouts: ``ingest`` raises
``StoreUnavailableError`` (the front door answers 503) and ``ready()`` turns False; it
also turns False when the LISTEN connection is down (cross-replica Watch would stall).
The writer reconnects on the next batch and, while unhealthy and idle, probes with a
real commit; the listener reconnects on its own; the read pool reconnects on acquire.
So everything recovers by itself when the database returns.

URL. ``postgresql://user:password@host:port/database?schema=name``; ``schema`` puts
every table in that schema (created at start-up) so deployments or test runs can share
a database. Other query parameters go to asyncpg (``sslmode=...``, server settings).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from statusgate.core.filters import StatusQuery
from statusgate.store import postgres_queries as queries
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
from statusgate.store.postgres_listen import FIRST_RETRY_DELAY, CommitListener
from statusgate.store.postgres_writer import SchemaTooNewError, commit_batch
from statusgate.store.postgres_writer import migrate as migrate_schema
from statusgate.store.postgres_writer import probe as probe_commit
from statusgate.v1.status_pb2 import Status, StatusEvent

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_OPEN_ERRORS = (*queries.UNAVAILABLE_ERRORS, asyncpg.PostgresError, SchemaTooNewError)


class PostgresStore:
    """``Store`` on a PostgreSQL database (schema) shared by several replicas.

    ``commits`` counts committed ingest transactions (batches) of this process.
    """

    def __init__(
        self,
        url: str,
        *,
        max_batch: int = 512,
        pool_size: int = 8,
        probe_interval: float = 1.0,
        commit_delay: float = 0.002,
        command_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        keepalive_interval: float = 5.0,
        max_retry_delay: float = 2.0,
    ) -> None:
        if max_batch < 1 or pool_size < 1:
            raise ValueError("max_batch and pool_size must be positive")
        if min(probe_interval, command_timeout, connect_timeout, keepalive_interval) <= 0:
            raise ValueError("intervals and timeouts must be positive")
        self.config = queries.ConnectionConfig.from_url(url)
        self._pool_size = pool_size
        self._command_timeout = command_timeout
        self._connect_timeout = connect_timeout
        self._max_retry_delay = max(max_retry_delay, FIRST_RETRY_DELAY)
        self._state = "new"  # -> "open" -> "closing" -> "closed"
        self._committer = GroupCommitter(
            "PostgreSQL",
            self._commit,
            self._probe,
            max_batch=max_batch,
            probe_interval=probe_interval,
            commit_delay=commit_delay,
        )
        self._schema = ""
        self._listener = CommitListener(
            self._connect,
            keepalive_interval=keepalive_interval,
            max_retry_delay=self._max_retry_delay,
        )
        self._writer_conn: asyncpg.Connection | None = None
        self._pool: asyncpg.Pool | None = None

    @property
    def commits(self) -> int:
        """Committed ingest transactions (batches) of this process."""
        return self._committer.commits

    def observe_commits(self, observer: CommitObserver) -> None:
        self._committer.observer = observer

    @property
    def _writer_task(self) -> asyncio.Task[None] | None:
        return self._committer._task  # for tests that check the writer survives

    @property
    def schema(self) -> str:
        """The schema the tables live in (known once open)."""
        return self._schema

    # --- lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        if self._state != "new":
            raise RuntimeError(f"the store is {self._state}; a PostgresStore opens once")
        try:
            self._writer_conn = await self._connect()
            await migrate_schema(self._writer_conn, self.config.schema)
            self._schema = str(await self._writer_conn.fetchval("SELECT current_schema()"))
            await self._listener.start(queries.channel_for(self._schema))
            self._pool = await asyncpg.create_pool(
                self.config.dsn,
                min_size=1,
                max_size=self._pool_size,
                **self._connect_kwargs(),
            )
        except BaseException as exc:
            self._state = "closed"
            await self._release_connections()
            if isinstance(exc, _OPEN_ERRORS):
                raise StoreUnavailableError(_open_failure(self.config.dsn, exc)) from exc
            raise
        self._state = "open"
        self._committer.start()

    async def close(self) -> None:
        if self._state != "open":
            return
        # New ingests are refused from here on; the writer drains what is queued.
        self._state = "closing"
        await self._committer.stop()
        await self._release_connections()
        self._state = "closed"

    async def _release_connections(self) -> None:
        await self._listener.close()
        if self._writer_conn is not None:
            await _close_quietly(self._writer_conn)
            self._writer_conn = None
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), self._command_timeout)
            except (TimeoutError, *queries.UNAVAILABLE_ERRORS):
                self._pool.terminate()
            self._pool = None

    async def ready(self) -> bool:
        return (
            self._state == "open"
            and self._committer.running
            and self._committer.healthy
            and self._listener.listening
        )

    def _connect_kwargs(self) -> dict[str, Any]:
        return {
            "server_settings": self.config.server_settings,
            "timeout": self._connect_timeout,
            "command_timeout": self._command_timeout,
        }

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.config.dsn, **self._connect_kwargs())

    # --- writes ----------------------------------------------------------------------

    def add_commit_listener(self, listener: Callable[[int], None]) -> None:
        """Called for every committed batch of any replica, this one's included."""
        self._listener.add(listener)

    async def ingest(self, request: IngestRequest) -> IngestResult:
        if self._state != "open":
            raise StoreUnavailableError(f"the PostgreSQL store is {self._state}")
        return await self._committer.submit(request)

    async def _writer_connection(self) -> asyncpg.Connection:
        # A connection the server closed while idle (restart, pg_terminate_backend) is
        # noticed here and replaced before it can fail a batch.
        if self._writer_conn is None or self._writer_conn.is_closed():
            self._drop_writer_connection()
            self._writer_conn = await self._connect()
        return self._writer_conn

    def _drop_writer_connection(self) -> None:
        # After a failure the connection's state is unknown (it may be mid-transaction
        # or half-closed): abandon it, the next batch opens a fresh one.
        if self._writer_conn is not None:
            self._writer_conn.terminate()
            self._writer_conn = None

    async def _commit(self, requests: list[IngestRequest]) -> list[IngestResult | Exception]:
        try:
            conn = await self._writer_connection()
            return await commit_batch(conn, requests, channel=self._listener.channel)
        except Exception:
            self._drop_writer_connection()
            raise

    async def _probe(self) -> None:
        try:
            await probe_commit(await self._writer_connection())
        except Exception:
            self._drop_writer_connection()
            raise

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
        return await self._read(queries.list_statuses, query, after_name=after_name, limit=limit)

    async def list_events(
        self, name: str, *, after_sequence: int = 0, limit: int = 100
    ) -> list[StatusEvent]:
        _check_limit(limit)
        return await self._read(
            queries.list_events, name, after_sequence=after_sequence, limit=limit
        )

    async def read_events(self, *, after_sequence: int, limit: int) -> list[StatusEvent]:
        _check_limit(limit)
        return await self._read(queries.read_events, after_sequence=after_sequence, limit=limit)

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
        """Leases through ``FOR UPDATE SKIP LOCKED`` on schedule rows (see
        ``postgres_queries``): replicas claiming at once get disjoint subjects."""
        _check_limit(limit)
        return await self._read(
            queries.claim_due_polls,
            source,
            now=now,
            quiet_before=quiet_before,
            changed_after=changed_after,
            owner=owner,
            lease_until=lease_until,
            limit=limit,
        )

    async def finish_poll(
        self, name: str, *, owner: str, next_poll_at: datetime, attempts: int
    ) -> None:
        held = await self._read(
            queries.finish_poll, name, owner=owner, next_poll_at=next_poll_at, attempts=attempts
        )
        if not held:
            log.info("the poll lease on %s had passed to another owner", name)

    async def poll_backlog(
        self, source: str, *, now: datetime, quiet_before: datetime, changed_after: datetime
    ) -> PollBacklog:
        return await self._read(
            queries.poll_backlog,
            source,
            now=now,
            quiet_before=quiet_before,
            changed_after=changed_after,
        )

    async def oldest_non_terminal(self, source: str) -> Status | None:
        return await self._read(queries.oldest_non_terminal, source)

    async def count_subjects(self) -> dict[tuple[str, int], int]:
        return await self._read(queries.count_subjects)

    async def count_deliveries(
        self, *, received_after: datetime
    ) -> dict[tuple[str, DeliveryVerdict], int]:
        return await self._read(queries.count_deliveries, received_after=received_after)

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
            queries.list_deliveries,
            verdicts,
            source=source,
            since=since,
            after_id=after_id,
            limit=limit,
        )

    async def find_delivery(self, source: str, idempotency_key: str) -> Delivery | None:
        found: Delivery | None = await self._read(queries.find_delivery, source, idempotency_key)
        return found

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
            queries.query_deliveries,
            query,
            after=after,
            limit=limit,
            oldest_first=oldest_first,
            bodies=bodies,
        )

    async def get_deliveries(self, ids: Sequence[str]) -> dict[str, Delivery]:
        if not ids:
            return {}
        return await self._read(queries.get_deliveries, ids)

    async def preview(self, requests: Sequence[IngestRequest]) -> list[IngestResult | Exception]:
        if not requests:
            return []
        return await self._read(queries.preview_ingest, requests, now=datetime.now(UTC))

    async def prune_deliveries(self, received_before: datetime) -> int:
        pruned: int = await self._read(queries.prune_deliveries, received_before)
        return pruned

    async def _read(
        self, query: Callable[..., Awaitable[_T]], *args: object, **kwargs: object
    ) -> _T:
        """Run ``query`` on a pooled connection (reads, and the schedule's small writes,
        which never touch what the ingest writer's sequence lock protects)."""
        pool = self._pool
        if self._state != "open" or pool is None:
            raise StoreUnavailableError(f"the PostgreSQL store is {self._state}")
        try:
            async with pool.acquire(timeout=self._command_timeout) as conn:
                return await query(conn, *args, **kwargs)
        except queries.UNAVAILABLE_ERRORS as exc:
            raise StoreUnavailableError(f"PostgreSQL read failed: {exc!r}") from exc


async def _close_quietly(conn: asyncpg.Connection) -> None:
    try:
        await conn.close(timeout=1)
    except Exception:
        conn.terminate()


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be positive, not {limit}")


PROBE_TIMEOUT = 5.0


async def probe(url: str) -> str | None:
    """Whether a gateway could open the store at ``url`` (the server answers, the
    database exists, the user is accepted): None, or the one line ``open`` would fail
    with. Nothing is created or migrated."""
    dsn = queries.ConnectionConfig.from_url(url).dsn
    try:
        conn = await asyncpg.connect(dsn, timeout=PROBE_TIMEOUT)
    except _OPEN_ERRORS as exc:
        return _open_failure(dsn, exc)
    await _close_quietly(conn)
    return None


_FIX_URL = "fix the store URL (--store, STATUSGATE_STORE)"


def _open_failure(dsn: str, exc: BaseException) -> str:
    """What failed when opening the store, and what to do about it, in one line."""
    parts = urlsplit(dsn)
    where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
    database = parts.path.lstrip("/") or parts.username or "postgres"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return (
            f"PostgreSQL at {where} has no database {database!r}: create it "
            f"(createdb -h {parts.hostname or 'localhost'} {database}), or {_FIX_URL}"
        )
    if isinstance(
        exc, asyncpg.InvalidAuthorizationSpecificationError | asyncpg.InvalidPasswordError
    ):
        return (
            f"PostgreSQL at {where} refused user {parts.username!r}: {exc}; check the user "
            f"and password of the store URL, or {_FIX_URL}"
        )
    if isinstance(exc, OSError | TimeoutError | asyncpg.PostgresConnectionError):
        problem = str(exc) or type(exc).__name__
        return (
            f"cannot reach PostgreSQL at {where} ({problem}): start it or make it "
            f"reachable from here, or {_FIX_URL}"
        )
    return f"cannot open PostgreSQL store {_redacted(dsn)}: {exc}"


def _redacted(url: str) -> str:
    """The URL without its password, which must never reach an error message or a log."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"

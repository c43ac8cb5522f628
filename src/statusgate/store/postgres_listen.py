"""Wake-ups between replicas: one LISTEN connection per ``PostgresStore``.

Every batch that commits events NOTIFYs the schema's channel with its greatest
sequence (inside its transaction, so the notification is delivered only on commit).
``CommitListener`` holds a dedicated connection that LISTENs there and calls every
registered callback with that sequence; the hub then reads the gap-free events from the
store. Notifications of this process's own batches are not filtered out: the hub
ignores sequences it already has, and hearing them makes events whose ingest caller was
cancelled before it could offer them to the hub reach Watch streams anyway.

A notification sent while the connection is down is lost, so after every reconnect
(with backoff) the callbacks are called with the counter's value, read once LISTEN is
in place: nothing that committed in between is missed. A silently dead network shows no
termination, so an idle connection is asked ``SELECT 1`` every ``keepalive_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from statusgate.store import postgres_queries as queries

log = logging.getLogger(__name__)

FIRST_RETRY_DELAY = 0.05
_ERRORS = (*queries.UNAVAILABLE_ERRORS, asyncpg.PostgresError)


class CommitListener:
    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        *,
        keepalive_interval: float,
        max_retry_delay: float,
    ) -> None:
        self._connect = connect
        self.channel = ""  # known once the store knows its schema
        self._keepalive_interval = keepalive_interval
        self._max_retry_delay = max(max_retry_delay, FIRST_RETRY_DELAY)
        self._callbacks: list[Callable[[int], None]] = []
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        """Whether notifications reach us right now (part of readiness)."""
        return self._conn is not None and not self._lost.is_set()

    def add(self, callback: Callable[[int], None]) -> None:
        self._callbacks.append(callback)

    async def start(self, channel: str) -> None:
        """LISTEN now (failing if the database cannot be reached), then keep at it."""
        self.channel = channel
        await self._open()
        self._task = asyncio.create_task(self._run(), name="postgres-listen")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close(timeout=1)
            except Exception:
                conn.terminate()

    async def _open(self) -> None:
        conn = await self._connect()
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(self.channel, self._on_notify)
        except BaseException:
            conn.terminate()
            raise
        self._conn, self._lost = conn, lost

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        try:
            sequence = int(str(payload))
        except ValueError:
            log.warning("ignoring a malformed notification on %s", self.channel)
            return
        self._dispatch(sequence)

    def _dispatch(self, sequence: int) -> None:
        for callback in list(self._callbacks):
            try:
                callback(sequence)
            except Exception:
                log.exception("a commit listener failed")

    async def _run(self) -> None:
        delay = FIRST_RETRY_DELAY
        while True:
            conn = self._conn
            if conn is None:
                try:
                    await self._open()
                    assert self._conn is not None
                    # LISTEN is in place: whatever committed before it is readable now.
                    sequence = await queries.last_sequence(self._conn)
                except _ERRORS as exc:
                    self._drop()
                    log.warning("cannot LISTEN for other replicas' commits yet: %r", exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._max_retry_delay)
                    continue
                log.info("listening for other replicas' commits again")
                delay = FIRST_RETRY_DELAY
                self._dispatch(sequence)
                continue
            try:
                await asyncio.wait_for(self._lost.wait(), self._keepalive_interval)
            except TimeoutError:
                try:
                    await conn.execute("SELECT 1", timeout=self._keepalive_interval)
                    continue
                except _ERRORS as exc:
                    log.warning("the LISTEN connection stopped answering: %r", exc)
            else:
                log.warning("lost the LISTEN connection to PostgreSQL")
            self._drop()

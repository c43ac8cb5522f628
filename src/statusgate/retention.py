"""Prunes raw deliveries past their retention age, in the background (docs:
configuration.md, ``[retention]``). Statuses and events are never pruned."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from statusgate.config import Retention
from statusgate.store.base import Store, StoreUnavailableError

log = logging.getLogger(__name__)


class RetentionTask:
    def __init__(self, store: Store, retention: Retention) -> None:
        self._store = store
        self._retention = retention
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._retention.deliveries_days > 0:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def prune_once(self) -> int:
        cutoff = datetime.now(UTC) - timedelta(days=self._retention.deliveries_days)
        pruned = await self._store.prune_deliveries(cutoff)
        if pruned:
            log.info("pruned raw deliveries", extra={"pruned": pruned, "before": cutoff})
        return pruned

    async def _run(self) -> None:
        while True:
            try:
                await self.prune_once()
            except StoreUnavailableError:
                log.warning("retention skipped: the store is unavailable")
            await asyncio.sleep(self._retention.interval_seconds)

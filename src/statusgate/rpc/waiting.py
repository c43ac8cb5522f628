"""WaitStatus's wait: until a subject meets a condition, woken by whatever changes it.

Webhooks, polls and the reconciler all reach the hub, so following the hub sees every
change; meanwhile the subject is polled too (a provider may have lost the webhook), with
backoff, through the poller's single flight so many waiters of one subject share calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

from statusgate.core.hub import Hub
from statusgate.poll.service import PollService, unchanged_for
from statusgate.store.base import Store, StoreUnavailableError
from statusgate.v1 import status_pb2 as pb

# Polls while waiting: the first after this many seconds (at once when the subject is
# unknown or quiet), then doubling up to WAIT_POLL_MAX.
WAIT_POLL_FIRST = 2.0
WAIT_POLL_MAX = 30.0


class HubClosedError(Exception):
    """The gateway is shutting down."""


def condition_holds(condition: pb.WaitCondition, status: pb.Status) -> bool:
    which = condition.WhichOneof("condition")
    if which == "terminal":
        return status.terminal
    if which == "ready_to_fetch":
        return status.ready_to_fetch
    if which == "states":
        return status.state in condition.states.states
    return False


async def wait_for(
    name: str,
    condition: pb.WaitCondition,
    *,
    store: Store,
    hub: Hub,
    poller: PollService | None,
) -> pb.Status:
    """The subject's status once ``condition`` holds; bound it with asyncio.timeout.
    Raises HubClosedError on shutdown, StoreUnavailableError."""
    # Subscribe before reading, so a change between the read and the wait is seen.
    subscription = hub.subscribe(hub.last_sequence)
    try:
        status = await store.get_status(name)
        if status is not None and condition_holds(condition, status):
            return status
        found: asyncio.Future[pb.Status] = asyncio.get_running_loop().create_future()
        helpers = [asyncio.ensure_future(_follow(subscription, name, condition, found))]
        if poller is not None and poller.target(name) is not None:
            helpers.append(asyncio.ensure_future(_poll(poller, name, condition, status, found)))
        try:
            return await found
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
    finally:
        with contextlib.suppress(Exception):
            await subscription.aclose()


async def _follow(
    subscription: AsyncGenerator[list[pb.StatusEvent], None],
    name: str,
    condition: pb.WaitCondition,
    found: asyncio.Future[pb.Status],
) -> None:
    try:
        async for batch in subscription:
            for event in batch:
                if event.status.name == name and condition_holds(condition, event.status):
                    _resolve(found, event.status)
                    return
    except StoreUnavailableError as error:
        if not found.done():
            found.set_exception(error)
        return
    # The hub only ends when the gateway shuts down.
    if not found.done():
        found.set_exception(HubClosedError())


async def _poll(
    poller: PollService,
    name: str,
    condition: pb.WaitCondition,
    status: pb.Status | None,
    found: asyncio.Future[pb.Status],
) -> None:
    """Poll the provider while waiting: at once when the subject is unknown or has been
    quiet, then with backoff. Waiters on one subject share each poll (single flight, and
    a poll younger than half the interval is not repeated)."""
    interval = WAIT_POLL_FIRST
    age = unchanged_for(status) if status is not None else None
    if age is not None and age < interval:
        await asyncio.sleep(interval)  # it just changed: news may be on its way
    while True:
        outcome = await poller.poll(name, within=None, max_staleness=interval / 2)
        if outcome.status is not None and condition_holds(condition, outcome.status):
            _resolve(found, outcome.status)
            return
        await asyncio.sleep(interval)
        interval = min(interval * 2, WAIT_POLL_MAX)


def _resolve(found: asyncio.Future[pb.Status], status: pb.Status) -> None:
    if not found.done():
        found.set_result(status)

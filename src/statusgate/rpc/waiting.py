"""WaitStatus's wait: until a subject meets a condition, woken by whatever changes it.

Webhooks, polls and the reconciler all reach the hub, so following the hub sees every
change. Meanwhile, for a caller allowed to poll, the subject is polled too (a provider
may have lost the webhook) by its one shared schedule (``poll.waits``), whose changes
reach the hub like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

from statusgate.core.filters import PreparedFilter
from statusgate.core.hub import Hub
from statusgate.poll.service import unchanged_for
from statusgate.poll.waits import Schedule, WaitPolls
from statusgate.store.base import Store
from statusgate.v1 import status_pb2 as pb


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
    waits: WaitPolls | None,
    caller: str = "",
    max_polled: int = 0,
) -> pb.Status:
    """The subject's status once ``condition`` holds; bound it with asyncio.timeout.
    With ``waits``, the subject is polled meanwhile on ``caller``'s behalf. Raises
    HubClosedError on shutdown, StoreUnavailableError, and ApiError
    (UPSTREAM_NOT_FOUND) as soon as the provider says it does not know the subject and
    the store has never seen it either: nothing could ever meet the condition then."""
    # Subscribe before reading, so a change between the read and the wait is seen.
    subscription = hub.subscribe(hub.last_sequence, PreparedFilter(pb.StatusFilter(names=[name])))
    try:
        status = await store.get_status(name)
        if status is not None and condition_holds(condition, status):
            return status
        changed_ago = unchanged_for(status) if status is not None else None
        with contextlib.ExitStack() as stack:
            schedule = None
            if waits is not None:
                schedule = stack.enter_context(
                    waits.waiting(
                        name, client=caller, max_polled=max_polled, changed_ago=changed_ago
                    )
                )
            if schedule is None:
                return await _follow(subscription, name, condition)
            return await _until(subscription, name, condition, store, schedule)
    finally:
        with contextlib.suppress(Exception):
            await subscription.aclose()


async def _until(
    subscription: AsyncGenerator[list[pb.StatusEvent], None],
    name: str,
    condition: pb.WaitCondition,
    store: Store,
    schedule: Schedule,
) -> pb.Status:
    """``_follow``, unless the subject's polls hear first that the provider does not
    know it and the store has no status of it. A subject the store knows is waited for
    all the same (a provider may purge what it finished with, or lose it a moment)."""
    follow = asyncio.ensure_future(_follow(subscription, name, condition))
    told = asyncio.ensure_future(schedule.not_found.wait())
    try:
        await asyncio.wait((follow, told), return_when=asyncio.FIRST_COMPLETED)
        error = schedule.not_found_error
        if not follow.done() and error is not None and await store.get_status(name) is None:
            raise error
        return await follow
    finally:
        for task in (follow, told):
            task.cancel()
        await asyncio.gather(follow, told, return_exceptions=True)


async def _follow(
    subscription: AsyncGenerator[list[pb.StatusEvent], None],
    name: str,
    condition: pb.WaitCondition,
) -> pb.Status:
    async for batch in subscription:
        for event in batch:
            if event.status.name == name and condition_holds(condition, event.status):
                return event.status
    # The hub only ends when the gateway shuts down.
    raise HubClosedError()

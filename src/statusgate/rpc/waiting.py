"""WaitStatus's wait: until a subject meets a condition, woken by whatever changes it.

Webhooks, polls and the reconciler all reach the hub, so following the hub sees every
change. Meanwhile, for a caller allowed to poll, the subject is polled too (a provider
may have lost the webhook) by its one shared schedule (``poll.waits``), whose changes
reach the hub like any other.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from statusgate.core.hub import Hub
from statusgate.poll.service import unchanged_for
from statusgate.poll.waits import WaitPolls
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
    HubClosedError on shutdown, StoreUnavailableError."""
    # Subscribe before reading, so a change between the read and the wait is seen.
    subscription = hub.subscribe(hub.last_sequence)
    try:
        status = await store.get_status(name)
        if status is not None and condition_holds(condition, status):
            return status
        changed_ago = unchanged_for(status) if status is not None else None
        with contextlib.ExitStack() as stack:
            if waits is not None:
                stack.enter_context(
                    waits.waiting(
                        name, client=caller, max_polled=max_polled, changed_ago=changed_ago
                    )
                )
            return await _follow(subscription, name, condition)
    finally:
        with contextlib.suppress(Exception):
            await subscription.aclose()


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

"""StatusService: the read API, Watch streams and WaitStatus over the store and the hub."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, TypeVar

import grpc

from statusgate.config import Permission
from statusgate.core.filters import StatusQuery, matches, to_query, validate_filter
from statusgate.core.hub import Hub
from statusgate.core.names import InvalidNameError, parse_name, parse_source_parent
from statusgate.poll.service import PollService
from statusgate.rpc import paging
from statusgate.rpc.access import ANONYMOUS, AccessControl, Principal
from statusgate.rpc.errors import abort, to_status
from statusgate.rpc.waiting import HubClosedError, wait_for
from statusgate.rpc.wire import EventEncoder
from statusgate.store.base import Store, StoreUnavailableError
from statusgate.v1 import status_pb2 as pb

MAX_BATCH_GET = 1000
# Each name of a poll costs provider calls: batches stay small.
MAX_POLL_NAMES = 100
Context = grpc.aio.ServicerContext[Any, Any]
T = TypeVar("T")


# The generated servicer base is not used: rpc.server registers these methods itself, so
# that WatchStatuses can stream bytes that are already serialized.
_CAUGHT_UP = pb.WatchStatusesResponse(caught_up=True).SerializeToString()


class StatusService:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        sources: Sequence[str],
        poller: PollService | None = None,
        access: AccessControl | None = None,
    ) -> None:
        self._store = store
        self._hub = hub
        self._encoder = EventEncoder()
        self._sources = frozenset(sources)
        self._poller = poller
        self._access = access if access is not None else AccessControl({})

    async def GetStatus(self, request: pb.GetStatusRequest, context: Context) -> pb.Status:
        caller = await self._caller(context, "read")
        await self._check_name(request.name, context, caller)
        status = await self._guard(context, self._store.get_status(request.name))
        if status is None:
            await abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"{request.name} is not known",
                "STATUS_NOT_FOUND",
            )
        return status

    async def BatchGetStatuses(
        self, request: pb.BatchGetStatusesRequest, context: Context
    ) -> pb.BatchGetStatusesResponse:
        if len(request.names) > MAX_BATCH_GET:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"at most {MAX_BATCH_GET} names per call",
                "TOO_MANY_NAMES",
            )
        caller = await self._caller(context, "read")
        for name in request.names:
            await self._check_name(name, context, caller)
        found = await self._guard(context, self._store.get_statuses(list(request.names)))
        return pb.BatchGetStatusesResponse(
            statuses=[found[n] for n in request.names if n in found],
            missing_names=[n for n in request.names if n not in found],
        )

    async def ListStatuses(
        self, request: pb.ListStatusesRequest, context: Context
    ) -> pb.ListStatusesResponse:
        caller = await self._caller(context, "read")
        parent_source = parse_source_parent(request.parent)
        if parent_source is not None and not caller.can_see(parent_source):
            await self._deny(context, parent_source)
        if request.parent and parent_source is None:
            await self._check_name(request.parent, context, caller)
        try:
            validate_filter(request.filter)
            limit = paging.page_size(request.page_size)
            after = paging.decode(request, request.page_token) or ""
            query, within = self._list_query(request)
        except (InvalidNameError, ValueError) as error:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(error), "INVALID_ARGUMENT")
        query = _visible_to(caller, query)
        if query is None:
            return pb.ListStatusesResponse()
        # One extra row tells whether another page exists without a second query.
        rows = await self._guard(
            context, self._store.list_statuses(query, after_name=after, limit=limit + 1)
        )
        more = len(rows) > limit
        page = rows[:limit]
        response = pb.ListStatusesResponse(statuses=[s for s in page if s.name != within])
        if more:
            response.next_page_token = paging.encode(request, page[-1].name)
        return response

    def _list_query(self, request: pb.ListStatusesRequest) -> tuple[StatusQuery | None, str]:
        parent = request.parent
        status_filter = pb.StatusFilter()
        status_filter.CopyFrom(request.filter)
        if not parent:
            return to_query(status_filter), ""
        source = parse_source_parent(parent)
        if source is not None:
            if status_filter.sources and source not in status_filter.sources:
                return None, ""
            del status_filter.sources[:]
            status_filter.sources.append(source)
            return to_query(status_filter), ""
        parse_name(parent)
        return to_query(status_filter, within=parent), parent

    async def ListStatusEvents(
        self, request: pb.ListStatusEventsRequest, context: Context
    ) -> pb.ListStatusEventsResponse:
        caller = await self._caller(context, "read")
        await self._check_name(request.name, context, caller)
        try:
            limit = paging.page_size(request.page_size)
            after = int(paging.decode(request, request.page_token) or 0)
        except ValueError as error:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(error), "INVALID_ARGUMENT")
        events = await self._guard(
            context,
            self._store.list_events(request.name, after_sequence=after, limit=limit + 1),
        )
        if not events and not after and await self._store.get_status(request.name) is None:
            await abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"{request.name} is not known",
                "STATUS_NOT_FOUND",
            )
        response = pb.ListStatusEventsResponse(events=events[:limit])
        if len(events) > limit:
            response.next_page_token = paging.encode(request, events[limit - 1].sequence)
        return response

    async def WatchStatuses(
        self, request: pb.WatchStatusesRequest, context: Context
    ) -> AsyncIterator[bytes]:
        """Serialized WatchStatusesResponses (see ``rpc.wire``)."""
        caller = await self._caller(context, "read")
        try:
            validate_filter(request.filter)
        except InvalidNameError as error:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(error), "INVALID_NAME")
        if not self._access.open_watch(caller):
            await abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"client {caller.client_id!r} already has its maximum of "
                f"{caller.max_watch_streams} Watch streams",
                "TOO_MANY_STREAMS",
            )
        after = request.after_sequence if request.HasField("after_sequence") else None
        status_filter = request.filter
        # Most subscribers want everything: then each batch goes out whole.
        everything = caller.sources is None and status_filter == pb.StatusFilter()
        subscription = self._hub.subscribe(after)
        try:
            async for batch in subscription:
                if not batch:
                    yield _CAUGHT_UP
                    continue
                # Other sources' events are left out silently, like in ListStatuses.
                events = (
                    batch
                    if everything
                    else [
                        e
                        for e in batch
                        if caller.can_see(e.status.source) and matches(status_filter, e.status)
                    ]
                )
                if events:
                    yield self._encoder.encode(events)
            # The hub only ends when the gateway shuts down; say so, so the client
            # resumes elsewhere instead of taking the end of the stream as final.
            await abort(
                context,
                grpc.StatusCode.UNAVAILABLE,
                "the gateway is shutting down; resume from the last sequence received",
                "SHUTTING_DOWN",
            )
        except StoreUnavailableError:
            await abort(
                context,
                grpc.StatusCode.UNAVAILABLE,
                "the store is unavailable; resume from the last sequence received",
                "STORE_UNAVAILABLE",
            )
        finally:
            self._access.close_watch(caller)
            await subscription.aclose()

    async def PollStatuses(
        self, request: pb.PollStatusesRequest, context: Context
    ) -> pb.PollStatusesResponse:
        """Every name gets its own result: a malformed name, an unknown source or a
        provider failure is that name's ``error`` and never fails the others. Only names
        outside the caller's sources fail the call, as everywhere else."""
        caller = await self._caller(context, "poll")
        for name in request.names:
            with contextlib.suppress(InvalidNameError):
                source = parse_name(name).source
                if not caller.can_see(source):
                    await self._deny(context, source)
        if self._poller is None:
            await abort(
                context,
                grpc.StatusCode.UNIMPLEMENTED,
                "polling is not available in this gateway",
                "NOT_IMPLEMENTED",
            )
        if len(request.names) > MAX_POLL_NAMES:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"at most {MAX_POLL_NAMES} names per call",
                "TOO_MANY_NAMES",
            )
        max_staleness = 0.0
        if request.HasField("max_staleness"):
            max_staleness = request.max_staleness.ToTimedelta().total_seconds()
            if max_staleness < 0:
                await abort(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "max_staleness must not be negative",
                    "INVALID_ARGUMENT",
                )
        outcomes = await self._poller.poll_many(
            list(request.names), within=context.time_remaining(), max_staleness=max_staleness
        )
        response = pb.PollStatusesResponse()
        for outcome in outcomes:
            result = response.results.add(name=outcome.name, upstream_calls=outcome.upstream_calls)
            if outcome.status is not None:
                result.status.CopyFrom(outcome.status)
            if outcome.error is not None:
                result.error.CopyFrom(to_status(outcome.error))
        return response

    async def WaitStatus(self, request: pb.WaitStatusRequest, context: Context) -> pb.Status:
        caller = await self._caller(context, "read")
        await self._check_name(request.name, context, caller)
        if request.condition.WhichOneof("condition") is None:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "condition must be terminal, ready_to_fetch or states",
                "INVALID_CONDITION",
            )
        try:
            async with asyncio.timeout(context.time_remaining()):
                return await wait_for(
                    request.name,
                    request.condition,
                    store=self._store,
                    hub=self._hub,
                    poller=self._poller,
                )
        except TimeoutError:
            await abort(
                context,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"{request.name} did not reach the condition in time",
                "WAIT_TIMEOUT",
            )
        except HubClosedError:
            await abort(
                context,
                grpc.StatusCode.UNAVAILABLE,
                "the gateway is shutting down",
                "SHUTTING_DOWN",
            )
        except StoreUnavailableError:
            await abort(
                context,
                grpc.StatusCode.UNAVAILABLE,
                "the store is unavailable",
                "STORE_UNAVAILABLE",
            )

    # --- helpers ---------------------------------------------------------------------

    async def _caller(self, context: Context, permission: Permission) -> Principal:
        if self._access.open:
            return ANONYMOUS
        caller = self._access.authenticate(context.invocation_metadata())
        if caller is None:
            await abort(
                context,
                grpc.StatusCode.UNAUTHENTICATED,
                "a valid 'authorization: Bearer <token>' is required",
                "UNAUTHENTICATED",
            )
        if not caller.may(permission):
            await abort(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                f"client {caller.client_id!r} lacks the {permission!r} permission",
                "PERMISSION_DENIED",
            )
        return caller

    async def _deny(self, context: Context, source: str) -> None:
        await abort(
            context,
            grpc.StatusCode.PERMISSION_DENIED,
            f"this client may not see source {source!r}",
            "SOURCE_NOT_PERMITTED",
        )

    async def _check_name(self, name: str, context: Context, caller: Principal) -> None:
        try:
            parsed = parse_name(name)
        except InvalidNameError as error:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(error), "INVALID_NAME")
        # Scope first: a client learns nothing about sources it may not see, not even
        # whether they are configured.
        if not caller.can_see(parsed.source):
            await self._deny(context, parsed.source)
        if parsed.source not in self._sources:
            await abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"source {parsed.source!r} is not configured",
                "SOURCE_NOT_FOUND",
            )

    async def _guard(self, context: Context, call: Awaitable[T]) -> T:
        try:
            return await call
        except StoreUnavailableError:
            await abort(
                context,
                grpc.StatusCode.UNAVAILABLE,
                "the store is unavailable",
                "STORE_UNAVAILABLE",
            )


def _visible_to(caller: Principal, query: StatusQuery | None) -> StatusQuery | None:
    """Narrow a list query to the caller's sources; None when nothing can be visible."""
    if query is None or caller.sources is None:
        return query
    wanted = query.sources or sorted(caller.sources)
    visible = caller.visible(wanted)
    return dataclasses.replace(query, sources=visible) if visible else None

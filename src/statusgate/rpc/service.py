"""StatusService: the read API, Watch streams and WaitStatus over the store and the hub.

Each handler gets the caller ``rpc.handlers`` admitted for the RPC's permission
(``rpc.access.PERMISSIONS``), and checks only what it asks about against the caller's
sources. It raises ``ApiError`` for whatever the client must hear and lets a store
outage through; ``rpc.handlers`` turns both into the call's gRPC status.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator, Sequence

from google.protobuf import duration_pb2
from prometheus_client import Gauge

from statusgate.core.errors import ApiError, Reason
from statusgate.core.filters import (
    DEFAULT_LIMITS,
    FilterLimits,
    FilterTooLargeError,
    PreparedFilter,
    StatusQuery,
    filter_size,
    to_query,
    validate_filter,
)
from statusgate.core.hub import Hub
from statusgate.core.names import InvalidNameError, parse_name, parse_source_parent
from statusgate.poll.service import PollService
from statusgate.poll.waits import WaitPolls
from statusgate.rpc import paging
from statusgate.rpc.access import AccessControl, Principal
from statusgate.rpc.errors import to_status
from statusgate.rpc.handlers import CallContext
from statusgate.rpc.waiting import HubClosedError, wait_for
from statusgate.rpc.wire import EventEncoder
from statusgate.store.base import Store
from statusgate.telemetry.metrics import Metrics
from statusgate.v1 import status_pb2 as pb

MAX_BATCH_GET = 1000
# Each name of a poll costs provider calls: batches stay small.
MAX_POLL_NAMES = 100


# The generated servicer base is not used: rpc.server registers these methods itself, so
# that WatchStatuses can stream bytes that are already serialized.


class WatchStream:
    """One Watch stream's events for one caller: batches in sequence order, filtered to
    what the caller may see and asked for; an empty batch marks "caught up", after
    which ``head_sequence`` says up to where. Holds one of the caller's stream slots
    (and its filter's share of the caller's bound) until it ends or is closed."""

    def __init__(
        self,
        hub: Hub,
        access: AccessControl,
        caller: Principal,
        status_filter: pb.StatusFilter,
        entries: int,
        after: int | None,
        streams: Gauge | None = None,
    ) -> None:
        self._hub = hub
        # statusgate_watch_streams: open while batches() runs.
        self._streams = streams
        self._access = access
        self._caller = caller
        # Prepared once for the whole stream and narrowed to the caller's sources (other
        # sources' events are left out silently, like in ListStatuses): the hub hands
        # the stream only the events it matches (core.filter_index).
        self._filter = PreparedFilter(status_filter, visible=caller.sources)
        self._entries = entries
        self._after = after
        self._open = True
        self.head_sequence = 0

    async def batches(self) -> AsyncGenerator[list[pb.StatusEvent], None]:
        subscription = self._hub.subscribe(self._after, self._filter)
        if self._streams is not None:
            self._streams.inc()
        try:
            async for batch in subscription:
                if not batch:
                    # The hub yields the marker once its cursor reached its head, and
                    # nothing ran in between: the head is where this stream is.
                    self.head_sequence = max(self._after or 0, self._hub.last_sequence)
                yield batch
            # The hub only ends when the gateway shuts down; say so, so the client
            # resumes elsewhere instead of taking the end of the stream as final.
            raise ApiError(
                Reason.SHUTTING_DOWN,
                "the gateway is shutting down; resume from the last sequence received",
            )
        finally:
            if self._streams is not None:
                self._streams.dec()
            await subscription.aclose()
            await self.close()

    async def close(self) -> None:
        """Give the caller's stream slot back (once)."""
        if self._open:
            self._open = False
            self._access.close_watch(self._caller, self._entries)


class StatusService:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        sources: Sequence[str],
        poller: PollService | None = None,
        access: AccessControl | None = None,
        limits: FilterLimits = DEFAULT_LIMITS,
        waits: WaitPolls | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._streams = metrics.watch_streams if metrics is not None else None
        self._limits = limits
        self._waits = waits
        self._store = store
        self._hub = hub
        self._encoder = EventEncoder()
        self._sources = frozenset(sources)
        self._poller = poller
        self.access = access if access is not None else AccessControl({})

    async def GetStatus(
        self, request: pb.GetStatusRequest, context: CallContext, caller: Principal
    ) -> pb.Status:
        self._check_name(request.name, caller)
        status = await self._store.get_status(request.name)
        if status is None:
            raise _not_found(request.name)
        return status

    async def BatchGetStatuses(
        self, request: pb.BatchGetStatusesRequest, context: CallContext, caller: Principal
    ) -> pb.BatchGetStatusesResponse:
        if len(request.names) > MAX_BATCH_GET:
            raise ApiError(Reason.TOO_MANY_NAMES, f"at most {MAX_BATCH_GET} names per call")
        for name in request.names:
            self._check_name(name, caller)
        found = await self._store.get_statuses(list(request.names))
        return pb.BatchGetStatusesResponse(
            statuses=[found[n] for n in request.names if n in found],
            missing_names=[n for n in request.names if n not in found],
        )

    async def ListStatuses(
        self, request: pb.ListStatusesRequest, context: CallContext, caller: Principal
    ) -> pb.ListStatusesResponse:
        parent_source = parse_source_parent(request.parent)
        if parent_source is not None:
            _check_scope(parent_source, caller)
        elif request.parent:
            self._check_name(request.parent, caller)
        self._validate(request.filter, Reason.INVALID_ARGUMENT)
        limit = paging.page_size(request.page_size)
        after = paging.decode(request, request.page_token, "")
        query = _visible_to(caller, self._list_query(request))
        if query is None:
            return pb.ListStatusesResponse()
        # One extra row tells whether another page exists without a second query.
        rows = await self._store.list_statuses(query, after_name=after, limit=limit + 1)
        more = len(rows) > limit
        page = rows[:limit]
        response = pb.ListStatusesResponse(statuses=page)
        if more:
            response.next_page_token = paging.encode(request, page[-1].name)
        return response

    def _list_query(self, request: pb.ListStatusesRequest) -> StatusQuery | None:
        """The query: the filter under the parent (a source, or a subject's
        descendants)."""
        parent = request.parent
        status_filter = pb.StatusFilter()
        status_filter.CopyFrom(request.filter)
        if not parent:
            return to_query(status_filter)
        source = parse_source_parent(parent)
        if source is not None:
            if status_filter.sources and source not in status_filter.sources:
                return None
            del status_filter.sources[:]
            status_filter.sources.append(source)
            return to_query(status_filter)
        return to_query(status_filter, within=parent)

    async def ListStatusEvents(
        self, request: pb.ListStatusEventsRequest, context: CallContext, caller: Principal
    ) -> pb.ListStatusEventsResponse:
        self._check_name(request.name, caller)
        limit = paging.page_size(request.page_size)
        after = paging.decode(request, request.page_token, 0)
        events = await self._store.list_events(request.name, after_sequence=after, limit=limit + 1)
        if not events and not after and await self._store.get_status(request.name) is None:
            raise _not_found(request.name)
        response = pb.ListStatusEventsResponse(events=events[:limit])
        if len(events) > limit:
            response.next_page_token = paging.encode(request, events[limit - 1].sequence)
        return response

    async def WatchStatuses(
        self, request: pb.WatchStatusesRequest, context: CallContext, caller: Principal
    ) -> AsyncGenerator[bytes, None]:
        """Serialized WatchStatusesResponses (see ``rpc.wire``)."""
        stream = await self.watch(request, caller)
        try:
            async with contextlib.aclosing(stream.batches()) as batches:
                async for batch in batches:
                    if batch:
                        yield self._encoder.encode(batch)
                    else:
                        yield pb.WatchStatusesResponse(
                            caught_up=True, head_sequence=stream.head_sequence
                        ).SerializeToString()
        finally:
            await stream.close()  # also when the client left before the first event

    async def watch(self, request: pb.WatchStatusesRequest, caller: Principal) -> WatchStream:
        """A Watch stream, checked and counted against the caller's limits now (so a
        transport can answer a refusal before it starts streaming). Its ``batches``
        must be iterated or the stream ``close``d."""
        self._validate(request.filter, Reason.INVALID_NAME)
        after = request.after_sequence if request.HasField("after_sequence") else None
        if after is not None:
            # Before a stream slot is taken: a refused cursor must not hold one.
            await self._check_cursor(after)
        entries = filter_size(request.filter)
        self.access.open_watch(caller, entries)
        return WatchStream(
            self._hub, self.access, caller, request.filter, entries, after, self._streams
        )

    async def PollStatuses(
        self, request: pb.PollStatusesRequest, context: CallContext, caller: Principal
    ) -> pb.PollStatusesResponse:
        """Every name gets its own result: a malformed name, an unknown source or a
        provider failure is that name's ``error`` and never fails the others. Only names
        outside the caller's sources fail the call, as everywhere else."""
        for name in request.names:
            with contextlib.suppress(InvalidNameError):
                _check_scope(parse_name(name).source, caller)
        if self._poller is None:
            raise ApiError(Reason.NOT_IMPLEMENTED, "polling is not available in this gateway")
        if len(request.names) > MAX_POLL_NAMES:
            raise ApiError(Reason.TOO_MANY_NAMES, f"at most {MAX_POLL_NAMES} names per call")
        max_staleness = 0.0
        if request.HasField("max_staleness"):
            max_staleness = _seconds(request.max_staleness, "max_staleness")
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

    async def WaitStatus(
        self, request: pb.WaitStatusRequest, context: CallContext, caller: Principal
    ) -> pb.Status:
        self._check_name(request.name, caller)
        if request.condition.WhichOneof("condition") is None:
            raise ApiError(
                Reason.INVALID_CONDITION, "condition must be terminal, ready_to_fetch or states"
            )
        try:
            async with asyncio.timeout(context.time_remaining()):
                return await wait_for(
                    request.name,
                    request.condition,
                    store=self._store,
                    hub=self._hub,
                    waits=self._waits if caller.may("poll") else None,
                    caller=caller.client_id,
                    max_polled=caller.max_polled_waits,
                )
        except TimeoutError:
            raise ApiError(
                Reason.WAIT_TIMEOUT, f"{request.name} did not reach the condition in time"
            ) from None
        except HubClosedError:
            raise ApiError(Reason.SHUTTING_DOWN, "the gateway is shutting down") from None

    # --- helpers ---------------------------------------------------------------------

    def _validate(self, status_filter: pb.StatusFilter, invalid: Reason) -> None:
        try:
            validate_filter(status_filter, self._limits)
        except FilterTooLargeError as error:
            raise ApiError(Reason.FILTER_TOO_LARGE, str(error)) from None
        except InvalidNameError as error:
            raise ApiError(invalid, str(error)) from None

    async def _check_cursor(self, after: int) -> None:
        """A cursor must be a sequence this store has reached. One beyond it (from a
        reset database, or from another gateway) would be accepted, marked caught up,
        and then silently skip every event up to it: the client is told instead, with
        the last sequence, so it can resynchronise. The store is asked rather than the
        hub, which may trail a replica's commits by a moment."""
        if after < 0:
            raise ApiError(Reason.INVALID_ARGUMENT, "after_sequence must not be negative")
        last = await self._store.last_sequence()
        if after > last:
            raise ApiError(
                Reason.SEQUENCE_OUT_OF_RANGE,
                f"after_sequence {after} is beyond the last sequence of this gateway's "
                f"store ({last}): the cursor belongs to another store or a reset one; "
                "resynchronise (e.g. List the statuses) and watch from the last sequence",
                metadata={"last_sequence": str(last)},
            )

    def _check_name(self, name: str, caller: Principal) -> None:
        try:
            source = parse_name(name).source
        except InvalidNameError as error:
            raise ApiError(Reason.INVALID_NAME, str(error)) from None
        # Scope first: a client learns nothing about sources it may not see, not even
        # whether they are configured.
        _check_scope(source, caller)
        if source not in self._sources:
            raise ApiError(Reason.SOURCE_NOT_FOUND, f"source {source!r} is not configured")


def _check_scope(source: str, caller: Principal) -> None:
    if not caller.can_see(source):
        raise ApiError(Reason.SOURCE_NOT_PERMITTED, f"this client may not see source {source!r}")


# Durations beyond this are refused rather than overflowing the arithmetic on them.
MAX_DURATION_SECONDS = 10 * 365 * 24 * 3600


def _seconds(duration: duration_pb2.Duration, field: str) -> float:
    """A Duration from a request as seconds: never negative, never absurdly long."""
    if duration.seconds < 0 or duration.nanos < 0:
        raise ApiError(Reason.INVALID_ARGUMENT, f"{field} must not be negative")
    if duration.seconds > MAX_DURATION_SECONDS or duration.nanos >= 1_000_000_000:
        raise ApiError(
            Reason.INVALID_ARGUMENT,
            f"{field} must be a valid duration of at most {MAX_DURATION_SECONDS} s",
        )
    return duration.seconds + duration.nanos / 1e9


def _not_found(name: str) -> ApiError:
    return ApiError(Reason.STATUS_NOT_FOUND, f"{name} is not known")


def _visible_to(caller: Principal, query: StatusQuery | None) -> StatusQuery | None:
    """Narrow a list query to the caller's sources; None when nothing can be visible."""
    if query is None or caller.sources is None:
        return query
    wanted = query.sources or sorted(caller.sources)
    visible = caller.visible(wanted)
    return dataclasses.replace(query, sources=visible) if visible else None

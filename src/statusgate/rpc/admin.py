"""AdminService: the deliveries the gateway kept, listed, opened and replayed while it
serves.

Every method needs the ``admin`` permission (``rpc.access.PERMISSIONS``). A client
scoped to some sources sees only their deliveries: lists leave the others out, and a
delivery of another source is as unknown as one that never existed (a delivery id is
opaque, so, unlike a resource name, saying "not yours" would tell its source).
Replays go through ``Ingest.replay_all``, the one write path, on either store.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from statusgate.config import SourceConfig
from statusgate.core.deliveries import Delivery, DeliveryCursor, DeliveryQuery, DeliveryVerdict
from statusgate.core.errors import ApiError, Reason
from statusgate.core.names import InvalidNameError, parse_name
from statusgate.ingest import Ingest, Ingested
from statusgate.rpc import paging
from statusgate.rpc.access import AccessControl, Principal
from statusgate.rpc.errors import api_error, to_status
from statusgate.rpc.handlers import CallContext
from statusgate.store.base import Store, StoreUnavailableError
from statusgate.v1 import admin_service_pb2 as admin_pb
from statusgate.v1.status_pb2 import StatusEvent

log = logging.getLogger(__name__)

MAX_REPLAY_IDS = 1000

VERDICTS: dict[DeliveryVerdict, admin_pb.DeliveryVerdict.ValueType] = {
    DeliveryVerdict.MAPPED: admin_pb.DELIVERY_VERDICT_MAPPED,
    DeliveryVerdict.UNMAPPED: admin_pb.DELIVERY_VERDICT_UNMAPPED,
    DeliveryVerdict.REJECTED: admin_pb.DELIVERY_VERDICT_REJECTED,
}
_FROM_PROTO = {value: verdict for verdict, value in VERDICTS.items()}


class AdminService:
    def __init__(
        self,
        store: Store,
        ingest: Ingest,
        sources: Mapping[str, SourceConfig],
        access: AccessControl,
    ) -> None:
        self._store = store
        self._ingest = ingest
        self._sources = sources
        self.access = access

    async def ListDeliveries(
        self, request: admin_pb.ListDeliveriesRequest, context: CallContext, caller: Principal
    ) -> admin_pb.ListDeliveriesResponse:
        limit = paging.page_size(request.page_size)
        after = _cursor(paging.decode(request, request.page_token, ""))
        query = _visible(caller, _query(request.filter, caller))
        if query is None:
            return admin_pb.ListDeliveriesResponse()
        # One extra row tells whether another page exists without a second query.
        rows = await self._store.query_deliveries(query, after=after, limit=limit + 1)
        response = admin_pb.ListDeliveriesResponse(
            deliveries=[to_proto(delivery) for delivery in rows[:limit]]
        )
        if len(rows) > limit:
            response.next_page_token = paging.encode(request, _position(rows[limit - 1]))
        return response

    async def GetDelivery(
        self, request: admin_pb.GetDeliveryRequest, context: CallContext, caller: Principal
    ) -> admin_pb.Delivery:
        if not request.id:
            raise ApiError(Reason.INVALID_ARGUMENT, "id is required")
        found = (await self._store.get_deliveries([request.id])).get(request.id)
        if found is None or not caller.can_see(found.source):
            raise _not_found(request.id)
        return to_proto(found)

    async def ReplayDeliveries(
        self, request: admin_pb.ReplayDeliveriesRequest, context: CallContext, caller: Principal
    ) -> admin_pb.ReplayDeliveriesResponse:
        by_filter = request.HasField("filter")
        if bool(request.ids) == by_filter:
            raise ApiError(Reason.INVALID_ARGUMENT, "set either ids or filter")
        response = admin_pb.ReplayDeliveriesResponse()
        if by_filter:
            deliveries = await self._page_to_replay(request, caller, response)
        else:
            if len(request.ids) > MAX_REPLAY_IDS:
                raise ApiError(Reason.TOO_MANY_NAMES, f"at most {MAX_REPLAY_IDS} ids per call")
            found = await self._store.get_deliveries(list(request.ids))
            deliveries = [found.get(id_) for id_ in request.ids]
        results: list[admin_pb.ReplayResult] = []
        runnable: list[tuple[int, SourceConfig, Delivery]] = []
        for id_, delivery in zip(_ids(request, deliveries), deliveries, strict=True):
            result = admin_pb.ReplayResult(delivery_id=id_)
            results.append(result)
            if delivery is None or not caller.can_see(delivery.source):
                result.error.CopyFrom(to_status(_not_found(id_)))
                continue
            result.verdict_before = VERDICTS[delivery.verdict]
            source = self._sources.get(delivery.source)
            if source is None:
                result.error.CopyFrom(
                    to_status(
                        ApiError(
                            Reason.SOURCE_NOT_FOUND,
                            f"source {delivery.source!r} of delivery {id_} is no longer configured",
                        )
                    )
                )
                continue
            runnable.append((len(results) - 1, source, delivery))
        outcomes = await self._ingest.replay_all(
            [(source, delivery) for _, source, delivery in runnable], dry_run=request.dry_run
        )
        for (index, _, _), outcome in zip(runnable, outcomes, strict=True):
            _fill(results[index], outcome, dry_run=request.dry_run)
        response.results.extend(results)
        # An operator's action on stored data: say who did what.
        log.info(
            "deliveries replayed",
            extra={
                "client": caller.client_id,
                "dry_run": request.dry_run,
                "deliveries": len(results),
                "failed": sum(1 for r in results if r.HasField("error")),
                "events": sum(len(r.events) for r in results),
            },
        )
        return response

    async def _page_to_replay(
        self,
        request: admin_pb.ReplayDeliveriesRequest,
        caller: Principal,
        response: admin_pb.ReplayDeliveriesResponse,
    ) -> list[Delivery | None]:
        """The page of deliveries a replay by filter runs, oldest first (the order they
        arrived in); sets the response's next page token."""
        limit = paging.page_size(request.page_size)
        after = _cursor(paging.decode(request, request.page_token, ""))
        query = _visible(caller, _query(request.filter, caller))
        if query is None:
            return []
        rows = await self._store.query_deliveries(
            query, after=after, limit=limit + 1, oldest_first=True, bodies=True
        )
        if len(rows) > limit:
            response.next_page_token = paging.encode(request, _position(rows[limit - 1]))
        return list(rows[:limit])


def to_proto(delivery: Delivery) -> admin_pb.Delivery:
    message = admin_pb.Delivery(
        id=delivery.id,
        source=delivery.source,
        verdict=VERDICTS[delivery.verdict],
        detail=delivery.detail,
        headers=delivery.headers,
        body=delivery.body,
        path=delivery.path,
        events=[admin_pb.EventRef(sequence=e.sequence, name=e.name) for e in delivery.events],
    )
    message.received_at.FromDatetime(delivery.received_at)
    return message


def _fill(result: admin_pb.ReplayResult, outcome: Ingested | Exception, *, dry_run: bool) -> None:
    if isinstance(outcome, Exception):
        error = (
            api_error(outcome)
            if isinstance(outcome, ApiError | StoreUnavailableError)
            else ApiError(Reason.DELIVERY_NOT_FOUND, f"delivery {result.delivery_id} is gone")
            if isinstance(outcome, LookupError)  # pruned by retention meanwhile
            else ApiError(Reason.INVALID_ARGUMENT, f"cannot replay: {outcome}")
        )
        result.error.CopyFrom(to_status(error))
        return
    result.verdict_after = VERDICTS[outcome.normalized.verdict]
    for event in outcome.result.events:
        copy = StatusEvent()
        copy.CopyFrom(event)
        if dry_run:
            # Nothing was assigned: the numbers staging used are only a forecast.
            copy.sequence = 0
            copy.event_id = ""
            copy.status.sequence = 0
        result.events.append(copy)


def _ids(
    request: admin_pb.ReplayDeliveriesRequest, deliveries: Sequence[Delivery | None]
) -> list[str]:
    if request.ids:
        return list(request.ids)
    return [delivery.id for delivery in deliveries if delivery is not None]


def _query(delivery_filter: admin_pb.DeliveryFilter, caller: Principal) -> DeliveryQuery:
    if delivery_filter.name:
        try:
            source = parse_name(delivery_filter.name).source
        except InvalidNameError as error:
            raise ApiError(Reason.INVALID_NAME, str(error)) from None
        if not caller.can_see(source):
            raise ApiError(
                Reason.SOURCE_NOT_PERMITTED, f"this client may not see source {source!r}"
            )
    verdicts = []
    for value in delivery_filter.verdicts:
        if value not in _FROM_PROTO:
            raise ApiError(Reason.INVALID_ARGUMENT, "filter.verdicts: DELIVERY_VERDICT_UNSPECIFIED")
        verdicts.append(_FROM_PROTO[value])
    return DeliveryQuery(
        sources=list(delivery_filter.sources),
        verdicts=verdicts,
        received_after=_time(delivery_filter, "received_after"),
        received_before=_time(delivery_filter, "received_before"),
        name=delivery_filter.name,
    )


def _time(delivery_filter: admin_pb.DeliveryFilter, field: str) -> datetime | None:
    if not delivery_filter.HasField(field):  # type: ignore[arg-type]
        return None
    stamp: Timestamp = getattr(delivery_filter, field)
    return stamp.ToDatetime(UTC)


def _visible(caller: Principal, query: DeliveryQuery) -> DeliveryQuery | None:
    """Narrow a query to the caller's sources; None when nothing can be visible."""
    if caller.sources is None:
        return query
    wanted = query.sources or sorted(caller.sources)
    visible = caller.visible(wanted)
    if not visible:
        return None
    return DeliveryQuery(
        sources=visible,
        verdicts=query.verdicts,
        received_after=query.received_after,
        received_before=query.received_before,
        name=query.name,
    )


def _position(delivery: Delivery) -> str:
    micros = (delivery.received_at - _EPOCH) // _MICROSECOND
    return f"{micros}/{delivery.id}"


def _cursor(position: str) -> DeliveryCursor | None:
    if not position:
        return None
    micros, slash, id_ = position.partition("/")
    if not slash or not micros.lstrip("-").isdigit() or not id_:
        raise ApiError(Reason.INVALID_ARGUMENT, "page_token is not one this server issued")
    return DeliveryCursor(_EPOCH + int(micros) * _MICROSECOND, id_)


def _not_found(id_: str) -> ApiError:
    return ApiError(Reason.DELIVERY_NOT_FOUND, f"delivery {id_!r} is not known")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - _EPOCH

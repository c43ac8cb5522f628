"""The console's pages about statuses: the overview, search, a subject's page, and the
live feed."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web
from google.protobuf.descriptor import EnumDescriptor

from statusgate.api.console.app import PREFIX, Console, Page
from statusgate.api.console.present import href
from statusgate.api.fields import enum_number
from statusgate.core.errors import ApiError
from statusgate.core.filters import PreparedFilter, validate_filter
from statusgate.core.names import TOP_LEVEL, InvalidNameError, make_name, parse_name
from statusgate.rpc.access import Principal
from statusgate.v1 import admin_service_pb2 as admin_pb
from statusgate.v1 import status_pb2 as pb

HISTORY_PAGE = 100
CHILDREN_PAGE = 100
SEARCH_PAGE = 50
# The feed shows the newest events among the last FEED_SCAN of the gateway.
FEED_SHOWN = 100
FEED_SCAN = 500


def add_routes(app: web.Application, console: Console) -> None:
    pages = StatusPages(console)
    app.router.add_get("/", pages.overview)
    app.router.add_get("/search", pages.search)
    app.router.add_get("/statuses/{name:.+}", pages.subject)
    app.router.add_get("/feed", pages.feed)
    app.router.add_get("/feed/rows", pages.feed_rows)


class StatusPages:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def overview(self, request: web.Request) -> web.StreamResponse:
        caller = self.console.caller(request)
        self.console.permit(caller, "ListStatuses")
        panels = await self.console.overview.panels(caller)
        return self.console.render(
            request, "overview.html", nav="overview", panels=panels, now=datetime.now(UTC)
        )

    # --- search -----------------------------------------------------------------------

    async def search(self, request: web.Request) -> web.StreamResponse:
        """A whole name (its page), a name prefix (everything under it), or a bare
        provider id (every top-level subject of every source with that id, and the
        delivery with that id)."""
        caller = self.console.caller(request)
        query = request.query.get("q", "").strip()
        statuses: list[pb.Status] = []
        delivery: admin_pb.Delivery | None = None
        next_token = ""
        if query.startswith("sources/"):
            if await self._known(caller, query):
                raise web.HTTPSeeOther(f"{PREFIX}/statuses/{href(query)}")
            listing = await self.console.call(
                caller,
                "ListStatuses",
                pb.ListStatusesRequest(
                    filter=pb.StatusFilter(name_prefixes=[query]),
                    page_size=SEARCH_PAGE,
                    page_token=request.query.get("page_token", ""),
                ),
            )
            statuses, next_token = list(listing.statuses), listing.next_page_token
        elif query:
            statuses = await self._by_id(caller, query)
            delivery = await self._delivery(caller, query)
        more = f"{PREFIX}/search?{urlencode({'q': query, 'page_token': next_token})}"
        return self.console.render(
            request,
            "search.html",
            query=query,
            statuses=statuses,
            delivery=delivery,
            more=more if next_token else "",
            now=datetime.now(UTC),
        )

    async def _known(self, caller: Principal, name: str) -> bool:
        try:
            parse_name(name)
            await self.console.call(caller, "GetStatus", pb.GetStatusRequest(name=name))
        except (InvalidNameError, ApiError):
            return False
        return True

    async def _by_id(self, caller: Principal, id_: str) -> list[pb.Status]:
        names = []
        for source in caller.visible(self.console.overview.providers):
            for collection in TOP_LEVEL:
                with contextlib.suppress(InvalidNameError):
                    names.append(str(make_name(source, collection, id_)))
        if not names:
            return []
        found = await self.console.call(
            caller, "BatchGetStatuses", pb.BatchGetStatusesRequest(names=names)
        )
        return list(found.statuses)

    async def _delivery(self, caller: Principal, id_: str) -> admin_pb.Delivery | None:
        if not caller.may("admin"):
            return None
        try:
            found: admin_pb.Delivery = await self.console.call(
                caller, "GetDelivery", admin_pb.GetDeliveryRequest(id=id_)
            )
        except ApiError:
            return None
        return found

    # --- a subject --------------------------------------------------------------------

    async def subject(self, request: web.Request) -> web.StreamResponse:
        caller = self.console.caller(request)
        name = request.match_info["name"]
        # Before reading: an event committed meanwhile is then shown twice, never missed.
        head = self.console.overview.last_sequence
        status: pb.Status = await self.console.call(
            caller, "GetStatus", pb.GetStatusRequest(name=name)
        )
        children, history, parent = await asyncio.gather(
            self.console.call(
                caller,
                "ListStatuses",
                pb.ListStatusesRequest(parent=name, page_size=CHILDREN_PAGE),
            ),
            self.console.call(
                caller,
                "ListStatusEvents",
                pb.ListStatusEventsRequest(
                    name=name,
                    page_size=HISTORY_PAGE,
                    page_token=request.query.get("page_token", ""),
                ),
            ),
            self._parent(caller, status.parent),
        )
        ids = sorted({e.delivery_id for e in history.events if e.delivery_id})
        deliveries = await self._deliveries(caller, ids)
        # A prefix matches the name itself and its descendants (whole segments).
        watch = {"after_sequence": head, "filter.name_prefixes": name}
        older = ""
        if history.next_page_token:
            older = f"{request.path}?{urlencode({'page_token': history.next_page_token})}"
        return self.console.render(
            request,
            "status.html",
            status=status,
            parent=parent,
            children=list(children.statuses),
            more_children=bool(children.next_page_token),
            events=list(history.events),
            next_events=older,
            deliveries=deliveries,
            account_fields=self.console.account_fields.get(status.source, frozenset()),
            watch=f"/v1/statuses:watch?{urlencode(watch)}",
            now=datetime.now(UTC),
        )

    async def _parent(self, caller: Principal, name: str) -> pb.Status | str | None:
        """The parent's status; its bare name when it was never seen; None for a
        top-level subject."""
        if not name:
            return None
        try:
            found: pb.Status = await self.console.call(
                caller, "GetStatus", pb.GetStatusRequest(name=name)
            )
        except ApiError:
            return name
        return found

    async def _deliveries(self, caller: Principal, ids: list[str]) -> dict[str, admin_pb.Delivery]:
        """The raw deliveries behind the events, for a caller who may see them (one
        pruned by retention, or of a source no longer configured, is left out)."""
        if not caller.may("admin") or not ids:
            return {}
        found = await asyncio.gather(*(self._delivery(caller, id_) for id_ in ids))
        return {d.id: d for d in found if d is not None}

    # --- the live feed ----------------------------------------------------------------

    async def feed(self, request: web.Request) -> web.StreamResponse:
        caller = self.console.caller(request)
        chosen = FeedChoice.of(request)
        status_filter = chosen.status_filter()
        head = await self.console.store.last_sequence()
        events = await self._events(caller, status_filter, after=max(0, head - FEED_SCAN))
        watch: list[tuple[str, str | int]] = [("after_sequence", head)]
        watch += [(f"filter.{key}", value) for key, value in _filter_params(status_filter)]
        rows: list[tuple[str, str | int]] = [("after", head), *chosen.params()]
        return self.console.render(
            request,
            "feed.html",
            nav="feed",
            events=events,
            chosen=chosen,
            sources=list(self.console.overview.providers),
            kinds=_names(pb.Kind.DESCRIPTOR),
            states=_names(pb.State.DESCRIPTOR),
            watch=f"/v1/statuses:watch?{urlencode(watch)}",
            rows=f"{PREFIX}/feed/rows?{urlencode(rows)}",
        )

    async def feed_rows(self, request: web.Request) -> web.StreamResponse:
        """The feed's rows after ``after``, newest first: what the page's script
        inserts when the Watch stream says something happened."""
        caller = self.console.caller(request)
        status_filter = FeedChoice.of(request).status_filter()
        after = request.query.get("after", "0")
        if not after.isdigit():
            raise Page(400, "Bad request", "after must be a sequence number")
        events = await self._events(caller, status_filter, after=int(after))
        return self.console.render(request, "feed_rows.html", events=events)

    async def _events(
        self, caller: Principal, status_filter: pb.StatusFilter, *, after: int
    ) -> list[pb.StatusEvent]:
        """Events after ``after`` that the filter and the caller's sources let
        through, newest first (what a Watch stream from there would have sent)."""
        self.console.permit(caller, "WatchStatuses")
        matcher = PreparedFilter(status_filter)
        read = await self.console.store.read_events(after_sequence=after, limit=FEED_SCAN)
        shown = [e for e in read if caller.can_see(e.status.source) and matcher.matches(e.status)]
        return shown[::-1][:FEED_SHOWN]


@dataclass(frozen=True, slots=True)
class FeedChoice:
    """What the feed's form asks for, as GET parameters: Watch's filter, each field as
    often as wanted (``source``, ``kind``, ``state`` repeat; ``name`` and ``prefix`` may
    also hold several separated by spaces, which no name contains), enum values with or
    without their prefix, in any case."""

    source: list[str]
    name: list[str]
    prefix: list[str]
    kind: list[str]
    state: list[str]
    terminal: bool

    @classmethod
    def of(cls, request: web.Request) -> FeedChoice:
        query = request.query

        def values(key: str) -> list[str]:
            return [word for value in query.getall(key, []) for word in value.split()]

        return cls(
            source=values("source"),
            name=values("name"),
            prefix=values("prefix"),
            kind=values("kind"),
            state=values("state"),
            terminal=query.get("terminal", "") in ("1", "on", "true"),
        )

    def status_filter(self) -> pb.StatusFilter:
        """The Watch filter it means; the 400 page when it is not one."""
        status_filter = pb.StatusFilter(
            sources=self.source,
            names=self.name,
            name_prefixes=self.prefix,
            kinds=[enum_number(pb.Kind.DESCRIPTOR, k, "kind") for k in self.kind],  # type: ignore[misc]
            states=[enum_number(pb.State.DESCRIPTOR, s, "state") for s in self.state],  # type: ignore[misc]
            terminal_only=self.terminal,
        )
        try:
            validate_filter(status_filter)
        except ValueError as error:
            raise Page(400, "Bad request", str(error)) from None
        return status_filter

    def params(self) -> list[tuple[str, str]]:
        """The choice as the form's own query parameters."""
        params = [
            (key, value)
            for key in ("source", "name", "prefix", "kind", "state")
            for value in getattr(self, key)
        ]
        if self.terminal:
            params.append(("terminal", "1"))
        return params

    def chose(self, key: str, enum_name: str) -> bool:
        """Whether ``kind`` or ``state`` includes the value named ``enum_name``."""
        prefix = enum_name.split("_", 1)[0] + "_"
        return any(
            v.upper() in (enum_name, enum_name.removeprefix(prefix)) for v in getattr(self, key)
        )


def _filter_params(status_filter: pb.StatusFilter) -> list[tuple[str, str]]:
    """The filter as the JSON API's query parameters (and the feed's own)."""
    params = [("sources", s) for s in status_filter.sources]
    params += [("names", n) for n in status_filter.names]
    params += [("name_prefixes", p) for p in status_filter.name_prefixes]
    params += [("kinds", pb.Kind.Name(k)) for k in status_filter.kinds]
    params += [("states", pb.State.Name(s)) for s in status_filter.states]
    if status_filter.terminal_only:
        params.append(("terminal_only", "true"))
    return params


def _names(enum: EnumDescriptor) -> list[str]:
    return [value.name for value in enum.values if value.number != 0]

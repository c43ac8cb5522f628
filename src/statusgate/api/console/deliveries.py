"""The console's delivery pages: the filtered list, one delivery (body, kept headers,
verdict, detail, events), and its replay: a dry-run preview (GET: it changes nothing),
then apply (POST with the CSRF token, answered by a redirect to the delivery, so a
reload never replays twice). All of it needs the ``admin`` permission, as
AdminService does."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from statusgate.api.console.app import PREFIX, Console, Page
from statusgate.api.console.present import href, shown_body, shown_headers
from statusgate.api.errors import HTTP_STATUS
from statusgate.api.fields import enum_number
from statusgate.rpc.access import Principal
from statusgate.v1 import admin_service_pb2 as admin_pb

LIST_PAGE = 50
VERDICTS = ("mapped", "unmapped", "rejected")


def add_routes(app: web.Application, console: Console) -> None:
    pages = DeliveryPages(console)
    app.router.add_get("/deliveries", pages.listing)
    app.router.add_get("/deliveries/{id}", pages.delivery)
    app.router.add_get("/deliveries/{id}/replay", pages.preview)
    app.router.add_post("/deliveries/{id}/replay", pages.replay)


class DeliveryPages:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def listing(self, request: web.Request) -> web.StreamResponse:
        """``?verdict=rejected&source=S&name=...`` (verdicts in any case, with or
        without their prefix; each parameter may repeat), newest first."""
        caller = self.console.caller(request)
        query = request.query
        verdicts = [
            enum_number(admin_pb.DeliveryVerdict.DESCRIPTOR, value, "verdict")
            for value in query.getall("verdict", [])
            if value.strip()
        ]
        sources = [s for s in query.getall("source", []) if s.strip()]
        name = query.get("name", "").strip()
        found = await self.console.call(
            caller,
            "ListDeliveries",
            admin_pb.ListDeliveriesRequest(
                filter=admin_pb.DeliveryFilter(
                    sources=sources,
                    verdicts=verdicts,  # type: ignore[arg-type]
                    name=name,
                ),
                page_size=LIST_PAGE,
                page_token=query.get("page_token", ""),
            ),
        )
        chosen = [("verdict", _verdict_name(v)) for v in verdicts]
        chosen += [("source", s) for s in sources] + ([("name", name)] if name else [])
        older = ""
        if found.next_page_token:
            older = f"{request.path}?{urlencode([*chosen, ('page_token', found.next_page_token)])}"
        return self.console.render(
            request,
            "deliveries.html",
            nav="deliveries",
            deliveries=list(found.deliveries),
            verdicts=VERDICTS,
            chosen_verdicts={_verdict_name(v) for v in verdicts},
            sources=list(self.console.overview.providers),
            chosen_sources=set(sources),
            name=name,
            older=older,
        )

    async def delivery(self, request: web.Request) -> web.StreamResponse:
        caller = self.console.caller(request)
        found: admin_pb.Delivery = await self.console.call(
            caller, "GetDelivery", admin_pb.GetDeliveryRequest(id=request.match_info["id"])
        )
        replayed = request.query.get("replayed", "")
        return self.console.render(
            request,
            "delivery.html",
            nav="deliveries",
            delivery=found,
            body=shown_body(found.body, self.console.account_fields.get(found.source, ())),
            headers=shown_headers(found.headers.items()),
            replayed=int(replayed) if replayed.isdigit() else None,
        )

    async def preview(self, request: web.Request) -> web.StreamResponse:
        caller = self.console.caller(request)
        id_ = request.match_info["id"]
        result = await self._replay(caller, id_, dry_run=True)
        found: admin_pb.Delivery = await self.console.call(
            caller, "GetDelivery", admin_pb.GetDeliveryRequest(id=id_)
        )
        return self.console.render(
            request, "replay.html", nav="deliveries", delivery=found, result=result
        )

    async def replay(self, request: web.Request) -> web.StreamResponse:
        caller = self.console.caller(request)
        id_ = request.match_info["id"]
        # Who asks first (a client without admin hears so), then whether the form holds.
        self.console.permit(caller, "ReplayDeliveries")
        await self.console.check_form(request)
        result = await self._replay(caller, id_, dry_run=False)
        target = f"{PREFIX}/deliveries/{href(id_)}?{urlencode({'replayed': len(result.events)})}"
        raise web.HTTPSeeOther(target)

    async def _replay(self, caller: Principal, id_: str, *, dry_run: bool) -> admin_pb.ReplayResult:
        answer = await self.console.call(
            caller,
            "ReplayDeliveries",
            admin_pb.ReplayDeliveriesRequest(ids=[id_], dry_run=dry_run),
        )
        result: admin_pb.ReplayResult = answer.results[0]
        if result.HasField("error"):
            status = HTTP_STATUS.get(result.error.code, 500)
            raise Page(status, "Cannot replay", result.error.message)
        return result


def _verdict_name(value: int) -> str:
    return admin_pb.DeliveryVerdict.Name(value)  # type: ignore[arg-type]

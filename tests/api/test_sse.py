"""WatchStatuses as Server-Sent Events: status events with their sequence as id, the
caught_up marker, keep-alive comments, a client that disconnects and resumes with
Last-Event-ID (which wins over after_sequence) with no gap, and the per-client stream
limit shared with gRPC."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from statusgate.v1 import status_pb2 as pb
from tests.conftest import RunningGateway
from tests.operating import ADMIN, FINBOX_ADMIN, bearer, metadata, operating_gateway
from tests.payloads import finbox_expiry

WATCH = "/v1/statuses:watch"


@dataclass
class Event:
    kind: str
    id: str
    data: Any


@dataclass
class SseStream:
    """A minimal EventSource: reads events (and counts comments) off one response."""

    response: aiohttp.ClientResponse
    comments: list[str] = field(default_factory=list)

    async def next(self, timeout: float = 10) -> Event:
        kind, id_, data = "message", "", ""
        while True:
            raw = await asyncio.wait_for(self.response.content.readline(), timeout)
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode().rstrip("\n")
            if not line:
                if data or kind != "message":
                    return Event(kind, id_, json.loads(data) if data else None)
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                self.comments.append(value)
            elif name == "event":
                kind = value
            elif name == "id":
                id_ = value
            elif name == "data":
                data += value

    async def until_caught_up(self) -> list[Event]:
        events = []
        while (event := await self.next()).kind != "caught_up":
            events.append(event)
        events.append(event)
        return events


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with operating_gateway(tmp_path, sse_keepalive_seconds=0.1) as running:
        yield running


async def open_stream(
    gw: RunningGateway, query: str = "", *, token: str = ADMIN, last_event_id: str = ""
) -> SseStream:
    headers = bearer(token)
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    response = await gw.http.get(gw.api_url(WATCH + query), headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return SseStream(response)


async def post_expiries(gw: RunningGateway, *ids: str) -> None:
    for id_ in ids:
        assert (await gw.post("finbox", finbox_expiry(id_)))[0] == 200


async def test_replay_then_caught_up_then_live(gw: RunningGateway) -> None:
    await post_expiries(gw, "e1", "e2")
    stream = await open_stream(gw, "?after_sequence=0")
    replayed = await stream.until_caught_up()
    assert [(e.kind, e.id) for e in replayed] == [
        ("status", "1"),
        ("status", "2"),
        ("caught_up", "2"),
    ]
    assert replayed[0].data["status"]["name"] == "sources/finbox/sessions/e1"
    assert replayed[0].data["sequence"] == "1" and replayed[-1].data == {}
    await post_expiries(gw, "e3")
    live = await stream.next()
    assert (live.kind, live.id, live.data["origin"]) == ("status", "3", "ORIGIN_WEBHOOK")
    stream.response.close()


async def test_keep_alive_comments_while_quiet(gw: RunningGateway) -> None:
    stream = await open_stream(gw)
    assert (await stream.next()).kind == "caught_up"  # live from the head

    async def comment() -> bytes:
        while not (line := await stream.response.content.readline()).startswith(b":"):
            assert line in (b"\n", b""), line  # nothing but comments while quiet
        return line

    assert await asyncio.wait_for(comment(), 10) == b": keep-alive\n"
    stream.response.close()


async def test_disconnect_and_resume_with_last_event_id(gw: RunningGateway) -> None:
    await post_expiries(gw, "r1", "r2", "r3")
    stream = await open_stream(gw, "?after_sequence=0")
    first = [await stream.next(), await stream.next()]
    assert [e.id for e in first] == ["1", "2"]
    stream.response.close()  # the client goes away mid-replay
    await post_expiries(gw, "r4", "r5")
    # A browser reconnects to the same URL: Last-Event-ID wins over after_sequence=0.
    resumed = await open_stream(gw, "?after_sequence=0", last_event_id=first[-1].id)
    events = await resumed.until_caught_up()
    assert [e.id for e in events if e.kind == "status"] == ["3", "4", "5"]
    resumed.response.close()


async def test_a_filtered_stream_resumes_from_the_head_it_caught_up_with(
    gw: RunningGateway,
) -> None:
    await post_expiries(gw, "x1", "x2")
    query = "?after_sequence=0&filter.names=sources/finbox/sessions/x1"
    stream = await open_stream(gw, query)
    events = await stream.until_caught_up()
    assert [(e.kind, e.id) for e in events] == [("status", "1"), ("caught_up", "2")]
    stream.response.close()


async def test_refusals_come_before_the_stream(gw: RunningGateway) -> None:
    async with gw.http.get(
        gw.api_url(WATCH + "?filter.names=nonsense"), headers=bearer(ADMIN)
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["status"] == "INVALID_ARGUMENT"
    async with gw.http.get(
        gw.api_url(WATCH), headers={**bearer(ADMIN), "Last-Event-ID": "soon"}
    ) as response:
        assert response.status == 400
        assert "Last-Event-ID" in (await response.json())["error"]["message"]


async def test_the_stream_limit_is_shared_with_grpc(gw: RunningGateway) -> None:
    grpc_stream = gw.stub.WatchStatuses(pb.WatchStatusesRequest(), metadata=metadata(FINBOX_ADMIN))
    assert (await anext(aiter(grpc_stream))).caught_up
    async with gw.http.get(gw.api_url(WATCH), headers=bearer(FINBOX_ADMIN)) as response:
        document = await response.json()
        assert (response.status, document["error"]["status"]) == (429, "RESOURCE_EXHAUSTED")
    grpc_stream.cancel()  # type: ignore[attr-defined]

    async def sse_opens() -> SseStream:
        while True:
            response = await gw.http.get(gw.api_url(WATCH), headers=bearer(FINBOX_ADMIN))
            if response.status == 200:
                return SseStream(response)
            response.close()
            await asyncio.sleep(0.05)

    sse = await asyncio.wait_for(sse_opens(), 10)
    assert (await sse.next()).kind == "caught_up"
    # Leaving gives the slot back at once (the server notices the closed connection).
    sse.response.close()

    async def grpc_opens() -> None:
        while True:
            call = gw.stub.WatchStatuses(pb.WatchStatusesRequest(), metadata=metadata(FINBOX_ADMIN))
            try:
                assert (await anext(aiter(call))).caught_up
                call.cancel()  # type: ignore[attr-defined]
                return
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                await asyncio.sleep(0.05)

    await asyncio.wait_for(grpc_opens(), 10)


async def test_shutdown_ends_the_stream_with_an_error_event(tmp_path: Path) -> None:
    async with operating_gateway(tmp_path) as running:
        stream = await open_stream(running)
        assert (await stream.next()).kind == "caught_up"
        stopping = asyncio.ensure_future(running.gateway.stop())
        event = await stream.next()
        assert event.kind == "error"
        assert event.data["error"]["status"] == "UNAVAILABLE"
        assert event.data["error"]["details"][0]["reason"] == "SHUTTING_DOWN"
        await stopping
        stream.response.close()

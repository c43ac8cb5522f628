"""What a read-only client sends over gRPC is bounded: filters (names and prefixes per
filter and per client, in Watch and ListStatuses), names, page tokens and durations are
refused with INVALID_ARGUMENT, never UNKNOWN, STORE_UNAVAILABLE or RESOURCE_EXHAUSTED, and
an error never echoes more than a short prefix of what was sent."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2

from statusgate.app import load_settings
from statusgate.core.filters import PreparedFilter
from statusgate.core.names import name_has_prefix
from statusgate.rpc import paging
from statusgate.v1 import status_pb2 as pb
from tests.conftest import RunningGateway, start_gateway, stop_gateway
from tests.payloads import finbox_expiry, finbox_upload

READER = "token-reader"
OPS = "token-ops"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


CONFIG = f"""
[sources.finbox]
provider = "finbox"

[grpc_limits]
max_filter_names = 50
max_filter_prefixes = 5

[clients.reader]
token_sha256 = "{sha(READER)}"
sources = ["*"]
permissions = ["read"]
max_watch_filter_entries = 80

[clients.ops]
token_sha256 = "{sha(OPS)}"
sources = ["*"]
permissions = ["admin"]
"""
AUTH = (("authorization", f"Bearer {READER}"),)


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    config = tmp_path / "statusgate.toml"
    config.write_text(CONFIG)
    settings = load_settings(
        config,
        http="127.0.0.1:0",
        grpc="127.0.0.1:0",
        api="127.0.0.1:0",
        store=f"sqlite:///{tmp_path / 'g.db'}",
    )
    running = await start_gateway(settings)
    try:
        yield running
    finally:
        await stop_gateway(running)


def names(n: int, prefix: str = "w") -> list[str]:
    return [f"sources/finbox/sessions/{prefix}{i}" for i in range(n)]


async def watch_error(gw: RunningGateway, status_filter: pb.StatusFilter) -> grpc.aio.AioRpcError:
    stream = gw.stub.WatchStatuses(pb.WatchStatusesRequest(filter=status_filter), metadata=AUTH)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async with asyncio.timeout(10):
            async for _ in stream:
                pass
    return raised.value


def reason(error: grpc.aio.AioRpcError) -> str:
    from google.rpc import error_details_pb2, status_pb2

    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            info = error_details_pb2.ErrorInfo()
            status.details[0].Unpack(info)
            return info.reason
    return ""


async def test_a_watch_filter_over_the_bounds_is_invalid_argument(gw: RunningGateway) -> None:
    error = await watch_error(gw, pb.StatusFilter(names=names(51)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(error) == "FILTER_TOO_LARGE"
    assert "at most 50" in (error.details() or "")
    prefixes = [f"sources/finbox/sessions/p{i}" for i in range(6)]
    error = await watch_error(gw, pb.StatusFilter(name_prefixes=prefixes))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_client_cannot_exceed_its_filter_entries_over_its_streams(
    gw: RunningGateway,
) -> None:
    first = gw.stub.WatchStatuses(
        pb.WatchStatusesRequest(filter=pb.StatusFilter(names=names(50, "a"))), metadata=AUTH
    )
    assert (await anext(aiter(first))).caught_up
    # 50 open + 31 would pass 80.
    error = await watch_error(gw, pb.StatusFilter(names=names(31, "b")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(error) == "FILTER_TOO_LARGE"
    first.cancel()
    # Once the first stream is gone, its entries are free again.
    async with asyncio.timeout(10):
        while True:
            again = gw.stub.WatchStatuses(
                pb.WatchStatusesRequest(filter=pb.StatusFilter(names=names(50, "c"))),
                metadata=AUTH,
            )
            try:
                assert (await anext(aiter(again))).caught_up
                again.cancel()
                break
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.05)


async def test_a_bounded_filter_still_matches_names_and_prefixes(gw: RunningGateway) -> None:
    by_names = pb.StatusFilter(names=[*names(40), "sources/finbox/sessions/hit"])
    by_prefix = pb.StatusFilter(name_prefixes=["sources/finbox/sessions/tree/"])
    streams = [
        gw.stub.WatchStatuses(pb.WatchStatusesRequest(filter=f), metadata=AUTH)
        for f in (by_names, by_prefix)
    ]
    for stream in streams:
        assert (await anext(aiter(stream))).caught_up
    await gw.post("finbox", finbox_expiry("miss"))
    await gw.post("finbox", finbox_expiry("hit"))
    await gw.post("finbox", finbox_upload("tree", ("a1", "COMPLETED")))
    got = []
    for stream in streams:
        async with asyncio.timeout(10):
            message = await anext(aiter(stream))
        got.append([e.status.name for e in message.events])
        stream.cancel()
    # The tree's own session is not below "tree/"; its account is.
    assert got == [["sources/finbox/sessions/hit"], ["sources/finbox/sessions/tree/accounts/a1"]]


def test_prepared_filter_matches_like_name_has_prefix() -> None:
    candidates = [
        "sources/a/sessions/1",
        "sources/a/sessions/10",
        "sources/a/sessions/1/accounts/x",
        "sources/b/sessions/1",
    ]
    prefixes = [
        "sources/",
        "sources/a",
        "sources/a/",
        "sources/a/sessions/1",
        "sources/a/sessions/1/",
        "sources/a/sess",
        "sources/a/sessions/1//",
    ]
    for prefix in prefixes:
        prepared = PreparedFilter(pb.StatusFilter(name_prefixes=[prefix]))
        for name in candidates:
            status = pb.Status(name=name, source=name.split("/")[1])
            assert prepared.matches(status) == name_has_prefix(name, prefix), (prefix, name)


async def test_list_statuses_refuses_too_many_prefixes_instead_of_store_unavailable(
    gw: RunningGateway,
) -> None:
    # Before the bound, 20,000 prefixes reached SQLite and came back as UNAVAILABLE.
    prefixes = [f"sources/finbox/sessions/p{i}" for i in range(20_000)]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gw.stub.ListStatuses(
            pb.ListStatusesRequest(filter=pb.StatusFilter(name_prefixes=prefixes)), metadata=AUTH
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(raised.value) == "FILTER_TOO_LARGE"
    within = await gw.stub.ListStatuses(
        pb.ListStatusesRequest(filter=pb.StatusFilter(name_prefixes=prefixes[:5])), metadata=AUTH
    )
    assert list(within.statuses) == []


def forged(request: pb.ListStatusesRequest | pb.ListStatusEventsRequest, position: object) -> str:
    raw = json.dumps({"p": position, "f": paging.fingerprint(request)}, allow_nan=True)
    return base64.urlsafe_b64encode(raw.encode("utf-8", "surrogatepass")).decode().rstrip("=")


@pytest.mark.parametrize(
    "position",
    [[1], {"a": 1}, float("inf"), 10**30, -1, True, "\ud800", "x" * 5000, None],
    ids=["list", "object", "inf", "30-digit", "negative", "bool", "surrogate", "long", "null"],
)
async def test_forged_page_tokens_are_invalid_argument(
    gw: RunningGateway, position: object
) -> None:
    await gw.post("finbox", finbox_expiry("s1"))
    events = pb.ListStatusEventsRequest(name="sources/finbox/sessions/s1")
    listing = pb.ListStatusesRequest(parent="sources/finbox")
    for request in (events, listing):
        request.page_token = forged(request, position)
        call = (
            gw.stub.ListStatusEvents
            if isinstance(request, pb.ListStatusEventsRequest)
            else (gw.stub.ListStatuses)
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(request, metadata=AUTH)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert "Error" not in (raised.value.details() or "")


@pytest.mark.parametrize("token", ["[1]", '{"a":1}', "1e999", "1" * 30, "%%%", "é"])
async def test_garbage_page_tokens_are_invalid_argument(gw: RunningGateway, token: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gw.stub.ListStatuses(
            pb.ListStatusesRequest(parent="sources/finbox", page_token=token), metadata=AUTH
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_absurd_max_staleness_is_invalid_argument(gw: RunningGateway) -> None:
    request = pb.PollStatusesRequest(
        names=["sources/finbox/sessions/s1"], max_staleness=duration_pb2.Duration(seconds=2**62)
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gw.stub.PollStatuses(request, metadata=(("authorization", f"Bearer {OPS}"),))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_7000_character_name_is_invalid_argument_with_a_short_message(
    gw: RunningGateway,
) -> None:
    name = "sources/finbox/sessions/" + "x" * 7000
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gw.stub.GetStatus(pb.GetStatusRequest(name=name), metadata=AUTH)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(raised.value.details() or "") < 300
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gw.stub.ListStatuses(
            pb.ListStatusesRequest(filter=pb.StatusFilter(name_prefixes=["x" * 7000])),
            metadata=AUTH,
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(raised.value.details() or "") < 300

"""``statusgate replay``: a mapping fix recovers deliveries that arrived before it."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import pytest

from statusgate.cli import main
from statusgate.config import SourceConfig
from statusgate.providers import finbox
from statusgate.providers.base import JSONObject, UnknownShapeError
from statusgate.providers.registry import PROVIDERS, Registry
from statusgate.store.base import DeliveryVerdict
from statusgate.v1 import status_pb2 as pb
from tests.conftest import gateway_settings, start_gateway, stop_gateway
from tests.payloads import finbox_expiry


class BeforeTheFix:
    """FinBox's adapter as it was before it learnt the expiry notification."""

    provider: ClassVar[pb.Provider.ValueType] = pb.PROVIDER_FINBOX

    def normalize(self, source: SourceConfig, payload: JSONObject) -> list[pb.Status]:
        if payload.get("event_name") == "SESSION_EXPIRY_NOTIFICATION":
            raise UnknownShapeError("unknown event_name")
        return finbox.SPEC.adapter.normalize(source, payload)


# The gateway as it ran before the fix: the same providers, FinBox's adapter older.
BEFORE_THE_FIX = Registry(
    dataclasses.replace(spec, adapter=BeforeTheFix()) if spec is finbox.SPEC else spec
    for spec in PROVIDERS
)


def test_replay_maps_what_arrived_before_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = gateway_settings(tmp_path)

    async def receive_before_the_fix() -> list[Any]:
        gw = await start_gateway(settings, registry=BEFORE_THE_FIX)
        try:
            answers = [await gw.post("finbox", finbox_expiry(f"x{i}")) for i in range(3)]
            answers.append(await gw.post("finbox", b"not json"))
            return answers
        finally:
            await stop_gateway(gw)

    answers = asyncio.run(receive_before_the_fix())
    assert [code for code, _ in answers] == [202, 202, 202, 400]

    assert main(["replay", "--store", settings.store, "--source", "finbox"]) == 0
    out = capsys.readouterr().out
    assert "mapped 3 (3 events)" in out and "still rejected 1" in out

    async def inspect() -> tuple[list[pb.StatusEvent], list[Any]]:
        gw = await start_gateway(settings)
        try:
            history = await gw.stub.ListStatusEvents(
                pb.ListStatusEventsRequest(name="sources/finbox/sessions/x0")
            )
            mapped = await gw.gateway.store.list_deliveries([DeliveryVerdict.MAPPED])
            return list(history.events), mapped
        finally:
            await stop_gateway(gw)

    events, mapped = asyncio.run(inspect())
    assert [(e.origin, e.status.state) for e in events] == [(pb.ORIGIN_REPLAY, pb.STATE_EXPIRED)]
    assert events[0].delivery_id == answers[0][1]["delivery_id"]
    assert len(mapped) == 3

    # Replaying again finds nothing left to map.
    assert main(["replay", "--store", settings.store]) == 0
    assert "examined 1: mapped 0" in capsys.readouterr().out


def test_sqlite_store_refuses_a_second_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = gateway_settings(tmp_path)

    async def replay_while_serving() -> int:
        gw = await start_gateway(settings)
        try:
            return await asyncio.to_thread(main, ["replay", "--store", settings.store])
        finally:
            await stop_gateway(gw)

    assert asyncio.run(replay_while_serving()) == 1
    assert "in use by another statusgate process" in capsys.readouterr().err

"""A new provider is its package and one registry line: a throw-away one (in
``tests/providers/throwaway``) registered with that one line goes through the shared
contract tests, a real front door and ``check-config`` like the built-in ones."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from statusgate.config_check import check_config
from statusgate.providers.registry import PROVIDERS
from statusgate.store.base import DeliveryVerdict
from statusgate.v1 import status_pb2 as pb
from tests.conftest import gateway_settings, start_gateway, stop_gateway
from tests.providers import throwaway
from tests.providers.test_fixtures import check_fixture, fixture_files

# The one line.
REGISTRY = PROVIDERS.with_providers(throwaway.SPEC)


@pytest.mark.parametrize(
    "path", [path for spec, path in fixture_files(REGISTRY) if spec is throwaway.SPEC]
)
def test_its_fixtures_pass_the_contract(path: Path) -> None:
    check_fixture(throwaway.SPEC, path)


async def test_the_front_door_takes_its_webhooks_on_its_paths(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, registry=REGISTRY)
    assert settings.sources["parcels-eu"].provider == "parcels"
    gw = await start_gateway(settings, registry=REGISTRY)
    try:
        code, answer = await gw.post("parcels-eu/events", {"parcel": "p-9", "status": "delivered"})
        assert (code, answer) == (200, {"ok": True, "status": 200})
        status = await gw.stub.GetStatus(
            pb.GetStatusRequest(name="sources/parcels-eu/payments/p-9")
        )
        assert (status.state, status.terminal) == (pb.STATE_COMPLETED, True)
        # The answers are the provider's shape, refusals included.
        assert await gw.post("parcels-eu/events", {"parcel": "p-9", "status": "x"}) == (
            400,
            {"ok": False, "status": 400},
        )
        # Only the paths its spec names: not the source's own URL, nor any other.
        assert (await gw.post("parcels-eu", {"parcel": "p-1", "status": "moving"}))[0] == 404
        assert (await gw.post("parcels-eu/other", {"parcel": "p-1"}))[0] == 404
        # The built-in providers are untouched: theirs is the root path only.
        assert (await gw.post("finbox/events", {}))[0] == 404
    finally:
        await stop_gateway(gw)


async def test_its_own_delivery_ids_and_front_door_checks(tmp_path: Path) -> None:
    gw = await start_gateway(gateway_settings(tmp_path, registry=REGISTRY), registry=REGISTRY)
    try:
        event = {"parcel": "p-1", "status": "moving", "event": "e-1"}
        assert await gw.post("parcels-eu/events", event) == (200, {"ok": True, "status": 200})
        # The same delivery again, spaced differently: a copy, applied once.
        assert (await gw.post("parcels-eu/events", json.dumps(event, indent=1).encode()))[0] == 200
        events = await gw.gateway.store.list_events("sources/parcels-eu/payments/p-1")
        assert len(events) == 1
        # Its id with other content: a conflict, kept as rejected; nothing applied.
        other = {**event, "status": "lost"}
        assert await gw.post("parcels-eu/events", other) == (409, {"ok": False, "status": 409})
        status = await gw.stub.GetStatus(
            pb.GetStatusRequest(name="sources/parcels-eu/payments/p-1")
        )
        assert status.state == pb.STATE_IN_PROGRESS
        # Its screen: refused with its own code, kept as rejected.
        stale = {"parcel": "p-2", "status": "moving", "sent_at": 1}
        assert await gw.post("parcels-eu/events", stale) == (
            400,
            {"ok": False, "status": 400, "code": "stale"},
        )
        rejected = await gw.gateway.store.list_deliveries(
            [DeliveryVerdict.REJECTED], source="parcels-eu"
        )
        assert [json.loads(d.body) for d in rejected] == [other, stale]
        assert rejected[0].idempotency_key == "e-1"
    finally:
        await stop_gateway(gw)


def test_check_config_knows_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "statusgate.toml"
    path.write_text(
        textwrap.dedent(
            """
            [sources.parcels-eu]
            provider = "parcels"
            api = { api_key_env = "PARCELS_API_KEY" }
            [sources.nope]
            provider = "parcel"
            """
        )
    )
    problems = check_config(path, REGISTRY)
    assert problems == [
        "sources.nope.provider: Input tag 'parcel' found using 'provider' does not match any "
        "of the expected tags: 'finbox', 'banqware', 'setu', 'rebit', 'parcels'",
        # The valid source is built all the same: its problem is not left for later.
        "sources.parcels-eu.api.api_key_env: the environment variable this setting names "
        "is not set",
    ]
    path.write_text(path.read_text().split("[sources.nope]")[0])
    assert check_config(path, REGISTRY) == [
        "sources.parcels-eu.api.api_key_env: the environment variable this setting names is not set"
    ]
    monkeypatch.setenv("PARCELS_API_KEY", "k")
    assert check_config(path, REGISTRY) == []
    # Without the registry line, the provider does not exist.
    assert check_config(path)[0].startswith("sources.parcels-eu.provider: Input tag 'parcels'")

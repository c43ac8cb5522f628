"""A real gateway whose sources poll the fake providers (tests/fakes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from statusgate.config import Settings
from tests.conftest import RunningGateway, gateway_settings, start_gateway, stop_gateway
from tests.fakes.banqware import FakeBanqware
from tests.fakes.finbox import FakeFinbox
from tests.fakes.harness import banqware_api, finbox_api, set_env, setu_api
from tests.fakes.setu import FakeSetu


@dataclass
class Fakes:
    finbox: FakeFinbox
    setu: FakeSetu
    banqware: FakeBanqware


@pytest.fixture
async def fakes(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fakes]:
    set_env(monkeypatch)
    running = Fakes(FakeFinbox(), FakeSetu(), FakeBanqware())
    for fake in (running.finbox, running.setu, running.banqware):
        await fake.start()
    yield running
    for fake in (running.finbox, running.setu, running.banqware):
        await fake.close()


def poll_settings(
    tmp_path: Path,
    fakes: Fakes,
    *,
    api: dict[str, Any] | None = None,
    poll: dict[str, Any] | None = None,
    extra_sources: dict[str, Any] | None = None,
    **overrides: Any,
) -> Settings:
    """Sources ``finbox``, ``setu`` and ``banqware`` on the fakes, plus ``bare`` (FinBox
    without API credentials) and ``extra_sources``. The reconciler is off unless
    ``poll`` turns it on."""
    api = api or {}
    schedule = poll or {"enabled": False}
    sources = {
        "finbox": {"provider": "finbox", "api": finbox_api(fakes.finbox, **api), "poll": schedule},
        "setu": {"provider": "setu", "api": setu_api(fakes.setu, **api), "poll": schedule},
        "banqware": {
            "provider": "banqware",
            "api": banqware_api(fakes.banqware, **api),
            "poll": schedule,
        },
        "bare": {"provider": "finbox", "poll": schedule},
        **(extra_sources or {}),
    }
    return gateway_settings(tmp_path, sources=sources, **overrides)


@pytest.fixture
async def pgw(tmp_path: Path, fakes: Fakes) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(poll_settings(tmp_path, fakes))
    try:
        yield running
    finally:
        await stop_gateway(running)

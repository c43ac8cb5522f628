"""Fixtures of the provider tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import start_gateway, stop_gateway
from tests.fakes.harness import set_env
from tests.fakes.rebit import FakeRebitAA
from tests.providers.rebit_support import AA_API_KEY, ReBIT, rebit_settings


@pytest.fixture
async def rebit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ReBIT]:
    set_env(monkeypatch)
    monkeypatch.setenv("TEST_AA_API_KEY", AA_API_KEY)
    aa = FakeRebitAA()
    await aa.start()
    gw = await start_gateway(rebit_settings(tmp_path, aa))
    try:
        yield ReBIT(gw, aa)
    finally:
        await stop_gateway(gw)
        await aa.close()

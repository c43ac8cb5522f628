"""The gRPC listener: one gateway per port."""

from __future__ import annotations

from pathlib import Path

import pytest

from statusgate.app import Gateway, StartupError
from tests.conftest import gateway_settings, start_gateway, stop_gateway


async def test_a_second_gateway_cannot_share_the_grpc_port(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    first = await start_gateway(gateway_settings(tmp_path / "a"))
    try:
        second = Gateway(gateway_settings(tmp_path / "b", grpc=f"127.0.0.1:{first.ports.grpc}"))
        busy = r"cannot listen for gRPC on 127\.0\.0\.1:\d+: the address is in use"
        with pytest.raises(StartupError, match=busy):
            await second.start()
        # What the failed start opened is closed again: its HTTP port is free.
        assert not await second.ready()
        # The first gateway keeps every client.
        assert await first.gateway.ready()
    finally:
        await stop_gateway(first)

"""The API listener: one gateway per port, a clear start-up failure when it is taken,
and the gRPC door's TLS options (mutual TLS included)."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest

from statusgate.app import Gateway, StartupError, load_settings
from tests.conftest import gateway_settings, start_gateway, stop_gateway
from tests.fakes.tls import make_pki


async def test_a_busy_api_port_fails_start_up_in_one_clear_line(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    first = await start_gateway(gateway_settings(tmp_path / "a"))
    try:
        second = Gateway(gateway_settings(tmp_path / "b", api=f"127.0.0.1:{first.ports.api}"))
        with pytest.raises(StartupError, match=r"^cannot listen for API on 127\.0\.0\.1:\d+: "):
            await second.start()
        assert not await second.ready()
        assert await first.gateway.ready()
    finally:
        await stop_gateway(first)


async def test_mutual_tls_on_the_api_listener(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    config = tmp_path / "statusgate.toml"
    config.write_text(
        f'[api_tls]\ncert_file = "{pki.server_cert}"\nkey_file = "{pki.server_key}"\n'
        f'client_ca_file = "{pki.ca}"\n'
    )
    settings = load_settings(
        config,
        http="127.0.0.1:0",
        grpc="127.0.0.1:0",
        api="127.0.0.1:0",
        store=f"sqlite:///{tmp_path / 'g.db'}",
    )
    gw = await start_gateway(settings)
    url = f"https://127.0.0.1:{gw.ports.api}/v1/statuses"
    try:
        trusted = ssl.create_default_context(cafile=pki.ca)
        trusted.load_cert_chain(pki.client_cert, pki.client_key)
        async with aiohttp.ClientSession() as http:
            async with http.get(url, ssl=trusted) as response:
                assert response.status == 200
            without_certificate = ssl.create_default_context(cafile=pki.ca)
            with pytest.raises(aiohttp.ClientError):
                async with http.get(url, ssl=without_certificate) as response:
                    await response.read()
    finally:
        await stop_gateway(gw)


async def test_unusable_tls_files_fail_start_up_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "statusgate.toml"
    config.write_text('[api_tls]\ncert_file = "missing.pem"\nkey_file = "missing.key"\n')
    settings = load_settings(
        config,
        http="127.0.0.1:0",
        grpc="127.0.0.1:0",
        api="127.0.0.1:0",
        store=f"sqlite:///{tmp_path / 'g.db'}",
    )
    gateway = Gateway(settings)
    with pytest.raises(StartupError, match=r"^cannot use api_tls: .*No such file"):
        await gateway.start()
    assert not await gateway.ready()

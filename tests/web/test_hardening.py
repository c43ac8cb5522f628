"""The front door against careless and hostile clients, over raw sockets: deep JSON,
corrupt gzip, unauthenticated bodies, slow and idle connections, disconnects mid-body,
and SIGTERM with a webhook half received."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from statusgate.app import load_settings
from statusgate.store.base import DeliveryVerdict
from tests.conftest import RunningGateway, start_gateway, stop_gateway
from tests.payloads import finbox_expiry

SECRET = "front-door-secret-1"


def config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "statusgate.toml"
    path.write_text(
        '[sources.finbox]\nprovider = "finbox"\n'
        '[sources.open]\nprovider = "finbox"\n'
        '[sources.finbox.auth]\nmethod = "shared_secret"\nsecret_env = "DOOR_SECRET"\n' + extra
    )
    return path


async def start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str = "", **overrides: object
) -> RunningGateway:
    monkeypatch.setenv("DOOR_SECRET", SECRET)
    settings = load_settings(
        config(tmp_path, extra),
        http="127.0.0.1:0",
        grpc="127.0.0.1:0",
        api="127.0.0.1:0",
        store=f"sqlite:///{tmp_path / 'g.db'}",
        **overrides,
    )
    return await start_gateway(settings)


@pytest.fixture
async def gw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningGateway]:
    running = await start(
        tmp_path,
        monkeypatch,
        "[front_door]\nheader_timeout_seconds = 0.5\nbody_timeout_seconds = 0.5\n"
        "keepalive_timeout_seconds = 1\nmax_connections_per_peer = 40\n",
    )
    try:
        yield running
    finally:
        await stop_gateway(running)


def head(source: str, length: int, headers: dict[str, str] | None = None) -> bytes:
    lines = [
        f"POST /webhooks/{source} HTTP/1.1",
        "Host: x",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def exchange(gw: RunningGateway, data: bytes, timeout: float = 10) -> tuple[int, bytes]:
    """Send ``data`` on a fresh connection; the status and body of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.ports.http)
    writer.write(data)
    await writer.drain()
    try:
        async with asyncio.timeout(timeout):
            status_line = await reader.readline()
            headers = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                key, _, value = line.decode().partition(":")
                headers[key.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
    finally:
        writer.close()
    return int(status_line.split()[1]), body


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            return await reader.read() == b"" or True
    except TimeoutError:
        return False


AUTH = {"x-secret-key": SECRET}


async def test_deeply_nested_json_is_400_and_kept_as_rejected(gw: RunningGateway) -> None:
    for body in (b"[" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
        status, answer = await exchange(gw, head("finbox", len(body), AUTH) + body)
        assert status == 400, answer
        assert "deeper than 64" in json.loads(answer)["error"]["message"]
    rejected = await gw.gateway.store.list_deliveries([DeliveryVerdict.REJECTED])
    assert len(rejected) == 2


async def test_json_at_the_depth_limit_still_maps(gw: RunningGateway) -> None:
    payload = finbox_expiry("deep")
    nested: object = "x"
    for _ in range(60):
        nested = [nested]
    payload["extra"] = nested
    body = json.dumps(payload).encode()
    status, _ = await exchange(gw, head("finbox", len(body), AUTH) + body)
    assert status == 200


async def test_invalid_gzip_is_400_kept_and_never_an_error_line(
    gw: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    body = b"\x1f\x8b\x08\x00garbage-not-gzip"
    with caplog.at_level(logging.DEBUG):
        status, answer = await exchange(
            gw, head("finbox", len(body), {**AUTH, "Content-Encoding": "gzip"}) + body
        )
    assert status == 400, answer
    assert "gzip" in json.loads(answer)["error"]["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    rejected = await gw.gateway.store.list_deliveries([DeliveryVerdict.REJECTED])
    assert [d.body for d in rejected] == [body]
    # Before authentication, a corrupt body is refused like any other: 401.
    status, _ = await exchange(gw, head("finbox", len(body), {"Content-Encoding": "gzip"}) + body)
    assert status == 401


async def test_valid_gzip_maps_and_a_gzip_bomb_is_413(gw: RunningGateway) -> None:
    body = gzip.compress(json.dumps(finbox_expiry("gz")).encode())
    status, _ = await exchange(
        gw, head("finbox", len(body), {**AUTH, "Content-Encoding": "gzip"}) + body
    )
    assert status == 200
    bomb = gzip.compress(b" " * (8 * 1024 * 1024))
    status, _ = await exchange(
        gw, head("finbox", len(bomb), {**AUTH, "Content-Encoding": "gzip"}) + bomb
    )
    assert status == 413
    status, _ = await exchange(gw, head("finbox", 2, {**AUTH, "Content-Encoding": "br"}) + b"{}")
    assert status == 415


async def test_a_refused_request_is_answered_before_its_body_is_sent(gw: RunningGateway) -> None:
    # Only the head: a shared-secret source is refused without waiting for the body.
    status, _ = await exchange(gw, head("finbox", 1024 * 1024), timeout=5)
    assert status == 401
    status, _ = await exchange(gw, head("finbox", 1024 * 1024, {"x-secret-key": "no"}), timeout=5)
    assert status == 401


async def test_a_slow_body_gets_408(gw: RunningGateway) -> None:
    status, answer = await exchange(gw, head("finbox", 100, AUTH) + b'{"a":', timeout=5)
    assert status == 408, answer


async def test_a_trickled_head_is_cut_off(gw: RunningGateway) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.ports.http)
    writer.write(b"POST /webhooks/finbox HTTP/1.1\r\n")

    async def trickle() -> None:
        for _ in range(100):
            writer.write(b"X-a: b\r\n")
            await asyncio.sleep(0.05)

    trickling = asyncio.ensure_future(trickle())
    try:
        assert await closed_within(reader, 5)
    finally:
        trickling.cancel()
        writer.close()


async def test_idle_connections_are_closed_and_shed_for_a_legitimate_webhook(
    gw: RunningGateway,
) -> None:
    idle = [await asyncio.open_connection("127.0.0.1", gw.ports.http) for _ in range(40)]
    await asyncio.sleep(0.1)
    # The 41st connection from this peer sheds the oldest idle one; the webhook gets in.
    body = json.dumps(finbox_expiry("legit")).encode()
    status, _ = await exchange(gw, head("finbox", len(body), AUTH) + body, timeout=5)
    assert status == 200
    assert gw.gateway._guard is not None and gw.gateway._guard.shed >= 1
    # The idle keep-alive timeout (1 s) closes the rest.
    assert all([await closed_within(r, 5) for r, _ in idle])
    for _, writer in idle:
        writer.close()


async def test_a_disconnect_mid_body_is_one_debug_line(
    gw: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        _, writer = await asyncio.open_connection("127.0.0.1", gw.ports.http)
        writer.write(head("finbox", 1000, AUTH) + b'{"event_name": "SECRET-BODY')
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.transport.abort()
        await asyncio.sleep(0.3)
    mine = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(mine) == 1 and mine[0].levelno == logging.DEBUG
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "SECRET-BODY" not in caplog.text


async def test_sigterm_finishes_a_half_received_webhook_and_ends_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = await start(tmp_path, monkeypatch, shutdown_grace_seconds=20)
    body = json.dumps(finbox_expiry("half")).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.ports.http)
    writer.write(head("finbox", len(body), AUTH) + body[:10])
    await writer.drain()
    idle = await asyncio.open_connection("127.0.0.1", gw.ports.http)
    await asyncio.sleep(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    stopping = asyncio.ensure_future(stop_gateway(gw))
    await asyncio.sleep(0.05)
    # The idle keep-alive connection is closed at once.
    assert await closed_within(idle[0], 2)
    writer.write(body[10:])
    await writer.drain()
    async with asyncio.timeout(10):
        status_line = await reader.readline()
    assert b" 200 " in status_line
    await stopping
    # Nothing was in flight any more: no waiting for the 20 s grace.
    assert loop.time() - started < 10
    writer.close()
    idle[1].close()

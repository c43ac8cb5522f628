from __future__ import annotations

import asyncio
from pathlib import Path

from statusgate.app import load_settings
from statusgate.config import RateLimit
from statusgate.web.ratelimit import TokenBucket, retry_after_header
from tests.conftest import start_gateway, stop_gateway
from tests.payloads import finbox_expiry


def test_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(RateLimit(per_second=2, burst=3), clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [0, 0, 0]
    assert bucket.take() == 0.5  # the next token arrives in half a second
    now[0] = 0.5
    assert bucket.take() == 0
    assert retry_after_header(0.01) == "1" and retry_after_header(2.2) == "3"


async def test_a_flooding_source_gets_429_and_slows_no_other(tmp_path: Path) -> None:
    config = tmp_path / "statusgate.toml"
    config.write_text(
        '[sources.finbox]\nprovider = "finbox"\n'
        "[sources.finbox.rate_limit]\nper_second = 1\nburst = 5\n"
        '[sources.finbox-other]\nprovider = "finbox"\n'
    )
    settings = load_settings(
        config,
        http="127.0.0.1:0",
        grpc="127.0.0.1:0",
        api="127.0.0.1:0",
        store=f"sqlite:///{tmp_path / 'g.db'}",
    )
    gw = await start_gateway(settings)
    try:
        flood = await asyncio.gather(
            *(gw.post("finbox", finbox_expiry(f"f{i}")) for i in range(20))
        )
        calm = await asyncio.gather(
            *(gw.post("finbox-other", finbox_expiry(f"o{i}")) for i in range(20))
        )
        codes = [code for code, _ in flood]
        assert codes.count(200) == 5 and codes.count(429) == 15
        assert all(code == 200 for code, _ in calm)
        async with gw.http.post(gw.url("/webhooks/finbox"), json=finbox_expiry("x")) as response:
            assert response.status == 429
            assert int(response.headers["Retry-After"]) >= 1
    finally:
        await stop_gateway(gw)

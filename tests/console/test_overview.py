"""The overview's panel of a source that polls a provider: what its circuit breaker is
doing, the reconciler's backlog and its wait, poll errors and auth failures of the last
hour, read from the poll service, the store and the gateway's own counts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from statusgate.v1 import status_pb2 as pb
from tests.conftest import gateway_settings, start_gateway, stop_gateway
from tests.console.helpers import Browser
from tests.fakes.harness import finbox_api
from tests.fakes.server import reply
from tests.payloads import finbox_upload
from tests.poll.conftest import Fakes


async def test_breaker_backlog_poll_errors_and_auth_failures(
    tmp_path: Path,
    fakes: Fakes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONSOLE_TEST_SECRET", "s3cret-value")
    api = finbox_api(fakes.finbox, retries=0, breaker_failures=2, breaker_cooldown_seconds=600)
    sources = {
        # The reconciler's first tick finds nothing; the next one is an hour away.
        "finbox": {"provider": "finbox", "api": api, "poll": {"quiet_seconds": 0.2}},
        "locked": {
            "provider": "finbox",
            "auth": {"method": "shared_secret", "secret_env": "CONSOLE_TEST_SECRET"},
        },
    }
    settings = gateway_settings(tmp_path, sources=sources, reconciler_tick_seconds=3600)
    gw = await start_gateway(settings)
    browser = Browser(gw)
    try:
        assert (await gw.post("finbox", finbox_upload("s1", ("a1", "COMPLETED"))))[0] == 200
        assert (await gw.post("locked", finbox_upload("s2"), {"x-secret-key": "wrong"}))[0] == 401
        fakes.finbox.fail_all(reply(503, {"error": {"code": "DOWN", "message": "maintenance"}}))
        for _ in range(2):
            await gw.stub.PollStatuses(pb.PollStatusesRequest(names=["sources/finbox/sessions/s1"]))
        await asyncio.sleep(0.3)  # quiet: the session and its account are due a poll

        _, text, _ = await browser.get("/console/")
        finbox = text.split('id="source-1"')[1].split("</section>")[0]
        locked = text.split('id="source-2"')[1].split("</section>")[0]
        assert '<dt>Poll errors</dt>\n    <dd class="alarm">2</dd>' in finbox
        assert '<span class="badge bad">open</span>' in finbox and "trial call in" in finbox
        assert "2 failed calls in a row" in finbox
        assert "2 due, the longest waiting for" in finbox
        assert '<dt>Auth failures</dt>\n    <dd class="alarm">1</dd>' in locked
        assert "<dt>Auth failures</dt>\n    <dd>0</dd>" in finbox
        # Nothing was stored for the refused webhook.
        assert '<span class="badge good">mapped</span> <span class="count">0</span>' in locked
        assert "set <code>api.api_key_env</code>" in locked  # it cannot poll, and says why
    finally:
        await browser.close()
        await stop_gateway(gw)

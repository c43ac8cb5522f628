"""What polling failures leave in the log: one line per change of state (credentials
refused / accepted again, provider down / answering again), never one per call, and
never a credential."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from statusgate.v1 import status_pb2 as pb
from tests.conftest import RunningGateway, start_gateway, stop_gateway
from tests.fakes import finbox
from tests.fakes.server import reply
from tests.poll.conftest import Fakes, poll_settings
from tests.poll.test_poll_statuses import poll, reason

SESSION = "sources/finbox/sessions/s1"


def lines(caplog: pytest.LogCaptureFixture, *words: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if all(w in r.getMessage() for w in words)]


def no_credentials_in(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        text = record.getMessage()
        assert finbox.API_KEY not in text and finbox.SERVER_HASH not in text, text


async def polls(gw: RunningGateway, n: int) -> list[pb.PollResult]:
    results = []
    for _ in range(n):
        [result] = await poll(gw, SESSION)
        results.append(result)
    return results


@pytest.fixture
async def gw(tmp_path: Path, fakes: Fakes) -> AsyncIterator[RunningGateway]:
    api = {"retries": 0, "breaker_failures": 2, "breaker_cooldown_seconds": 0.3}
    running = await start_gateway(poll_settings(tmp_path, fakes, api=api))
    fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
    try:
        yield running
    finally:
        await stop_gateway(running)


async def test_refused_credentials_are_logged_once_per_change(
    gw: RunningGateway, fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="statusgate")
    denied = {"error": {"code": "ACCESS_DENIED", "message": "access denied"}}
    fakes.finbox.fail_all(reply(403, denied))
    results = await polls(gw, 3)
    assert all(reason(r) == "UPSTREAM_AUTH_FAILED" for r in results)
    [refused] = lines(caplog, "refused the gateway's credentials")
    assert refused.levelno == logging.WARNING
    assert "FinBox (finbox)" in refused.getMessage() and "ACCESS_DENIED" in refused.getMessage()

    fakes.finbox.fail_all(None)
    assert not any(r.HasField("error") for r in await polls(gw, 2))
    [accepted] = lines(caplog, "accepts the gateway's credentials again")
    assert accepted.levelno == logging.INFO
    assert len(lines(caplog, "refused the gateway's credentials")) == 1
    no_credentials_in(caplog)


async def test_an_outage_is_logged_when_it_starts_and_when_it_ends(
    gw: RunningGateway, fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="statusgate")
    fakes.finbox.fail_all(reply(503, {"error": {"code": "DOWN", "message": "maintenance"}}))
    results = await polls(gw, 4)
    assert all(reason(r) == "UPSTREAM_UNAVAILABLE" for r in results)
    [down] = lines(caplog, "failed 2 times in a row")
    assert down.levelno == logging.WARNING and "maintenance" in down.getMessage()

    # A failed trial after the cool-down keeps it down without a new line.
    async with asyncio.timeout(20):
        while gw.gateway.polling.breaker_open("finbox"):
            await asyncio.sleep(0.05)
    [trial] = await polls(gw, 1)
    assert reason(trial) == "UPSTREAM_UNAVAILABLE"
    assert len(lines(caplog, "times in a row")) == 1

    fakes.finbox.fail_all(None)
    async with asyncio.timeout(20):
        while gw.gateway.polling.breaker_open("finbox"):
            await asyncio.sleep(0.05)
    assert not any(r.HasField("error") for r in await polls(gw, 2))
    [up] = lines(caplog, "answers again")
    assert up.levelno == logging.INFO
    assert len(lines(caplog, "times in a row")) == 1
    no_credentials_in(caplog)

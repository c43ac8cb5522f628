"""Sources and pollers pointed at the fake providers, for client and gateway tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from statusgate.core.names import ResourceName, parse_name
from statusgate.providers.banqware import BanqwareSource
from statusgate.providers.finbox import FinboxSource
from statusgate.providers.polling import Poller
from statusgate.providers.rebit import RebitSource
from statusgate.providers.registry import PROVIDERS
from statusgate.providers.setu import SetuSource
from tests.fakes import banqware, finbox, rebit, setu
from tests.fakes.server import FakeServer

# Environment variables holding the fake providers' credentials.
ENV = {
    "TEST_FINBOX_API_KEY": finbox.API_KEY,
    "TEST_FINBOX_SERVER_HASH": finbox.SERVER_HASH,
    "TEST_SETU_CLIENT_ID": setu.CLIENT_ID,
    "TEST_SETU_CLIENT_SECRET": setu.CLIENT_SECRET,
    "TEST_SETU_PRODUCT_INSTANCE_ID": setu.PRODUCT_INSTANCE_ID,
    "TEST_BANQWARE_KEY": banqware.API_KEY,
    "TEST_REBIT_CLIENT_ID": rebit.CLIENT_ID,
    "TEST_REBIT_CLIENT_SECRET": rebit.CLIENT_SECRET,
}

# Fast retries, so failure cases run in milliseconds.
FAST_API: dict[str, Any] = {
    "retries": 2,
    "retry_backoff_seconds": 0.01,
    "timeout_seconds": 5,
    "breaker_failures": 1000,
}


def set_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def finbox_api(fake: finbox.FakeFinbox, **api: Any) -> dict[str, Any]:
    return {
        "base_url": fake.url,
        "api_key_env": "TEST_FINBOX_API_KEY",
        "server_hash_env": "TEST_FINBOX_SERVER_HASH",
        **FAST_API,
        **api,
    }


def setu_api(fake: setu.FakeSetu, **api: Any) -> dict[str, Any]:
    return {
        "base_url": fake.url,
        "login_url": fake.login_url,
        "client_id_env": "TEST_SETU_CLIENT_ID",
        "client_secret_env": "TEST_SETU_CLIENT_SECRET",
        "product_instance_id_env": "TEST_SETU_PRODUCT_INSTANCE_ID",
        **FAST_API,
        **api,
    }


def banqware_api(fake: banqware.FakeBanqware, **api: Any) -> dict[str, Any]:
    return {
        "base_url": fake.url,
        "headers_env": {"x-api-key": "TEST_BANQWARE_KEY"},
        **FAST_API,
        **api,
    }


def rebit_api(fake: rebit.FakeRebitAA, **api: Any) -> dict[str, Any]:
    return {
        "base_url": fake.url,
        "token_url": fake.token_url,
        "client_id_env": "TEST_REBIT_CLIENT_ID",
        "client_secret_env": "TEST_REBIT_CLIENT_SECRET",
        **FAST_API,
        **api,
    }


def rebit_source(fake: rebit.FakeRebitAA, **api: Any) -> dict[str, Any]:
    """A ReBIT source on ``fake`` (without webhook authentication), as config data."""
    return {"provider": "rebit", "api": rebit_api(fake, **api), "signing": fake.signing()}


@dataclass
class Harness:
    """One provider's client against its fake, ready to poll ``name``."""

    provider: str
    fake: FakeServer
    poller: Poller
    name: ResourceName
    # The endpoints one poll of ``name`` calls concurrently (each fails alike).
    endpoints: tuple[str, ...]
    envelope: Callable[[int, str, str], dict[str, Any]]
    sleeps: list[float]


Sleep = Callable[[float], Awaitable[None]]


@dataclass
class _Started:
    fake: FakeServer
    source: Any
    name: str
    endpoints: tuple[str, ...]
    envelope: Callable[[int, str, str], dict[str, Any]]


async def _finbox(api: dict[str, Any]) -> _Started:
    fake = finbox.FakeFinbox()
    await fake.start()
    fake.uploaded("s1", ("a1", "COMPLETED"))
    fake.processing("s1")
    source = FinboxSource(id="fb", provider="finbox", api=finbox_api(fake, **api))
    return _Started(
        fake, source, "sources/fb/sessions/s1", ("upload_status", "progress"), finbox.envelope
    )


async def _setu(api: dict[str, Any]) -> _Started:
    fake = setu.FakeSetu()
    await fake.start()
    fake.consent("c1", "ACTIVE", ("ds1", "COMPLETED"))
    source = SetuSource(id="st", provider="setu", api=setu_api(fake, **api))
    return _Started(
        fake, source, "sources/st/consents/c1", ("consent", "consent_sessions"), setu.envelope
    )


async def _banqware(api: dict[str, Any]) -> _Started:
    fake = banqware.FakeBanqware()
    await fake.start()
    fake.session("b1", "Accounts", "InProgress", count="2/3")
    source = BanqwareSource(id="bq", provider="banqware", api=banqware_api(fake, **api))
    return _Started(
        fake, source, "sources/bq/sessions/b1", ("status", "details"), banqware.envelope
    )


async def _rebit(api: dict[str, Any]) -> _Started:
    fake = rebit.FakeRebitAA()
    await fake.start()
    fake.consent("h1", "READY", "c1")
    source = RebitSource.model_validate({"id": "rb", **rebit_source(fake, **api)})
    return _Started(fake, source, "sources/rb/consents/h1", ("consent_handle",), rebit.envelope)


# Provider name -> its fake API with one subject to poll. Every registered provider has
# one (tests/providers/test_client_failures.py checks), so the failure table covers it.
FAKES: dict[str, Callable[[dict[str, Any]], Awaitable[_Started]]] = {
    "finbox": _finbox,
    "setu": _setu,
    "banqware": _banqware,
    "rebit": _rebit,
}


async def start_harness(provider: str, **api: Any) -> Harness:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)  # recorded, not waited: Retry-After: 3600 costs nothing

    started = await FAKES[provider](api)
    source = started.source
    poller = PROVIDERS.build_pollers({source.id: source}, sleep=sleep)[source.id]
    return Harness(
        provider,
        started.fake,
        poller,
        parse_name(started.name),
        started.endpoints,
        started.envelope,
        sleeps,
    )


async def stop_harness(harness: Harness) -> None:
    await harness.poller.close()
    await harness.fake.close()

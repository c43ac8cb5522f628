"""``statusgate register-webhook``: FinBox through its API, Setu and banqware by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from statusgate.app import load_settings
from statusgate.cli import main, register_webhook
from statusgate.config import Settings
from tests.fakes.finbox import FakeFinbox
from tests.fakes.harness import finbox_api, set_env
from tests.fakes.server import reply

URL = "https://gateway.example.com/webhooks/finbox"


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeFinbox]:
    set_env(monkeypatch)
    server = FakeFinbox()
    await server.start()
    yield server
    await server.close()


def settings(fake: FakeFinbox, **api: object) -> Settings:
    return load_settings(
        None, sources={"finbox": {"provider": "finbox", "api": finbox_api(fake, **api)}}
    )


async def test_finbox_session_and_entity_flows_with_webhook_mode_1(
    fake: FakeFinbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await register_webhook(settings(fake), "finbox", URL) == 0
    sent = {r.path: r.json() for r in fake.requests if r.method == "POST"}
    expected = {"webhook_url": URL, "webhook_mode": 1}
    assert sent == {
        "/session_data/update_webhook/": expected,
        "/entity/update_webhook/": expected,
    }
    assert all(r.headers["x-api-key"] for r in fake.requests)
    out = capsys.readouterr().out
    assert "session flow: registered" in out and "entity flow: registered" in out


async def test_a_refusal_is_reported_and_fails_the_command(
    fake: FakeFinbox, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.always("entity_webhook", reply(403, {"error": {"code": "ACCESS_DENIED", "message": "no"}}))
    assert await register_webhook(settings(fake), "finbox", URL) == 1
    err = capsys.readouterr().err
    assert "entity flow: not registered" in err and "HTTP 403" in err


async def test_without_credentials(fake: FakeFinbox, capsys: pytest.CaptureFixture[str]) -> None:
    bare = load_settings(None, sources={"finbox": {"provider": "finbox"}})
    assert await register_webhook(bare, "finbox", URL) == 2
    assert "api_key_env" in capsys.readouterr().err
    assert fake.calls.total() == 0


@pytest.mark.parametrize(
    ("source", "where"), [("setu", "Setu's dashboard"), ("banqware", "developer portal")]
)
def test_setu_and_banqware_are_configured_by_hand(
    source: str,
    where: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"https://gateway.example.com/webhooks/{source}"
    assert main(["register-webhook", "--source", source, "--url", url]) == 0
    out = capsys.readouterr().out
    assert where in out and url in out and "Nothing was registered" in out


def test_unknown_source_and_bad_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["register-webhook", "--source", "nope", "--url", URL]) == 2
    assert main(["register-webhook", "--source", "finbox", "--url", "gateway/webhooks"]) == 2

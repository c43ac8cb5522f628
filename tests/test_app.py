"""The composition root: ``build`` makes every component, or says everything wrong."""

from __future__ import annotations

import pytest

from statusgate.app import build, load_settings
from statusgate.config import SetupError


def test_build_reports_every_source_auth_then_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINBOX_SECRET", "s")
    settings = load_settings(
        None,
        sources={
            "finbox-main": {
                "provider": "finbox",
                "auth": {"method": "shared_secret", "secret_env": "FINBOX_SECRET"},
                "api": {"api_key_env": "UNSET_KEY", "server_hash_env": "UNSET_HASH"},
            },
            "setu": {"provider": "setu", "auth": {"method": "hmac", "secret_envs": ["UNSET_A"]}},
            "banqware": {
                "provider": "banqware",
                "auth": {"method": "basic", "username": "u", "password_env": "UNSET_B"},
            },
        },
    )
    with pytest.raises(SetupError) as info:
        build(settings)
    assert str(info.value).splitlines() == [
        "sources.finbox-main.api.api_key_env: the environment variable "
        "this setting names is not set",
        "sources.finbox-main.api.server_hash_env: the environment variable "
        "this setting names is not set",
        "sources.setu.auth.secret_envs.0: the environment variable this setting names is not set",
        "sources.banqware.auth.password_env: the environment variable "
        "this setting names is not set",
    ]
    for name in ("UNSET_KEY", "UNSET_HASH", "UNSET_A", "UNSET_B"):
        monkeypatch.setenv(name, "x")
    parts = build(settings)
    assert set(parts.verifiers) == {"finbox-main", "setu", "banqware"}
    # Every source polls through the one poll service; FinBox's credentials are complete.
    assert parts.polling.missing_settings("finbox-main") == []
    assert parts.polling.missing_settings("setu") != []


def test_an_unusable_store_url_is_a_located_problem() -> None:
    settings = load_settings(None, store="mysql://nowhere/db")
    with pytest.raises(SetupError) as info:
        build(settings)
    [(location, message)] = info.value.problems
    assert location == "store" and "unknown store URL scheme 'mysql'" in message

"""Logs are JSON lines with a request id per webhook, and never show secrets or full
account numbers."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from statusgate.app import load_settings
from statusgate.logs import JsonFormatter, TextFormatter, redact, register_secret, request_id
from tests.conftest import start_gateway, stop_gateway
from tests.payloads import finbox_upload


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_registered_secrets_are_masked_and_digit_runs_are_not_guessed_at() -> None:
    register_secret("s3cr3t-value-xyz")
    text = "key s3cr3t-value-xyz id grpcurl-1796145835-18531 n 123456789012"
    assert redact(text) == "key [secret] id grpcurl-1796145835-18531 n 123456789012"


async def test_a_webhook_and_its_events_share_a_request_id_and_leak_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_lines: io.StringIO
) -> None:
    monkeypatch.setenv("FINBOX_WEBHOOK_SECRET", "finbox-shared-secret-1")
    config = tmp_path / "statusgate.toml"
    config.write_text(
        '[sources.finbox]\nprovider = "finbox"\n'
        '[sources.finbox.auth]\nmethod = "shared_secret"\nsecret_env = "FINBOX_WEBHOOK_SECRET"\n'
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
        payload = finbox_upload("s1", ("a1", "COMPLETED"))
        payload["accounts"][0]["account_number"] = "918020054478311"  # unmasked, as in one doc
        payload["note"] = "finbox-shared-secret-1"
        code, body = await gw.post(
            "finbox", payload, headers={"x-secret-key": "finbox-shared-secret-1"}
        )
        assert code == 200
        wrong, _ = await gw.post("finbox", payload, headers={"x-secret-key": "nope"})
        assert wrong == 401
    finally:
        await stop_gateway(gw)

    lines = parsed(log_lines)
    stored = [line for line in lines if line["message"] == "webhook stored"]
    assert len(stored) == 1
    assert stored[0]["request_id"] == body["delivery_id"]
    assert "sources/finbox/sessions/s1" in stored[0]["events"]
    refused = [line for line in lines if line["message"] == "webhook refused"]
    assert refused and refused[0]["request_id"] != body["delivery_id"]
    everything = log_lines.getvalue()
    assert "finbox-shared-secret-1" not in everything
    assert "918020054478311" not in everything


def test_the_text_format_keeps_every_field() -> None:
    """For humans, the same fields as the JSON lines: request id, source, verdict,
    events, as key=value."""
    register_secret("text-format-secret-1")
    record = logging.LogRecord(
        "statusgate.web.webhooks", logging.INFO, "", 0, "webhook stored", None, None
    )
    record.source = "finbox"
    record.verdict = "mapped"
    record.events = "sources/finbox/sessions/s1 sources/finbox/sessions/s1/accounts/a1"
    record.note = "text-format-secret-1"
    token = request_id.set("0190abc")
    try:
        line = TextFormatter().format(record)
    finally:
        request_id.reset(token)
    assert line.endswith(
        " INFO statusgate.web.webhooks: webhook stored request_id=0190abc "
        'events="sources/finbox/sessions/s1 sources/finbox/sessions/s1/accounts/a1" '
        "note=[secret] source=finbox verdict=mapped"
    )

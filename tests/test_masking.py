"""Nothing a client sends, and no configured secret, reaches a log line in any form:
escaped, base64, as a Basic credential, or in aiohttp's own error lines; account numbers
are masked where a provider says a name segment is one, and nothing else is guessed at;
check-config never echoes a secret pasted where a variable name belongs."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from statusgate.app import load_settings
from statusgate.config_check import check_config
from statusgate.logs import JsonFormatter, mask_account_segments, redact, register_secret
from tests.conftest import start_gateway, stop_gateway
from tests.payloads import finbox_expiry

QUOTED_SECRET = 'pa"ss\\word-9f3k'
BASIC_PASSWORD = "basic-pass-7781"


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


def test_escaped_and_base64_forms_of_a_secret_are_masked() -> None:
    register_secret(QUOTED_SECRET)
    for form in (
        QUOTED_SECRET,
        json.dumps(QUOTED_SECRET)[1:-1],
        repr(QUOTED_SECRET)[1:-1],
        base64.b64encode(QUOTED_SECRET.encode()).decode(),
        base64.urlsafe_b64encode(QUOTED_SECRET.encode()).decode().rstrip("="),
    ):
        assert redact(f"x {form} y") == "x [secret] y", form


def test_a_secret_in_a_json_line_is_masked(log_lines: io.StringIO) -> None:
    register_secret(QUOTED_SECRET)
    logging.getLogger("x").warning("got %s", QUOTED_SECRET)
    assert "ss\\\\word" not in log_lines.getvalue() and "[secret]" in log_lines.getvalue()


def test_basic_and_bearer_credentials_are_masked() -> None:
    token = base64.b64encode(b"anyone:whatever-1234").decode()
    assert redact(f"Authorization: Basic {token}") == "Authorization: Basic [secret]"
    assert redact("authorization=bearer abc.def.ghi") == "authorization=bearer [secret]"


def test_account_segments_are_masked_where_declared_only() -> None:
    mask_account_segments("bq-test", [("sessions", "accounts")])
    line = (
        "sources/bq-test/sessions/grpcurl-1796145835-18531/accounts/pl61109010140000071219812874"
        " sources/bq-test/sessions/s/accounts/12345678901234567890"
        " sources/other/sessions/s/accounts/acc_12345678901"
    )
    assert redact(line) == (
        "sources/bq-test/sessions/grpcurl-1796145835-18531/accounts/"
        + "X" * 24
        + "2874 sources/bq-test/sessions/s/accounts/"
        + "X" * 16
        + "7890 sources/other/sessions/s/accounts/acc_12345678901"
    )


async def test_a_banqware_account_number_in_an_event_line_is_masked(
    tmp_path: Path, log_lines: io.StringIO
) -> None:
    settings = load_settings(
        None,
        http="127.0.0.1:0",
        grpc="127.0.0.1:0",
        api="127.0.0.1:0",
        store=f"sqlite:///{tmp_path / 'g.db'}",
    )
    fixture = Path("src/statusgate/providers/banqware/fixtures")
    payload = json.loads((fixture / "session_accounts_finished_details_list.json").read_text())
    gw = await start_gateway(settings)
    try:
        code, body = await gw.post("banqware", payload["payload"])
        assert code == 200, body
    finally:
        await stop_gateway(gw)
    names = [e["name"] for e in body["events"] if "/accounts/" in e["name"]]
    assert names
    everything = log_lines.getvalue()
    for name in names:
        number = name.rsplit("/", 1)[1]
        assert number not in everything
        assert number[-4:] in everything


async def test_aiohttps_error_lines_carry_no_body_no_credential_and_are_not_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_lines: io.StringIO
) -> None:
    monkeypatch.setenv("BQ_PASSWORD", BASIC_PASSWORD)
    config = tmp_path / "statusgate.toml"
    config.write_text(
        '[sources.bq]\nprovider = "banqware"\n'
        '[sources.bq.auth]\nmethod = "basic"\nusername = "gw"\npassword_env = "BQ_PASSWORD"\n'
    )
    settings = load_settings(
        config,
        http="127.0.0.1:0",
        grpc="127.0.0.1:0",
        api="127.0.0.1:0",
        store=f"sqlite:///{tmp_path / 'g.db'}",
    )
    logging.getLogger().setLevel(logging.DEBUG)
    gw = await start_gateway(settings)
    basic = base64.b64encode(f"gw:{BASIC_PASSWORD}".encode()).decode()
    try:
        for garbage in (
            b"GET /\x00BODY-SECRET-1 HTTP/1.1\r\n\r\n",
            f"POST /webhooks/bq HTTP/1.1\r\nAuthorization: Basic {basic}\r\n"
            "Content-Length: x\r\n\r\nBODY-SECRET-2".encode(),
            b"POST /webhooks/bq HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nBODY-SECRET-3",
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.ports.http)
            writer.write(garbage)
            await writer.drain()
            async with asyncio.timeout(5):
                assert (await reader.readline()).split()[1].startswith(b"4")
            writer.close()
        code, _ = await gw.post(
            "bq", finbox_expiry("x"), headers={"Authorization": f"Basic {basic}"}
        )
        assert code in (200, 202, 400)
    finally:
        await stop_gateway(gw)
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    everything = log_lines.getvalue()
    assert "BODY-SECRET" not in everything
    assert basic not in everything and BASIC_PASSWORD not in everything
    assert not [line for line in lines if line["level"] in ("error", "critical")]
    assert any("malformed request" in line["message"] for line in lines)


def test_check_config_never_echoes_a_secret_pasted_as_a_variable_name(tmp_path: Path) -> None:
    config = tmp_path / "statusgate.toml"
    config.write_text(
        '[sources.f]\nprovider = "finbox"\n'
        '[sources.f.auth]\nmethod = "shared_secret"\nsecret_env = "sk_live_51HqPASTED"\n'
    )
    problems = check_config(config)
    assert problems == [
        "sources.f.auth.secret_env: the environment variable this setting names is not set"
    ]

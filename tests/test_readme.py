"""README.md's "Try it" section, run verbatim against a real ``statusgate serve``, so it
stays true. Only the ports change: the gateway runs on free ones, not 8080 and 50051."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.process import ServeProcess

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def try_it_commands() -> str:
    section = README.split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    return str(block)


def documents(output: str) -> list[Any]:
    """The JSON documents curl and grpcurl printed, one after the other."""
    decoder = json.JSONDecoder()
    found, at = [], 0
    while (at := _skip_space(output, at)) < len(output):
        value, at = decoder.raw_decode(output, at)
        found.append(value)
    return found


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def test_the_section_follows_the_two_commands() -> None:
    assert README.index("## Try it") < README.index("## What it does")
    commands = try_it_commands()
    assert commands.startswith("curl ") and "127.0.0.1:8080/webhooks/finbox" in commands
    assert commands.count(".venv/bin/grpcurl ") == 2


@pytest.fixture
async def gateway(tmp_path: Path) -> Any:
    process = ServeProcess(f"sqlite:///{tmp_path / 'statusgate.db'}", log=tmp_path / "serve.log")
    await process.start()
    try:
        yield process
    finally:
        assert process.terminate() == 0


async def test_try_it_runs_verbatim(gateway: ServeProcess) -> None:
    script = try_it_commands()
    script = script.replace("127.0.0.1:8080", f"127.0.0.1:{gateway.http_port}")
    script = script.replace("127.0.0.1:50051", f"127.0.0.1:{gateway.grpc_port}")
    venv_bin = Path(sys.executable).parent
    assert (ROOT / ".venv" / "bin" / "grpcurl").exists() or (venv_bin / "grpcurl").exists()
    if not (ROOT / ".venv" / "bin" / "grpcurl").exists():  # a venv elsewhere: same tools
        script = script.replace(".venv/bin/grpcurl", str(venv_bin / "grpcurl"))
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    answer, status, history = documents(result.stdout)

    session = "sources/finbox/sessions/try-1"
    assert answer["delivery_id"]
    assert {e["name"] for e in answer["events"]} == {session, session + "/accounts/a1"}
    assert (status["name"], status["state"], status["stage"]) == (
        session,
        "STATE_COMPLETED",
        "STAGE_UPLOAD",
    )
    assert not status.get("terminal")
    [event] = history["events"]
    assert event["origin"] == "ORIGIN_WEBHOOK"
    assert event["delivery_id"] == answer["delivery_id"]

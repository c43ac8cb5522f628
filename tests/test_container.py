"""The container image's configuration, run the way the image runs it (there is no
container engine here): its ENTRYPOINT and CMD, its ENV, the example config it copies
in, and its HEALTHCHECK command, with only the ports and the store's directory moved to
free ones."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from statusgate.v1 import status_pb2 as pb
from statusgate.v1 import status_service_pb2_grpc
from tests.payloads import finbox_upload
from tests.process import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    """The arguments of every ``name`` instruction (continuation lines joined)."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [
        line.split(None, 1)[1].strip()
        for line in joined.splitlines()
        if line.split(None, 1)[:1] == [name]
    ]


def exec_form(argument: str) -> list[str]:
    words = json.loads(argument)
    assert isinstance(words, list), f"{argument} is not in exec form"
    return [str(word) for word in words]


def image_env() -> dict[str, str]:
    [env] = instructions("ENV")
    return dict(word.split("=", 1) for word in shlex.split(env))


def test_the_image_matches_ci() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    python = pyproject["tool"]["mypy"]["python_version"]
    bases = [line.split()[0] for line in instructions("FROM")]
    assert bases and all(base == f"python:{python}-slim" for base in bases), bases
    # A numeric user (and group), which runtimes that enforce non-root can check.
    [user] = instructions("USER")
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), user
    # The config CMD names is the example, copied in.
    [cmd] = instructions("CMD")
    config = exec_form(cmd)[exec_form(cmd).index("--config") + 1]
    assert f"examples/container.toml {config}" in instructions("COPY")
    assert exec_form(instructions("ENTRYPOINT")[0]) == ["statusgate"]


def healthcheck() -> list[str]:
    [check] = instructions("HEALTHCHECK")
    command = check.split(" CMD ", 1)[1]
    words = exec_form(command)
    assert "/healthz" in " ".join(words)
    return [sys.executable if words[0] == "python" else words[0], *words[1:]]


async def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert process.poll() is None, f"statusgate exited with {process.returncode}"
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError("statusgate did not become ready")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The image's environment, moved to free ports and a writable store directory."""
    moved = {
        "STATUSGATE_HTTP": f"0.0.0.0:{free_port()}",
        "STATUSGATE_GRPC": f"0.0.0.0:{free_port()}",
        "STATUSGATE_API": f"0.0.0.0:{free_port()}",
        "STATUSGATE_STORE": f"sqlite:///{tmp_path / 'statusgate.db'}",
    }
    assert set(image_env()) == set(moved)
    return {**os.environ, **moved}


def command() -> list[str]:
    """ENTRYPOINT + CMD, the config path pointing at the file the image copies there."""
    [entrypoint] = instructions("ENTRYPOINT")
    [cmd] = instructions("CMD")
    words = [*exec_form(entrypoint), *exec_form(cmd)]
    words[words.index("--config") + 1] = str(ROOT / "examples" / "container.toml")
    return [sys.executable, "-m", "statusgate.cli", *words[1:]]


def test_check_config_passes_as_the_image_runs_it(tmp_path: Path, env: dict[str, str]) -> None:
    path = ROOT / "examples" / "container.toml"
    result = subprocess.run(
        [sys.executable, "-m", "statusgate.cli", "check-config", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{path}: OK"


async def test_the_container_config_starts_as_is(tmp_path: Path, env: dict[str, str]) -> None:
    http_port = env["STATUSGATE_HTTP"].rpartition(":")[2]
    grpc_port = env["STATUSGATE_GRPC"].rpartition(":")[2]
    log = tmp_path / "serve.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(command(), cwd=tmp_path, env=env, stdout=output, stderr=output)
    try:
        await wait_ready(f"http://127.0.0.1:{http_port}/readyz", process)
        # The image's HEALTHCHECK, as the engine would run it.
        check = subprocess.run(healthcheck(), env=env, timeout=30, capture_output=True)
        assert check.returncode == 0, check.stderr

        async with aiohttp.ClientSession() as http:
            # Webhooks from the container's own network are taken.
            url = f"http://127.0.0.1:{http_port}/webhooks/finbox"
            async with http.post(url, json=finbox_upload("c1", ("a1", "COMPLETED"))) as answer:
                assert answer.status == 200, await answer.text()

        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            served = await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert served.status == health_pb2.HealthCheckResponse.SERVING
            # No token is configured yet: the door is closed to every caller.
            stub = status_service_pb2_grpc.StatusServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetStatus(pb.GetStatusRequest(name="sources/finbox/sessions/c1"))
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0, log.read_text()
    assert "Traceback" not in log.read_text()

"""``statusgate serve`` as a real child process, for tests that kill, starve or restart it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServeProcess:
    def __init__(
        self,
        store: str,
        *,
        config: Path | None = None,
        env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.env = env or {}
        self.log = log
        self.http_port = 0
        self.grpc_port = 0
        self.api_port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, timeout: float = 30, *, same_ports: bool = False) -> None:
        """Start (again); ``same_ports`` restarts it where its clients already point."""
        if not (same_ports and self.http_port):
            self.http_port, self.grpc_port, self.api_port = free_port(), free_port(), free_port()
        command = [
            sys.executable,
            "-m",
            "statusgate.cli",
            "serve",
            "--http",
            f"127.0.0.1:{self.http_port}",
            "--grpc",
            f"127.0.0.1:{self.grpc_port}",
            "--api",
            f"127.0.0.1:{self.api_port}",
            "--store",
            self.store,
        ]
        if self.config is not None:
            command += ["--config", str(self.config)]
        output = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            command, env={**os.environ, **self.env}, stdout=output, stderr=output
        )
        await self.wait_ready(timeout)

    async def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"statusgate exited with {self.process.returncode}")
                try:
                    async with http.get(f"{self.base}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise TimeoutError("statusgate did not become ready")

    def kill(self) -> None:
        """SIGKILL: no drain, no flush, nothing in memory survives."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

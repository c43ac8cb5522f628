"""``statusgate serve`` as a real child process, for tests that kill, starve or restart it.

With ``workers`` above 1 it is a supervisor and its workers, in a session of their own
so that ``kill`` can SIGKILL all of them at once; the log (a temporary file unless
given) tells when every worker is ready and which pids they have.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_SERVING = re.compile(r"statusgate serving with \d+ workers \(pids ([\d, ]+)\)")


class ServeProcess:
    def __init__(
        self,
        store: str,
        *,
        config: Path | None = None,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        workers: int = 1,
    ) -> None:
        self.store = store
        self.config = config
        self.env = env or {}
        self.workers = workers
        if log is None and workers > 1:
            log = Path(tempfile.mkdtemp(prefix="statusgate-test-")) / "serve.log"
        self.log = log
        self.http_port = 0
        self.grpc_port = 0
        self.api_port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log_from = 0

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

    def log_text(self) -> str:
        """What this run (since the last ``start``) logged."""
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_bytes()[self._log_from :].decode(errors="replace")

    def worker_pids(self) -> list[int]:
        """The workers' pids as the supervisor announced them once all were ready."""
        found = _SERVING.search(self.log_text())
        assert found is not None, "the supervisor did not announce its workers"
        return [int(pid) for pid in found.group(1).split(", ")]

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
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        if self.config is not None:
            command += ["--config", str(self.config)]
        self._log_from = self.log.stat().st_size if self.log and self.log.exists() else 0
        output = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **self.env},
            stdout=output,
            stderr=output,
            start_new_session=self.workers > 1,
        )
        await self.wait_ready(timeout)

    async def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"statusgate exited with {self.process.returncode}")
                if self.workers == 1 or _SERVING.search(self.log_text()):
                    try:
                        async with http.get(f"{self.base}/readyz") as response:
                            if response.status == 200:
                                return
                    except aiohttp.ClientError:
                        pass
                await asyncio.sleep(0.05)
        raise TimeoutError("statusgate did not become ready")

    def kill(self) -> None:
        """SIGKILL: no drain, no flush, nothing in memory survives (every process of a
        supervised gateway at once)."""
        assert self.process is not None
        if self.workers > 1:
            pids = self.worker_pids_now()
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            wait_gone(pids)
        else:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def worker_pids_now(self) -> list[int]:
        """The live children of the supervisor (restarted workers included)."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def wait_gone(pids: list[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and _state(pid) != "Z":
            if time.monotonic() > deadline:
                raise TimeoutError(f"process {pid} did not exit")
            time.sleep(0.02)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"

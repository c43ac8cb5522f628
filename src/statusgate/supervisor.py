"""``statusgate serve --workers N``: one supervisor, N worker processes behind the same
listeners.

Each worker is a full gateway (webhook door, gRPC, hub, poller, reconciler): one Python
process runs one GIL, so N workers use N cores. The supervisor serves nothing itself:

- **Listeners.** It binds the HTTP, gRPC and API addresses first, *without* SO_REUSEPORT, so
  start-up fails if anything holds them, and only then turns SO_REUSEPORT on for its
  bound (never listening) sockets. Its workers bind the same ports with SO_REUSEPORT
  and the kernel spreads connections over them. A process that does not set
  SO_REUSEPORT (another gateway: a single gateway never sets it, and another
  supervisor's first bind does not) cannot bind the ports while the supervisor holds
  them, not even while a worker restarts.
- **The store.** For SQLite it takes the file's lock and its workers inherit it (see
  ``store.sqlite_shared``): the workers share the file, nobody else can open it.
- **Life.** A worker that dies is restarted with backoff, and the supervisor logs how
  it ended. One that keeps dying soon after it starts (``MAX_RAPID_DEATHS`` in a row)
  or that cannot start for a configuration problem stops the gateway with a non-zero
  exit. SIGTERM (or SIGINT) is forwarded to every worker, which drains as a single
  gateway does; the supervisor exits once all have. If the supervisor itself dies, its
  workers see their pipe to it close and drain and exit too.
- **Metrics** are counted by each worker in the run directory and summed by whichever
  worker answers ``/metrics`` (``telemetry.metrics``), the process metrics over the
  supervisor and every worker (``telemetry.process``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import multiprocess

from statusgate.config import Settings, split_host_port
from statusgate.config.workers import METRICS_DIR_ENV, WorkerRole
from statusgate.store.base import StoreUnavailableError
from statusgate.store.factory import sqlite_file
from statusgate.store.sqlite_shared import take_lock

log = logging.getLogger(__name__)

# A worker that dies within this many seconds of starting died "rapidly".
STABLE_AFTER = 30.0
# This many rapid deaths in a row of one worker stop the gateway.
MAX_RAPID_DEATHS = 5
FIRST_BACKOFF = 0.2
MAX_BACKOFF = 5.0
# A worker that exits with this code met a problem restarting will not fix (the
# configuration, a secret, a port): the gateway stops.
SETUP_FAILED = 2


class SupervisorError(Exception):
    """The gateway cannot start: a port is taken, the store is in use."""


@dataclass
class _Slot:
    index: int
    process: asyncio.subprocess.Process | None = None
    started: float = 0.0
    ready: bool = False
    rapid_deaths: int = 0
    ever_ready: bool = False


@dataclass
class Listeners:
    """The supervisor's reserved sockets and the addresses its workers bind."""

    sockets: list[socket.socket] = field(default_factory=list)
    http: str = ""
    grpc: str = ""
    api: str = ""

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def reserve(address: str) -> tuple[socket.socket, str]:
    """Bind ``HOST:PORT`` alone (port 0 picks one), then let only SO_REUSEPORT sockets
    of this user join: returns the socket and the address with its actual port."""
    host, port = split_host_port(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise SupervisorError(f"cannot listen on {address}: {error.strerror}") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    return sock, f"{shown}:{bound}"


class Supervisor:
    def __init__(self, settings: Settings, count: int, worker_args: Sequence[str]) -> None:
        """``worker_args``: the ``serve`` flags every worker gets (config, store), to
        which the supervisor adds the listeners it reserved and each worker's role."""
        self._settings = settings
        self._count = count
        self._worker_args = list(worker_args)
        self._slots = [_Slot(i) for i in range(count)]
        self._stopping = False
        self._failure: tuple[int, str] | None = None
        self._changed = asyncio.Event()
        self._announced = False

    async def run(self) -> int:
        run_dir = Path(tempfile.mkdtemp(prefix="statusgate-"))
        listeners = Listeners()
        lock = None
        try:
            bound = []
            for address in (self._settings.http, self._settings.grpc, self._settings.api):
                sock, actual = reserve(address)
                listeners.sockets.append(sock)
                bound.append(actual)
            listeners.http, listeners.grpc, listeners.api = bound
            database = sqlite_file(self._settings.store)
            if database is not None:
                lock = take_lock(database)
        except (SupervisorError, StoreUnavailableError, OSError, ValueError) as error:
            listeners.close()
            shutil.rmtree(run_dir, ignore_errors=True)
            print(f"statusgate: {error}", file=sys.stderr)
            return SETUP_FAILED
        (run_dir / "metrics").mkdir()
        parent_read, parent_write = os.pipe()
        os.set_inheritable(parent_read, True)
        if lock is not None:
            os.set_inheritable(lock.fileno(), True)
        control = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        control.bind(str(run_dir / "supervisor.sock"))
        control.setblocking(False)
        loop = asyncio.get_running_loop()
        loop.add_reader(control.fileno(), self._on_report, control)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        self._listeners = listeners
        self._roles = {
            slot.index: WorkerRole(
                index=slot.index,
                count=self._count,
                run_dir=str(run_dir),
                parent_fd=parent_read,
                lock_fd=lock.fileno() if lock is not None else None,
            )
            for slot in self._slots
        }
        try:
            for slot in self._slots:
                await self._spawn(slot)
            return await self._watch()
        finally:
            loop.remove_reader(control.fileno())
            control.close()
            os.close(parent_write)  # any worker still running drains and exits
            os.close(parent_read)
            listeners.close()
            if lock is not None:
                lock.close()
            shutil.rmtree(run_dir, ignore_errors=True)

    async def _spawn(self, slot: _Slot) -> None:
        role = self._roles[slot.index]
        command = [
            sys.executable,
            "-m",
            "statusgate.cli",
            "serve",
            *self._worker_args,
            "--http",
            self._listeners.http,
            "--grpc",
            self._listeners.grpc,
            "--api",
            self._listeners.api,
            "--worker-role",
            role.to_json(),
        ]
        fds = [role.parent_fd] + ([role.lock_fd] if role.lock_fd is not None else [])
        env = {**os.environ, METRICS_DIR_ENV: str(role.metrics_dir)}
        slot.process = await asyncio.create_subprocess_exec(*command, pass_fds=fds, env=env)
        slot.started = time.monotonic()
        slot.ready = False
        asyncio.get_running_loop().create_task(self._reap(slot, slot.process))

    async def _reap(self, slot: _Slot, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        # Its counters stay (they are part of the gateway's totals); its live gauges go.
        multiprocess.mark_process_dead(process.pid, str(self._roles[slot.index].metrics_dir))  # type: ignore[no-untyped-call]
        if slot.process is not process:
            return
        slot.process = None
        self._changed.set()
        if self._stopping:
            return
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
        lived = time.monotonic() - slot.started
        if code == SETUP_FAILED and not slot.ever_ready:
            self._fail(SETUP_FAILED, f"worker {slot.index} could not start ({how})")
            return
        slot.rapid_deaths = slot.rapid_deaths + 1 if lived < STABLE_AFTER else 1
        if slot.rapid_deaths >= MAX_RAPID_DEATHS:
            self._fail(
                1,
                f"worker {slot.index} (pid {process.pid}) {how}; it died {slot.rapid_deaths} "
                f"times in a row within {STABLE_AFTER:g} s of starting, stopping the gateway",
            )
            return
        backoff = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (slot.rapid_deaths - 1))
        log.warning(
            "worker %d (pid %d) %s after %.1f s; restarting it in %.1f s",
            slot.index,
            process.pid,
            how,
            lived,
            backoff,
        )
        await asyncio.sleep(backoff)
        if not self._stopping:
            await self._spawn(slot)

    def _on_report(self, control: socket.socket) -> None:
        while True:
            try:
                message = control.recv(256).decode(errors="replace").split()
            except (BlockingIOError, InterruptedError):
                return
            if len(message) != 3 or message[0] != "ready" or not message[1].isdigit():
                continue
            index = int(message[1])
            process = self._slots[index].process if index < self._count else None
            if process is not None and str(process.pid) == message[2]:
                self._slots[index].ready = self._slots[index].ever_ready = True
                self._changed.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stopping:
            return
        log.info("signal %s received, draining %d workers", sig.name, self._count)
        self._stopping = True
        self._changed.set()

    def _fail(self, code: int, reason: str) -> None:
        log.error("statusgate: %s", reason)
        if self._failure is None:
            self._failure = (code, reason)
        self._stopping = True
        self._changed.set()

    async def _watch(self) -> int:
        while not self._stopping:
            await self._changed.wait()
            self._changed.clear()
            if not self._announced and all(slot.ready for slot in self._slots):
                self._announced = True
                log.info(
                    "statusgate serving with %d workers (pids %s): http %s, grpc %s, api %s",
                    self._count,
                    ", ".join(str(s.process.pid) for s in self._slots if s.process),
                    self._listeners.http,
                    self._listeners.grpc,
                    self._listeners.api,
                )
        return await self._drain()

    async def _drain(self) -> int:
        running = [s.process for s in self._slots if s.process is not None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        grace = self._settings.shutdown_grace_seconds + 10
        codes = []
        for process in running:
            try:
                codes.append(await asyncio.wait_for(process.wait(), grace))
            except TimeoutError:
                log.error("worker pid %d did not drain in time; killing it", process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                codes.append(await process.wait())
        if self._failure is not None:
            return self._failure[0]
        if any(code != 0 for code in codes):
            log.error("workers exited with %s", codes)
            return 1
        log.info("statusgate stopped")
        return 0

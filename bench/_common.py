"""Shared pieces of the benchmarks: webhook bodies, the HTTP load generator, percentiles,
subprocess management, CPU accounting and the result table.

Everything here is importable (``from bench._common import closed_loop, open_loop, ...``)
so every benchmark measures the same way. Timestamps are ``time.monotonic_ns()``:
CLOCK_MONOTONIC is one clock for the whole machine on Linux, so a send time taken in the
load generator and a receive time taken in another process can be subtracted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.payloads import finbox_expiry, finbox_upload

REPO_ROOT = Path(__file__).resolve().parent.parent
JSON_HEADERS = {"Content-Type": "application/json"}

# --- webhook bodies -----------------------------------------------------------------

# How many status events one webhook of each kind produces on a fresh subject.
EVENTS_PER_WEBHOOK = {"expiry": 1, "upload": 2}


def webhook_body(kind: str, session_id: str) -> bytes:
    """One FinBox webhook body, as the provider sends it (tests/payloads.py).

    ``expiry`` (SESSION_EXPIRY_NOTIFICATION, ~120 bytes) maps to one event for
    ``sources/finbox/sessions/{session_id}``; ``upload`` (the upload-completion
    notification with one account, ~470 bytes) maps to two: the session and its account.
    """
    if kind == "expiry":
        payload = finbox_expiry(session_id)
    elif kind == "upload":
        payload = finbox_upload(session_id, ("acct-1", "COMPLETED"))
    else:
        raise ValueError(f"unknown webhook kind {kind!r}; known: {sorted(EVENTS_PER_WEBHOOK)}")
    return json.dumps(payload).encode()


def webhook_bodies(kind: str, prefix: str, count: int) -> list[bytes]:
    """``count`` bodies with unique session ids ``{prefix}{i:07d}``: each one is new to
    the gateway, so each is applied (and fanned out) rather than dropped as a duplicate."""
    return [webhook_body(kind, f"{prefix}{i:07d}") for i in range(count)]


# --- percentiles --------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in [0, 100]) of already sorted values: the smallest
    value with at least p% of the values at or below it. p99 of 100 values is the 99th."""
    if not sorted_values:
        return math.nan
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is not in [0, 100]")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True, slots=True)
class Summary:
    """A latency distribution, in milliseconds."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of_ns(cls, values_ns: Sequence[int]) -> Summary:
        values = sorted(v / 1e6 for v in values_ns)
        if not values:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        return cls(
            count=len(values),
            p50=percentile(values, 50),
            p90=percentile(values, 90),
            p99=percentile(values, 99),
            max=values[-1],
            mean=sum(values) / len(values),
        )


def p99_by_second(at_ns: Sequence[int], values_ns: Sequence[int], start_ns: int) -> list[float]:
    """p99 (ms) of ``values_ns`` grouped by the second of ``at_ns`` since ``start_ns``."""
    seconds: dict[int, list[float]] = {}
    for at, value in zip(at_ns, values_ns, strict=True):
        seconds.setdefault((at - start_ns) // 1_000_000_000, []).append(value / 1e6)
    return [percentile(sorted(seconds[s]), 99) for s in sorted(seconds)]


# --- the load generator ---------------------------------------------------------------


@dataclass(slots=True)
class LoadResult:
    """Per-request records of one load run, indexed like the bodies it sent.

    ``status`` is the HTTP status, 0 for a transport error (message in ``errors``).
    ``scheduled_ns`` is set by the open-loop generator only: when the request was due.
    """

    send_ns: list[int]
    done_ns: list[int]
    status: list[int]
    responses: list[bytes] | None
    scheduled_ns: list[int] | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls, count: int, *, keep_responses: bool, paced: bool) -> LoadResult:
        return cls(
            send_ns=[0] * count,
            done_ns=[0] * count,
            status=[0] * count,
            responses=[b""] * count if keep_responses else None,
            scheduled_ns=[0] * count if paced else None,
        )

    @property
    def count(self) -> int:
        return len(self.status)

    @property
    def elapsed_s(self) -> float:
        """From the first send to the last answer."""
        return (max(self.done_ns) - min(self.send_ns)) / 1e9

    @property
    def ok(self) -> int:
        return sum(1 for s in self.status if 200 <= s < 300)

    @property
    def failed(self) -> int:
        """Answers that were not 2xx, transport errors included."""
        return self.count - self.ok

    @property
    def throughput(self) -> float:
        """Acknowledged (2xx) webhooks per second over the whole run."""
        return self.ok / self.elapsed_s

    def ack_latency(self) -> Summary:
        """From the moment a request was handed to the client to its complete answer."""
        return Summary.of_ns(
            [d - s for s, d, st in zip(self.send_ns, self.done_ns, self.status, strict=True) if st]
        )

    def send_lag(self) -> Summary:
        """How late the open-loop generator sent, against its schedule."""
        if self.scheduled_ns is None:
            return Summary.of_ns([])
        return Summary.of_ns(
            [max(0, s - due) for s, due in zip(self.send_ns, self.scheduled_ns, strict=True)]
        )

    def ack_p99_by_second(self) -> list[float]:
        """The ack latency p99 of the requests sent in each second of the run (ms):
        shows a stall or a slow drift that one p99 over the whole run hides."""
        return p99_by_second(
            self.send_ns,
            [d - s for s, d in zip(self.send_ns, self.done_ns, strict=True)],
            min(self.send_ns),
        )

    def status_counts(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for s in self.status:
            counts[s] = counts.get(s, 0) + 1
        return counts


def client_session(max_connections: int) -> aiohttp.ClientSession:
    """One session, one keep-alive connection pool of ``max_connections``."""
    connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=max_connections)
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=60), auto_decompress=False
    )


async def _post(
    session: aiohttp.ClientSession, url: str, body: bytes, index: int, result: LoadResult
) -> None:
    result.send_ns[index] = time.monotonic_ns()
    try:
        async with session.post(url, data=body, headers=JSON_HEADERS) as response:
            answer = await response.read()
            result.done_ns[index] = time.monotonic_ns()
            result.status[index] = response.status
            if result.responses is not None:
                result.responses[index] = answer
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        result.done_ns[index] = time.monotonic_ns()
        result.status[index] = 0
        if len(result.errors) < 10:
            result.errors.append(f"{type(error).__name__}: {error}")


async def closed_loop(
    session: aiohttp.ClientSession,
    url: str,
    bodies: Sequence[bytes],
    *,
    concurrency: int,
    keep_responses: bool = False,
) -> LoadResult:
    """Maximum load: ``concurrency`` workers each send the next body as soon as their
    previous one is answered, until every body was sent once."""
    result = LoadResult.empty(len(bodies), keep_responses=keep_responses, paced=False)
    indexes: Iterator[int] = iter(range(len(bodies)))  # shared: each index taken once

    async def worker() -> None:
        for index in indexes:
            await _post(session, url, bodies[index], index, result)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


async def open_loop(
    session: aiohttp.ClientSession,
    url: str,
    bodies: Sequence[bytes],
    *,
    rate: float,
    max_in_flight: int,
    keep_responses: bool = False,
) -> LoadResult:
    """Paced load: body i is due at start + i/rate, whether or not earlier ones were
    answered (open loop), with at most ``max_in_flight`` outstanding. A generator that
    falls behind its schedule sends at once to catch up; ``send_lag`` says by how much."""
    result = LoadResult.empty(len(bodies), keep_responses=keep_responses, paced=True)
    assert result.scheduled_ns is not None
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    interval_ns = round(1e9 / rate)
    start = time.monotonic_ns()

    async def send(index: int) -> None:
        try:
            await _post(session, url, bodies[index], index, result)
        finally:
            slots.release()

    for index in range(len(bodies)):
        due = start + index * interval_ns
        delay = due - time.monotonic_ns()
        if delay > 0:
            await asyncio.sleep(delay / 1e9)
        await slots.acquire()
        result.scheduled_ns[index] = due
        task = asyncio.create_task(send(index))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    return result


# --- processes ------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port that was free a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Service:
    """A subprocess whose output goes to a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        stdout_pipe: bool = False,
        stdin_pipe: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._log = log_path.open("wb")
        # ``env``'s PYTHONPATH goes first (another revision's src, say).
        extra = (env or {}).get("PYTHONPATH")
        pythonpath = f"{extra}{os.pathsep}{_pythonpath()}" if extra else _pythonpath()
        env = {**os.environ, **(env or {}), "PYTHONPATH": pythonpath}
        self.process = subprocess.Popen(
            self.argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self._log,
            stderr=self._log,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(
                f"{self.name} exited with {code}; its log ({self.log_path}):\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def _pythonpath() -> str:
    """The repository root first, so subprocesses import ``bench`` and ``tests``."""
    existing = os.environ.get("PYTHONPATH")
    return f"{REPO_ROOT}{os.pathsep}{existing}" if existing else str(REPO_ROOT)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


async def wait_http_ready(
    session: aiohttp.ClientSession, url: str, service: Service, timeout: float = 30
) -> None:
    """Poll ``url`` until it answers 200; fail early if the service died."""
    deadline = time.monotonic() + timeout
    while True:
        service.check_running()
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with session.get(url) as response:
                if response.status == 200:
                    return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{service.name} was not ready at {url} within {timeout} s")
        await asyncio.sleep(0.05)


# --- CPU accounting -------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_cpu(stat_path: Path) -> float:
    stat = stat_path.read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


def process_tree(pid: int) -> list[int]:
    """``pid`` and its living descendants (a gateway with ``--workers``: the supervisor
    and its workers)."""
    found = [pid]
    for child in _children(pid):
        found += process_tree(child)
    return found


def _children(pid: int) -> list[int]:
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                children += [int(c) for c in (task / "children").read_text().split()]
    return children


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process, its threads and its living
    descendants (/proc, Linux); for this process (the load generator), of itself only:
    the servers it measures are its children."""
    if pid == os.getpid():
        return _stat_cpu(Path(f"/proc/{pid}/stat"))
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):  # a process may end while we read
            total += _stat_cpu(Path(f"/proc/{member}/stat"))
    return total


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its living descendants."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """A Python process's CPU time by kind of thread: ``main`` (the one running the
    asyncio loop), ``python`` (threads Python started, e.g. executor threads: they keep
    the process's name) and ``native`` (threads a C library named, e.g. grpc's
    event_engine). Threads that ended are missing, so deltas are a lower bound. Summed
    over the workers of a supervised gateway (the supervisor's own threads are "main")."""
    seconds = {"main": 0.0, "python": 0.0, "native": 0.0}
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            task_dir = Path(f"/proc/{member}/task")
            name = Path(f"/proc/{member}/comm").read_text().strip()
            for task in task_dir.iterdir():
                with contextlib.suppress(OSError):  # a thread may end while we read
                    cpu = _stat_cpu(task / "stat")
                    if task.name == str(member):
                        seconds["main"] += cpu
                    elif (task / "comm").read_text().strip() == name:
                        seconds["python"] += cpu
                    else:
                        seconds["native"] += cpu
    return seconds


def machine_cpu_seconds() -> float:
    """CPU time every core of the machine spent busy so far (/proc/stat; idle and
    iowait excluded), summed over cores."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


MACHINE = "machine"
OTHERS = "rest of the machine"


class CpuMeter:
    """CPU cores each process used over a phase: CPU seconds / wall seconds. For the
    processes named in ``by_thread``, also per kind of thread (``name/main`` ...).
    ``machine`` is every core's busy time, and ``rest of the machine`` what neither of
    the measured processes used: other work competing for the same cores."""

    def __init__(self, pids: Mapping[str, int], by_thread: Sequence[str] = ()) -> None:
        self._pids = dict(pids)
        self._by_thread = [name for name in by_thread if name in self._pids]
        self._start_wall = time.monotonic()
        self._start = self._sample()

    def _sample(self) -> dict[str, float]:
        sample = {name: cpu_seconds(pid) for name, pid in self._pids.items()}
        sample[MACHINE] = machine_cpu_seconds()
        for name in self._by_thread:
            for kind, cpu in thread_cpu_seconds(self._pids[name]).items():
                sample[f"{name}/{kind}"] = cpu
        return sample

    def cores(self) -> dict[str, float]:
        wall = time.monotonic() - self._start_wall
        end = self._sample()
        cores = {name: (end[name] - self._start.get(name, 0.0)) / wall for name in end}
        cores[OTHERS] = max(0.0, cores[MACHINE] - sum(cores[name] for name in self._pids))
        return cores


# --- reporting ------------------------------------------------------------------------


def ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f} ms"


def ratio(gateway: float, baseline: float) -> str:
    if math.isnan(gateway) or math.isnan(baseline) or baseline == 0:
        return "n/a"
    return f"{gateway / baseline:.2f}x"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table with aligned columns (pastes into BENCHMARKS.md as it is)."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), separator, *(line(row) for row in rows)])


def machine_info(data_dir: Path) -> dict[str, Any]:
    """What the figures depend on: cores, CPU, Python, kernel, the store's filesystem."""
    cpu_model = ""
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu_model = text.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu_model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "filesystem": filesystem_of(data_dir),
        "revision": git_revision(),
    }


def git_revision() -> str:
    """The commit measured, and whether the working tree differs from it (read-only:
    --no-optional-locks keeps git status from touching the index)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit} with uncommitted changes" if changes else commit


def filesystem_of(path: Path) -> str:
    """The mount type of the filesystem holding ``path`` (tmpfs would make fsync free)."""
    best, kind = "", "unknown"
    with contextlib.suppress(OSError):
        for entry in Path("/proc/mounts").read_text().splitlines():
            parts = entry.split()
            mount, fstype = parts[1], parts[2]
            resolved = str(path.resolve())
            inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) > len(best):
                best, kind = mount, fstype
    return kind

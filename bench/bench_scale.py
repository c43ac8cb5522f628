"""Cores, CPU per webhook, filtered streams and memory: statusgate against the bare
aiohttp handler, measured in one run.

    python -m bench.bench_scale              # the run recorded in BENCHMARKS.md (~3 min)
    python -m bench.bench_scale --quick      # a smoke run (~1 min)

Four parts, each on fresh ``statusgate serve`` processes and fresh SQLite files:

1. **Max load with wrk** (``--payloads``): wrk (C, a few % of a core) drives the
   bare handler (``bench._baseline``), the gateway with one process and the gateway
   with ``--workers`` workers, 64 connections for ``--duration`` seconds, every
   request a FinBox webhook with a new session id (a Lua script builds them). For each:
   acknowledged webhooks/s, ack latency p50/p99, non-2xx answers, and the CPU of the
   server's whole process tree per request (supervisor and workers together).
2. **2,000 filtered streams**: ``--streams`` WatchStatuses streams, each filtering on
   its own session (``bench._subscribers --filtered-prefix``), and ``--stream-rate``
   webhooks/s (paced, open loop) to those sessions: each webhook's event reaches the
   one stream that watches it. Webhook → watcher latency and the gateway's CPU per
   webhook, beside the same paced load with no stream open.
3. **Memory per tracked subject**: the gateway's RSS before and after ``--subjects``
   new sessions (one process), divided by their number.

Fan-out to 100 unfiltered subscribers is ``bench_ingest``'s (``--workers`` there too).
See bench/README.md for what is measured where.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench._common import (
    Service,
    Summary,
    client_session,
    closed_loop,
    cpu_seconds,
    format_table,
    free_port,
    machine_info,
    ms,
    python_module,
    rss_bytes,
    wait_http_ready,
    webhook_body,
)
from bench._rawload import open_loop_url

GATEWAY = "statusgate"
BASELINE = "baseline"
CPU_AIM = 2.5
THROUGHPUT_AIM = 0.5
WORKERS_AIM = 0.8
STREAMS_P99_AIM_MS = 50.0
STREAMS_CPU_AIM = 1.5
MEMORY_AIM = 2048  # bytes per subject
OTHER_LOAD_WARNING = 0.15  # cores

# One webhook per call, each with a session id of its own: "<run>-<thread>-<n>". The
# template is a FinBox body of tests/payloads.py with SESSION in place of the id.
_LUA = """
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function request()
  counter = counter + 1
  local body = string.gsub(TEMPLATE, "SESSION", RUN .. "-" .. tid .. "-" .. counter)
  return wrk.format("POST", "/webhooks/finbox", {["Content-Type"] = "application/json"}, body)
end
"""


@dataclass(slots=True)
class WrkRun:
    server: str
    kind: str
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: str
    p50_ms: float
    p99_ms: float
    cpu_seconds: float
    wrk_cpu_seconds: float
    # What every other process of the machine used meanwhile (other people's work).
    others_cpu_seconds: float = 0.0

    @property
    def throughput(self) -> float:
        return (self.requests - self.non_2xx) / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / max(1, self.requests) * 1e6


@dataclass(slots=True)
class StreamsRun:
    streams: int
    rate: float
    webhooks: int
    alone_cpu_us: float
    streams_cpu_us: float
    latency: Summary
    delivered: int
    problems: list[str]


@dataclass(slots=True)
class MemoryRun:
    subjects: int
    before: int
    after: int

    @property
    def per_subject(self) -> float:
        return (self.after - self.before) / self.subjects


def wrk_script(kind: str, run: str, directory: Path) -> Path:
    template = webhook_body(kind, "SESSION").decode()
    text = f"TEMPLATE = {json.dumps(template)}\nRUN = {json.dumps(run)}\n{_LUA}"
    path = directory / f"{run}.lua"
    path.write_text(text)
    return path


_DURATION = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _DURATION[unit]


async def run_wrk(
    args: argparse.Namespace, server: Service, url: str, kind: str, label: str, work: Path
) -> WrkRun:
    """A short warm-up, then the measured run."""
    for seconds, run in ((2, f"warm-{label}-{kind}"), (args.duration, f"run-{label}-{kind}")):
        script = wrk_script(kind, run, work)
        command = [
            args.wrk,
            f"-t{args.threads}",
            f"-c{args.connections}",
            f"-d{seconds:g}s",
            "--latency",
            "-s",
            str(script),
            url,
        ]
        started_cpu = cpu_seconds(server.pid)
        started_machine = _task_cpu_seconds()
        started = time.monotonic()
        out, wrk_cpu = await asyncio.to_thread(_run_measured, command)
        elapsed = time.monotonic() - started
        used = cpu_seconds(server.pid) - started_cpu
        others = max(0.0, _task_cpu_seconds() - started_machine - used - wrk_cpu)
        server.check_running()
    text = out.decode()
    total = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.MULTILINE))
    return WrkRun(
        server=label,
        kind=kind,
        requests=total,
        seconds=min(elapsed, args.duration + 1),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=errors.group(1) if errors else "",
        p50_ms=_ms(latency["50"]),
        p99_ms=_ms(latency["99"]),
        cpu_seconds=used,
        wrk_cpu_seconds=wrk_cpu,
        others_cpu_seconds=others,
    )


def _task_cpu_seconds() -> float:
    """CPU time every core spent running tasks (user, nice, system), without interrupt
    handling: at tens of thousands of loopback requests a second the kernel's softirq
    time is the benchmark's own traffic, not another process's work."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:4]
    return sum(int(f) for f in fields) / os.sysconf("SC_CLK_TCK")


def _run_measured(command: list[str]) -> tuple[bytes, float]:
    """Run ``command`` to its end: its output, and the CPU seconds it used."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    out = process.stdout.read()  # wrk prints its report at the end: it fits a pipe
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0  # reaped here; keep Popen from waiting again
    return out, usage.ru_utime + usage.ru_stime


def gateway(work: Path, name: str, workers: int) -> tuple[Service, int, int]:
    http, grpc = free_port(), free_port()
    service = Service(
        f"{GATEWAY} x{workers}",
        python_module(
            "statusgate.cli",
            "serve",
            *("--http", f"127.0.0.1:{http}"),
            *("--grpc", f"127.0.0.1:{grpc}"),
            *("--store", f"sqlite:///{work / f'{name}.db'}"),
            # Only when asked, so that revisions without the flag can be measured too.
            *(("--workers", str(workers)) if workers != 1 else ()),
        ),
        work / f"{name}.log",
    )
    return service, http, grpc


async def wait_all_workers(service: Service, workers: int, timeout: float = 60) -> None:
    """A supervised gateway answers /readyz as soon as one worker does; wait for all."""
    if workers == 1:
        return
    deadline = time.monotonic() + timeout
    while "statusgate serving with" not in service.log_path.read_text(errors="replace"):
        service.check_running()
        if time.monotonic() > deadline:
            raise TimeoutError("the workers did not all start")
        await asyncio.sleep(0.1)


async def part_wrk(args: argparse.Namespace, work: Path) -> list[WrkRun]:
    runs: list[WrkRun] = []
    baseline_port = free_port()
    baseline = Service(
        BASELINE, python_module("bench._baseline", "--port", str(baseline_port)), work / "b.log"
    )
    try:
        async with client_session(4) as session:
            await wait_http_ready(session, f"http://127.0.0.1:{baseline_port}/readyz", baseline)
            for kind in args.payloads:
                url = f"http://127.0.0.1:{baseline_port}/webhooks/finbox"
                runs.append(await run_wrk(args, baseline, url, kind, BASELINE, work))
                for workers in (1, args.workers):
                    service, http, _ = gateway(work, f"wrk-{kind}-{workers}", workers)
                    try:
                        await wait_http_ready(session, f"http://127.0.0.1:{http}/readyz", service)
                        await wait_all_workers(service, workers)
                        url = f"http://127.0.0.1:{http}/webhooks/finbox"
                        label = f"{GATEWAY} x{workers}"
                        runs.append(await run_wrk(args, service, url, kind, label, work))
                    finally:
                        service.stop()
    finally:
        baseline.stop()
    return runs


async def part_streams(args: argparse.Namespace, work: Path) -> StreamsRun:
    service, http, grpc = gateway(work, "streams", 1)
    url = f"http://127.0.0.1:{http}/webhooks/finbox"
    count = round(args.stream_rate * args.stream_duration)
    try:
        async with client_session(64) as session:
            await wait_http_ready(session, f"http://127.0.0.1:{http}/readyz", service)
            alone_bodies = [webhook_body("expiry", f"alone{i:07d}") for i in range(count)]
            meter_start = cpu_seconds(service.pid)
            await open_loop_url(url, alone_bodies, rate=args.stream_rate, connections=64)
            alone_us = (cpu_seconds(service.pid) - meter_start) / count * 1e6

            out = work / "streams.json"
            worker = Service(
                "subscribers",
                python_module(
                    "bench._subscribers",
                    *("--target", f"127.0.0.1:{grpc}"),
                    *("--subscribers", str(args.streams)),
                    *("--filtered-prefix", "w"),
                    *("--channels", str(args.channels)),
                    *("--open-batch", "200"),
                    *("--expect", "1"),
                    *("--timeout", str(args.stream_duration + 60)),
                    *("--out", str(out)),
                ),
                work / "subscribers.log",
                stdout_pipe=True,
            )
            try:
                line = await asyncio.to_thread(worker.process.stdout.readline)  # type: ignore[union-attr]
                if line.strip() != b"READY":
                    raise RuntimeError(f"the streams did not open:\n{worker.log_tail()}")
                await asyncio.sleep(1)
                # Stream i watches session w{i}: webhook i goes to the stream i % streams.
                bodies = [
                    webhook_body("expiry", f"w{i % args.streams:07d}")
                    if i < args.streams
                    else webhook_body("expiry", f"x{i:07d}")
                    for i in range(count)
                ]
                meter_start = cpu_seconds(service.pid)
                result = await open_loop_url(
                    url, bodies, rate=args.stream_rate, connections=64, keep_responses=True
                )
                streams_us = (cpu_seconds(service.pid) - meter_start) / count * 1e6
                await asyncio.to_thread(worker.process.wait, args.stream_duration + 90)
            finally:
                worker.stop()
        received = json.loads(out.read_text())["subscribers"]
    finally:
        service.stop()
    sent: dict[int, int] = {}
    problems = []
    for index, answer in enumerate(result.responses or []):
        if index >= args.streams:
            continue
        events = json.loads(answer)["events"] if answer else []
        if len(events) != 1:
            problems.append(f"webhook {index} answered {answer[:100]!r}")
            continue
        sent[events[0]["sequence"]] = result.send_ns[index]
    latencies = []
    for index, log in enumerate(received[: min(args.streams, count)]):
        if log["sequences"] and log["sequences"][0] in sent:
            latencies.append(log["received_ns"][0] - sent[log["sequences"][0]])
        else:
            problems.append(f"stream {index}: {log['error'] or 'got a wrong event'}")
    return StreamsRun(
        streams=args.streams,
        rate=args.stream_rate,
        webhooks=count,
        alone_cpu_us=alone_us,
        streams_cpu_us=streams_us,
        latency=Summary.of_ns(latencies),
        delivered=len(latencies),
        problems=problems[:10],
    )


async def part_memory(args: argparse.Namespace, work: Path) -> MemoryRun:
    service, http, _ = gateway(work, "memory", 1)
    url = f"http://127.0.0.1:{http}/webhooks/finbox"
    try:
        async with client_session(64) as session:
            await wait_http_ready(session, f"http://127.0.0.1:{http}/readyz", service)
            warm = [webhook_body("expiry", f"mw{i:07d}") for i in range(2000)]
            await closed_loop(session, url, warm, concurrency=64)
            await asyncio.sleep(1)
            before = rss_bytes(service.pid)
            bodies = [webhook_body("expiry", f"m{i:07d}") for i in range(args.subjects)]
            loaded = await closed_loop(session, url, bodies, concurrency=64)
            if loaded.failed:
                raise RuntimeError(f"{loaded.failed} webhooks failed: {loaded.errors}")
            await asyncio.sleep(1)
            after = rss_bytes(service.pid)
    finally:
        service.stop()
    return MemoryRun(args.subjects, before, after)


def report(
    args: argparse.Namespace,
    machine: dict[str, Any],
    runs: list[WrkRun],
    streams: StreamsRun | None,
    memory: MemoryRun | None,
    elapsed: float,
    quiet: float,
) -> tuple[str, list[str]]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"statusgate scale benchmark, {now}, revision {machine.get('revision', '?')}",
        f"command: {shlex.join(['python', '-m', 'bench.bench_scale', *sys.argv[1:]])}",
        f"machine: {machine.get('nproc')} CPUs ({machine.get('cpu', '?')}), "
        f"Python {machine.get('python')}, Linux {machine.get('kernel')}, "
        f"SQLite file on {machine.get('filesystem')}",
        f"measured in {elapsed:.0f} s; load average before the run: {quiet:.2f}",
        "",
    ]
    problems: list[str] = []
    verdicts: list[str] = []
    noisy: list[str] = []
    if runs:
        lines.append(
            f"Max load: wrk -t{args.threads} -c{args.connections}, {args.duration:g} s per "
            "run after a 2 s warm-up; CPU of the server's whole process tree"
        )
        lines.append("")
        rows = []
        for kind in args.payloads:
            base = next(r for r in runs if r.kind == kind and r.server == BASELINE)
            for run in (r for r in runs if r.kind == kind):
                is_base = run is base
                rows.append(
                    [
                        kind,
                        run.server,
                        f"{run.throughput:,.0f}",
                        "" if is_base else f"{run.throughput / base.throughput:.2f}x",
                        ms(run.p50_ms),
                        ms(run.p99_ms),
                        str(run.non_2xx) + (f" ({run.socket_errors})" if run.socket_errors else ""),
                        f"{run.cpu_seconds / run.seconds:.2f}",
                        f"{run.cpu_us:.0f} µs",
                        "" if is_base else f"{run.cpu_us / base.cpu_us:.2f}x",
                        f"{run.wrk_cpu_seconds / run.seconds:.2f}",
                        f"{run.others_cpu_seconds / run.seconds:.2f}",
                    ]
                )
                if run.others_cpu_seconds / run.seconds > OTHER_LOAD_WARNING:
                    noisy.append(f"{run.server} {kind}")
                if run.non_2xx:
                    problems.append(f"{run.server} {kind}: {run.non_2xx} non-2xx answers")
            one = next(r for r in runs if r.kind == kind and r.server == f"{GATEWAY} x1")
            many = next(
                r for r in runs if r.kind == kind and r.server == f"{GATEWAY} x{args.workers}"
            )
            cpu = one.cpu_us / base.cpu_us
            verdicts.append(
                _aim(
                    f"CPU per webhook <= {CPU_AIM}x the bare handler's ({kind})",
                    cpu <= CPU_AIM,
                    f"{cpu:.2f}x",
                )
            )
            ratio = one.throughput / base.throughput
            verdicts.append(
                _aim(
                    f"throughput >= {THROUGHPUT_AIM}x the bare handler, one process ({kind})",
                    ratio >= THROUGHPUT_AIM,
                    f"{ratio:.2f}x",
                )
            )
            ratio = many.throughput / base.throughput
            verdicts.append(
                _aim(
                    f"throughput >= {WORKERS_AIM}x the bare handler, "
                    f"--workers {args.workers} ({kind})",
                    ratio >= WORKERS_AIM,
                    f"{ratio:.2f}x",
                )
            )
        headers = [
            "payload",
            "server",
            "webhooks/s",
            "ratio",
            "ack p50",
            "ack p99",
            "non-2xx",
            "server cores",
            "CPU per request",
            "ratio",
            "wrk cores",
            "others' cores",
        ]
        lines += [format_table(headers, rows), ""]
    if streams is not None:
        lines.append(
            f"{streams.streams:,} Watch streams, each filtering on its own session, "
            f"{streams.rate:g} webhooks/s for {streams.webhooks / streams.rate:g} s (one process)"
        )
        lines.append("")
        ratio = streams.streams_cpu_us / streams.alone_cpu_us
        rows = [
            [
                "gateway CPU per webhook",
                f"{streams.streams_cpu_us:.0f} µs",
                f"{streams.alone_cpu_us:.0f} µs",
                f"{ratio:.2f}x",
            ],
            ["webhook → its watcher p50", ms(streams.latency.p50), "", ""],
            ["webhook → its watcher p99", ms(streams.latency.p99), "", ""],
            ["webhook → its watcher max", ms(streams.latency.max), "", ""],
            [
                "streams that got their event",
                f"{streams.delivered:,} of {min(streams.streams, streams.webhooks):,}",
                "",
                "",
            ],
        ]
        lines += [
            format_table(["metric", f"{streams.streams:,} streams", "no streams", "ratio"], rows),
            "",
        ]
        verdicts.append(
            _aim(
                f"p99 < {STREAMS_P99_AIM_MS:g} ms with {streams.streams:,} filtered streams",
                streams.latency.p99 < STREAMS_P99_AIM_MS,
                ms(streams.latency.p99),
            )
        )
        verdicts.append(
            _aim(
                f"CPU per webhook <= {STREAMS_CPU_AIM}x with no streams",
                ratio <= STREAMS_CPU_AIM,
                f"{ratio:.2f}x",
            )
        )
        problems += streams.problems
        if streams.delivered != min(streams.streams, streams.webhooks):
            problems.append("not every stream got its event")
    if memory is not None:
        lines.append(
            f"Memory: RSS of one gateway process before and after {memory.subjects:,} new sessions"
        )
        lines.append("")
        rows = [
            [
                f"{memory.before / 2**20:.1f} MiB",
                f"{memory.after / 2**20:.1f} MiB",
                f"{memory.per_subject / 1024:.2f} KiB",
            ]
        ]
        lines += [format_table(["RSS before", "RSS after", "per subject"], rows), ""]
        verdicts.append(
            _aim(
                f"memory per tracked subject <= {MEMORY_AIM / 1024:g} KiB",
                memory.per_subject <= MEMORY_AIM,
                f"{memory.per_subject / 1024:.2f} KiB",
            )
        )
    lines += verdicts
    if noisy:
        lines.append(
            f"WARNING: other processes used more than {OTHER_LOAD_WARNING} cores during "
            f"{', '.join(noisy)}: those figures are distorted; measure on a quiet machine"
        )
    return "\n".join(lines), problems


def _aim(text: str, met: bool, figure: str) -> str:
    return f"aim: {text}: {'met' if met else 'NOT met'} ({figure})"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of ~1 min")
    parser.add_argument(
        "--parts", default="wrk,streams,memory", help="which parts, comma-separated"
    )
    parser.add_argument("--payloads", default="expiry,upload", help="webhook kinds for wrk")
    parser.add_argument(
        "--workers", type=int, default=2, help="the multi-process gateway's --workers (2)"
    )
    parser.add_argument("--duration", type=float, help="seconds per wrk run (10)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1: it needs little)")
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--channels", type=int, default=20, help="connections the streams share")
    parser.add_argument("--stream-rate", type=float, default=100, help="webhooks/s with streams")
    parser.add_argument("--stream-duration", type=float, help="seconds of paced load (20)")
    parser.add_argument("--subjects", type=int, help="new sessions for the memory part (20000)")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    parser.add_argument("--data-dir", type=Path, help="where the temporary files go")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    args.payloads = [p for p in args.payloads.split(",") if p]
    args.parts = set(args.parts.split(","))
    args.duration = args.duration or (4 if args.quick else 10)
    args.stream_duration = args.stream_duration or (8 if args.quick else 20)
    args.subjects = args.subjects or (5000 if args.quick else 20000)
    return args


async def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="statusgate-scale-", dir=args.data_dir))
    quiet = float(Path("/proc/loadavg").read_text().split()[0])
    machine = machine_info(work)
    started = time.monotonic()
    try:
        runs = await part_wrk(args, work) if "wrk" in args.parts else []
        streams = await part_streams(args, work) if "streams" in args.parts else None
        memory = await part_memory(args, work) if "memory" in args.parts else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text, problems = report(args, machine, runs, streams, memory, time.monotonic() - started, quiet)
    print(text)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine,
                    "wrk": [
                        asdict(r) | {"throughput": r.throughput, "cpu_us": r.cpu_us} for r in runs
                    ],
                    "streams": asdict(streams) if streams else None,
                    "memory": asdict(memory) if memory else None,
                },
                indent=2,
                default=str,
            )
        )
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

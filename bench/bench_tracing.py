"""What traces cost: statusgate with tracing off and on, beside a bare aiohttp handler.

    python -m bench.bench_tracing            # the run recorded in BENCHMARKS.md (~1 min)
    python -m bench.bench_tracing --quick    # a smoke run (~20 s)

Real processes on loopback, each phase on its own fresh SQLite file, one after the
other in the same run, ``--rounds`` times (each round starting at another gateway
phase), the same bodies (FinBox ``expiry``: one event per webhook) at
maximum load (closed loop, ``--concurrency`` in flight):

- ``baseline``: ``bench._baseline``, one POST route that reads the body and answers 200;
- ``off``: ``statusgate serve`` with no OTEL_* variable and no ``[tracing]``: no
  provider, no exporter thread;
- ``off + traceparent``: the same, every webhook sending a W3C ``traceparent`` (carried
  into its event's ``trace_parent`` without a span);
- with ``--before-src DIR`` (``git archive REV src | tar -x -C DIR/..``), first the
  gateway of that revision (before tracing existed), as ``off`` is run;
- ``on``: ``statusgate serve`` with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at
  ``bench._otlp_sink`` (a local receiver that decodes every export), every trace
  sampled, each webhook sending a ``traceparent``: a server span, a normalize span and
  its share of a commit span per webhook, exported by the SDK's batch processor.

Reported per phase: acknowledged webhooks per second, the CPU of the server's process
tree (from /proc, the exporter's thread included) per acknowledged webhook, with both
ratios to the baseline's; the sink's own CPU and the spans it received; and what the
rest of the machine used meanwhile (other work on a shared machine skews everything);
then each phase's median over the rounds. The sink counts the spans exported while the
phase ran (the batch processor's last, partial batch may come later).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench._common import (
    JSON_HEADERS,
    OTHERS,
    CpuMeter,
    LoadResult,
    Service,
    client_session,
    cpu_seconds,
    format_table,
    free_port,
    machine_info,
    python_module,
    wait_http_ready,
    webhook_bodies,
)

SERVER = "server"
LOADGEN = "load generator"
SINK = "sink"


@dataclass(frozen=True)
class Phase:
    name: str
    throughput: float
    cpu_us: float
    non_2xx: int
    others_cores: float
    sink_cores: float = 0.0
    spans: int = 0


async def _load(
    session: aiohttp.ClientSession,
    url: str,
    bodies: Sequence[bytes],
    *,
    concurrency: int,
    traceparent: bool,
) -> LoadResult:
    """The closed loop of ``bench._common``, optionally with a fresh ``traceparent`` per
    request (made before the run, so the generator's cost is the same in every phase
    that sends one)."""
    headers = [
        {**JSON_HEADERS, "traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"}
        if traceparent
        else JSON_HEADERS
        for _ in bodies
    ]
    result = LoadResult.empty(len(bodies), keep_responses=False, paced=False)
    indexes = iter(range(len(bodies)))

    async def worker() -> None:
        for index in indexes:
            result.send_ns[index] = time.monotonic_ns()
            try:
                async with session.post(url, data=bodies[index], headers=headers[index]) as answer:
                    await answer.read()
                    result.status[index] = answer.status
            except (aiohttp.ClientError, OSError):
                result.status[index] = 0
            result.done_ns[index] = time.monotonic_ns()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


async def _phase(
    name: str,
    argv: list[str],
    port: int,
    work: Path,
    args: argparse.Namespace,
    *,
    env: dict[str, str] | None = None,
    traceparent: bool = False,
    sink: Service | None = None,
    sink_url: str = "",
) -> Phase:
    server = Service(name, argv, work / f"{name.replace(' ', '-')}.log", env=env)
    try:
        async with client_session(args.concurrency) as session:
            await wait_http_ready(session, f"http://127.0.0.1:{port}/readyz", server)
            url = f"http://127.0.0.1:{port}/webhooks/finbox"
            warm = webhook_bodies("expiry", f"warm-{secrets.token_hex(3)}-", args.warmup)
            await _load(session, url, warm, concurrency=args.concurrency, traceparent=traceparent)
            bodies = webhook_bodies("expiry", f"load-{secrets.token_hex(3)}-", args.requests)
            spans_before = await _spans(session, sink_url)
            pids = {SERVER: server.pid, LOADGEN: os.getpid(), **({SINK: sink.pid} if sink else {})}
            meter = CpuMeter(pids)
            cpu_before = cpu_seconds(server.pid)
            result = await _load(
                session, url, bodies, concurrency=args.concurrency, traceparent=traceparent
            )
            cpu = cpu_seconds(server.pid) - cpu_before
            if sink is not None:
                await asyncio.sleep(0.5)  # the batch processor's last export
            cores = meter.cores()
            spans = await _spans(session, sink_url) - spans_before
        server.check_running()
    finally:
        server.stop()
    return Phase(
        name,
        result.throughput,
        cpu / max(1, result.ok) * 1e6,
        result.failed,
        cores[OTHERS],
        cores.get(SINK, 0.0),
        spans,
    )


async def _spans(session: aiohttp.ClientSession, sink_url: str) -> int:
    if not sink_url:
        return 0
    async with session.get(f"{sink_url}/count") as answer:
        return int(await answer.text())


def _serve(port: int, store: Path) -> list[str]:
    return python_module(
        "statusgate.cli",
        "serve",
        *("--http", f"127.0.0.1:{port}"),
        *("--grpc", f"127.0.0.1:{free_port()}"),
        *("--api", f"127.0.0.1:{free_port()}"),
        *("--store", f"sqlite:///{store}"),
    )


async def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="statusgate-bench-tracing-", dir=args.data_dir))
    # The gateway under test must not inherit the caller's tracing settings.
    untraced = {name: "" for name in os.environ if name.startswith("OTEL_")}
    sink_port = free_port()
    sink = Service(
        SINK, python_module("bench._otlp_sink", "--port", str(sink_port)), work / "sink.log"
    )
    sink_url = f"http://127.0.0.1:{sink_port}"
    phases: list[Phase] = []
    try:
        async with client_session(1) as session:
            await wait_http_ready(session, f"{sink_url}/readyz", sink)
        traced = {
            **untraced,
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url,
            "OTEL_SERVICE_NAME": "statusgate-bench",
        }
        # (name, sends a traceparent, environment, exports to the sink)
        gateways: list[tuple[str, bool, dict[str, str], bool]] = [
            ("off", False, untraced, False),
            ("off + traceparent", True, untraced, False),
            ("on", True, traced, True),
        ]
        if args.before_src is not None:
            before = {**untraced, "PYTHONPATH": str(args.before_src)}
            gateways.insert(0, ("before (no tracing code)", False, before, False))
        for round_ in range(args.rounds):
            port = free_port()
            baseline = python_module("bench._baseline", "--port", str(port))
            phases.append(await _phase("baseline", baseline, port, work, args))
            # Each round in another order: no phase always runs first or last.
            shift = round_ % len(gateways)
            for name, traceparent, env, exports in gateways[shift:] + gateways[:shift]:
                port = free_port()
                serve = _serve(port, work / f"{secrets.token_hex(4)}.db")
                phases.append(
                    await _phase(
                        name,
                        serve,
                        port,
                        work,
                        args,
                        env=env,
                        traceparent=traceparent,
                        sink=sink if exports else None,
                        sink_url=sink_url if exports else "",
                    )
                )
    finally:
        sink.stop()
    report(phases, args, work)
    return 0 if all(p.non_2xx == 0 for p in phases) else 1


def report(phases: Sequence[Phase], args: argparse.Namespace, work: Path) -> None:
    machine = machine_info(work)
    print(
        f"{args.requests} FinBox expiry webhooks per phase at concurrency {args.concurrency}, "
        f"after {args.warmup} warm-up; {machine['nproc']} CPUs ({machine['cpu']}), "
        f"Python {sys.version.split()[0]}, revision {machine['revision']}"
    )
    rows = []
    baseline: Phase | None = None
    for phase in phases:
        if phase.name == "baseline":
            baseline = phase
        assert baseline is not None
        rows.append(
            [
                phase.name,
                f"{phase.throughput:,.0f}/s",
                f"{phase.throughput / baseline.throughput:.2f}x",
                f"{phase.cpu_us:.0f} µs",
                f"{phase.cpu_us / baseline.cpu_us:.2f}x",
                str(phase.non_2xx),
                f"{phase.spans:,}" if phase.spans else "",
                f"{phase.sink_cores:.2f}" if phase.spans else "",
                f"{phase.others_cores:.2f}",
            ]
        )
    print(format_table(HEADERS, rows))
    if args.rounds > 1:
        print(f"\nMedians over the {args.rounds} rounds:")
        medians = []
        base = statistics.median(p.cpu_us for p in phases if p.name == "baseline")
        base_rate = statistics.median(p.throughput for p in phases if p.name == "baseline")
        for name in dict.fromkeys(p.name for p in phases):
            mine = [p for p in phases if p.name == name]
            cpu = statistics.median(p.cpu_us for p in mine)
            rate = statistics.median(p.throughput for p in mine)
            medians.append(
                [
                    name,
                    f"{rate:,.0f}/s",
                    f"{rate / base_rate:.2f}x",
                    f"{cpu:.0f} µs",
                    f"{cpu / base:.2f}x",
                ]
            )
        print(format_table(HEADERS[:5], medians))


HEADERS = [
    "phase",
    "acked/s",
    "÷ baseline",
    "CPU per webhook",
    "÷ baseline",
    "non-2xx",
    "spans received",
    "sink cores",
    "rest of the machine (cores)",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run (~20 s)")
    parser.add_argument("--requests", type=int, help="webhooks per phase (6000)")
    parser.add_argument("--warmup", type=int, help="webhooks sent before each phase (500)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--rounds", type=int, help="times every phase runs (3)")
    parser.add_argument("--data-dir", type=Path, help="where the temp dir for SQLite goes")
    parser.add_argument(
        "--before-src",
        type=Path,
        help="another revision's src (git archive REV src): one more phase runs its gateway",
    )
    args = parser.parse_args(argv)
    args.requests = args.requests or (1500 if args.quick else 6000)
    args.warmup = args.warmup or (200 if args.quick else 500)
    args.rounds = args.rounds or (1 if args.quick else 3)
    return args


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())

"""Ingest and fan-out benchmark: statusgate against a bare aiohttp handler, same load.

    python -m bench.bench_ingest            # the default run (~45 s on 2 cores)
    python -m bench.bench_ingest --quick    # a smoke run (~15 s)

Real processes on loopback: ``statusgate serve`` on a fresh SQLite file (WAL,
synchronous=FULL, group commit), the baseline (``bench._baseline``: one POST route that
reads the body and answers 200), the Watch subscribers (``bench._subscribers``) and this
process, the load generator (one aiohttp ClientSession, one connection pool). Both
servers get the same bodies. Two parts:

1. Ingest at maximum load: a fixed number of webhooks at a fixed concurrency (closed
   loop), per payload kind: throughput of acknowledged webhooks, ack latency, non-2xx.
2. Fan-out at a paced rate (open loop, default 1,000 webhooks/s): ack latency of the
   baseline, of the gateway alone, and of the gateway with 100 WatchStatuses subscribers
   connected; for the latter, the time from the moment the load generator sent a webhook
   to the moment each subscriber had its event, over every (event, subscriber) pair.
   Every subscriber must get every event, in order, without a gap.

See bench/README.md for what is measured where, and BENCHMARKS.md for the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import itertools
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench._common import (
    EVENTS_PER_WEBHOOK,
    OTHERS,
    CpuMeter,
    LoadResult,
    Service,
    Summary,
    client_session,
    closed_loop,
    format_table,
    free_port,
    machine_info,
    ms,
    p99_by_second,
    python_module,
    ratio,
    wait_http_ready,
    webhook_bodies,
)
from bench._rawload import open_loop_url

GATEWAY = "statusgate"
BASELINE = "baseline"
LOADGEN = "load generator"
SUBSCRIBERS = "subscribers"
SUBSCRIBER_AIM_MS = 20.0
THROUGHPUT_AIM = 0.5
OTHER_LOAD_WARNING = 0.15  # cores


# --- results --------------------------------------------------------------------------


@dataclass(slots=True)
class Side:
    """One server's figures for one run."""

    throughput: float
    ack: Summary
    failed: int
    statuses: dict[int, int]
    cpu: dict[str, float]
    send_lag: Summary | None = None
    ack_p99_by_second: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, result: LoadResult, cpu: dict[str, float]) -> Side:
        paced = result.scheduled_ns is not None
        return cls(
            throughput=result.throughput,
            ack=result.ack_latency(),
            failed=result.failed,
            statuses=result.status_counts(),
            cpu=cpu,
            send_lag=result.send_lag() if paced else None,
            ack_p99_by_second=result.ack_p99_by_second() if paced else [],
            errors=result.errors,
        )


@dataclass(slots=True)
class ThroughputPhase:
    kind: str
    requests: int
    concurrency: int
    gateway: Side
    baseline: Side
    bad_answers: int  # 2xx answers of the gateway without the expected events


@dataclass(slots=True)
class Fanout:
    subscribers: int
    expected_events: int
    complete_subscribers: int
    latency: Summary
    per_subscriber_p99_min: float
    per_subscriber_p99_max: float
    p99_by_second: list[float]
    events_per_message: float
    problems: list[str]


@dataclass(slots=True)
class PacedPhase:
    kind: str
    rate: float
    duration: float
    webhooks: int
    baseline: Side
    alone: Side | None  # the gateway without subscribers
    gateway: Side  # the gateway with the subscribers
    fanout: Fanout


# --- phases ---------------------------------------------------------------------------


@dataclass(slots=True)
class Bench:
    args: argparse.Namespace
    session: aiohttp.ClientSession
    gateway: Service
    baseline: Service
    grpc_target: str
    data_dir: Path
    gateway_url: str
    baseline_url: str
    profiles: list[Path] = field(default_factory=list)

    async def throughput(self, kind: str) -> ThroughputPhase:
        args = self.args
        for url in (self.baseline_url, self.gateway_url):
            warm = webhook_bodies(kind, f"warm-{kind}-", args.warmup)
            await closed_loop(self.session, url, warm, concurrency=args.concurrency)
        bodies = webhook_bodies(kind, f"load-{kind}-", args.requests)

        meter = CpuMeter({BASELINE: self.baseline.pid, LOADGEN: os.getpid()})
        base = await closed_loop(
            self.session, self.baseline_url, bodies, concurrency=args.concurrency
        )
        base_side = Side.of(base, meter.cores())

        with self.profile(f"max-{kind}"):
            meter = CpuMeter({GATEWAY: self.gateway.pid, LOADGEN: os.getpid()}, [GATEWAY])
            gw = await closed_loop(
                self.session,
                self.gateway_url,
                bodies,
                concurrency=args.concurrency,
                keep_responses=True,
            )
            gw_side = Side.of(gw, meter.cores())
        expected = EVENTS_PER_WEBHOOK[kind]
        bad = sum(1 for events in answered_events(gw) if len(events) != expected)
        return ThroughputPhase(kind, args.requests, args.concurrency, gw_side, base_side, bad)

    async def paced(self) -> PacedPhase:
        args = self.args
        kind = args.paced_payload
        count = round(args.rate * args.duration)
        bodies = webhook_bodies(kind, f"paced-{kind}-", count)

        base_side = await self._paced_run(self.baseline, self.baseline_url, bodies, {})
        alone = None
        if not args.skip_alone:
            # Same sizes, other session ids: every one is new to the gateway.
            quiet = webhook_bodies(kind, f"quiet-{kind}-", count)
            with self.profile("paced-alone"):
                alone = await self._paced_run(self.gateway, self.gateway_url, quiet, {})

        expected = count * EVENTS_PER_WEBHOOK[kind]
        out = self.data_dir / "subscribers.json"
        timeout = args.duration + 60
        worker = Service(
            SUBSCRIBERS,
            python_module(
                "bench._subscribers",
                *("--target", self.grpc_target),
                *("--subscribers", str(args.subscribers)),
                *("--expect", str(expected)),
                *("--timeout", str(timeout)),
                *("--out", str(out)),
            ),
            self.data_dir / "subscribers.log",
            stdout_pipe=True,
        )
        try:
            await wait_line(worker, "READY", 60)
            await asyncio.sleep(0.5)  # let the streams' connection setup settle
            with self.profile("paced-subscribers"):
                results: list[LoadResult] = []
                gw_side = await self._paced_run(
                    self.gateway, self.gateway_url, bodies, {SUBSCRIBERS: worker.pid}, results
                )
            code = await asyncio.to_thread(worker.process.wait, timeout + 30)
            if code != 0:
                raise RuntimeError(f"the subscriber worker failed:\n{worker.log_tail()}")
        finally:
            worker.stop()
        fanout = join_fanout(results[0], kind, json.loads(out.read_text())["subscribers"])
        return PacedPhase(kind, args.rate, args.duration, count, base_side, alone, gw_side, fanout)

    async def _paced_run(
        self,
        server: Service,
        url: str,
        bodies: list[bytes],
        others: dict[str, int],
        keep: list[LoadResult] | None = None,
    ) -> Side:
        meter = CpuMeter({server.name: server.pid, **others, LOADGEN: os.getpid()}, [GATEWAY])
        # Pre-built requests on raw sockets: aiohttp's client would need most of a core
        # at 1,000/s, and a starved generator sends late (bench/_rawload.py).
        result = await open_loop_url(
            url,
            bodies,
            rate=self.args.rate,
            connections=self.args.max_in_flight,
            keep_responses=keep is not None,
        )
        side = Side.of(result, meter.cores())
        if keep is not None:
            keep.append(result)
        return side

    @contextlib.contextmanager
    def profile(self, phase: str) -> Iterator[None]:
        """py-spy on the gateway during a phase, when --profile is given. Sampling does
        not pause the gateway (--nonblocking) unless native frames are asked for."""
        if self.args.profile is None:
            yield
            return
        output = self.args.profile / f"gateway-{phase}.txt"
        extra = shlex.split(self.args.py_spy_args)
        blocking = [] if "--native" in extra else ["--nonblocking"]
        spy = subprocess.Popen(
            [
                *(self.args.py_spy, "record", "--pid", str(self.gateway.pid), "--rate", "200"),
                *("--format", "raw", "--output", str(output), *blocking, *extra),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)  # attached before the load starts
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)
            _, stderr = spy.communicate(timeout=60)
            if output.exists():
                self.profiles.append(output)
            else:
                print(f"py-spy wrote no profile: {stderr.decode().strip()}", file=sys.stderr)


def answered_events(result: LoadResult) -> list[list[dict[str, Any]]]:
    """The events each 2xx answer of the gateway reported (sequence and name)."""
    assert result.responses is not None
    return [
        json.loads(body).get("events", [])
        for status, body in zip(result.status, result.responses, strict=True)
        if 200 <= status < 300
    ]


def join_fanout(gw: LoadResult, kind: str, subscribers: list[dict[str, Any]]) -> Fanout:
    """Join each subscriber's receive times with the load generator's send times.

    The gateway's answer to webhook i names the sequences of the events it produced,
    so each sequence a subscriber received leads back to the moment webhook i was sent.
    """
    assert gw.responses is not None
    problems: list[str] = []
    sent_at: dict[int, int] = {}
    for index, (status, body) in enumerate(zip(gw.status, gw.responses, strict=True)):
        if not 200 <= status < 300:
            continue
        events = json.loads(body).get("events", [])
        if len(events) != EVENTS_PER_WEBHOOK[kind]:
            problems.append(f"webhook {index} produced {len(events)} events")
        for event in events:
            sent_at[event["sequence"]] = gw.send_ns[index]
    expected = sorted(sent_at)
    if expected and expected != list(range(expected[0], expected[0] + len(expected))):
        problems.append("the acknowledged sequences have gaps")

    sends: list[int] = []
    latencies: list[int] = []
    p99s: list[float] = []
    complete = 0
    messages = 0
    for number, sub in enumerate(subscribers):
        sequences: list[int] = sub["sequences"]
        received: list[int] = sub["received_ns"]
        messages += sub["messages"]
        if sub["error"]:
            problems.append(f"subscriber {number}: {sub['error']}")
        if sequences == expected:
            complete += 1
        else:
            missing = len(set(expected) - set(sequences))
            disorder = any(b != a + 1 for a, b in itertools.pairwise(sequences))
            problems.append(
                f"subscriber {number}: {len(sequences)} events, {missing} missing,"
                f" {'out of order or with gaps' if disorder else 'in order'}"
            )
        mine = [
            (sent_at[seq], at)
            for seq, at in zip(sequences, received, strict=True)
            if seq in sent_at
        ]
        if len(mine) != len(sequences):
            problems.append(f"subscriber {number}: {len(sequences) - len(mine)} unknown events")
        sends.extend(sent for sent, _ in mine)
        latencies.extend(at - sent for sent, at in mine)
        p99s.append(Summary.of_ns([at - sent for sent, at in mine]).p99)
    total_events = sum(len(sub["sequences"]) for sub in subscribers)
    return Fanout(
        subscribers=len(subscribers),
        expected_events=len(expected),
        complete_subscribers=complete,
        latency=Summary.of_ns(latencies),
        per_subscriber_p99_min=min(p99s, default=math.nan),
        per_subscriber_p99_max=max(p99s, default=math.nan),
        p99_by_second=p99_by_second(sends, latencies, min(gw.send_ns)) if sends else [],
        events_per_message=total_events / messages if messages else math.nan,
        problems=problems,
    )


async def wait_line(service: Service, expected: str, timeout: float) -> None:
    """Wait for ``expected`` on the service's stdout (a pipe)."""
    assert service.process.stdout is not None
    stdout = service.process.stdout
    try:
        line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), timeout)
    except TimeoutError:
        raise TimeoutError(f"{service.name} did not print {expected} in {timeout} s") from None
    if line.decode().strip() != expected:
        service.stop()
        raise RuntimeError(f"{service.name} did not start:\n{service.log_tail()}")


# --- the report -----------------------------------------------------------------------

HEADERS = ["metric", "statusgate", "baseline", "ratio"]


def cores(side: Side | None, name: str) -> str:
    value = None if side is None else side.cpu.get(name)
    return "n/a" if value is None else f"{value:.2f}"


def thread_split(side: Side | None) -> str:
    """The gateway's CPU by thread: event loop / Python threads / native threads."""
    if side is None or f"{GATEWAY}/main" not in side.cpu:
        return "n/a"
    return " / ".join(f"{side.cpu[f'{GATEWAY}/{kind}']:.2f}" for kind in THREAD_KINDS)


THREAD_KINDS = ("main", "python", "native")
THREADS_LABEL = "loop / py threads / grpc threads"


def latency_rows(label: str, g: Summary, b: Summary) -> list[list[str]]:
    return [
        [f"{label} p50", ms(g.p50), ms(b.p50), ratio(g.p50, b.p50)],
        [f"{label} p99", ms(g.p99), ms(b.p99), ratio(g.p99, b.p99)],
        [f"{label} max", ms(g.max), ms(b.max), ratio(g.max, b.max)],
    ]


def throughput_table(phases: list[ThroughputPhase]) -> str:
    rows: list[list[str]] = []
    for p in phases:
        g, b = p.gateway, p.baseline
        rows.append(
            [
                f"{p.kind}: throughput (webhooks/s)",
                f"{g.throughput:,.0f}",
                f"{b.throughput:,.0f}",
                ratio(g.throughput, b.throughput),
            ]
        )
        rows += latency_rows(f"{p.kind}: ack latency", g.ack, b.ack)
        rows += [
            [f"{p.kind}: non-2xx answers", str(g.failed), str(b.failed), ""],
            [f"{p.kind}: CPU, server process (cores)", cores(g, GATEWAY), cores(b, BASELINE), ""],
            [f"{p.kind}: CPU, server, {THREADS_LABEL}", thread_split(g), "", ""],
            [f"{p.kind}: CPU, load generator (cores)", cores(g, LOADGEN), cores(b, LOADGEN), ""],
            [f"{p.kind}: CPU, {OTHERS} (cores)", cores(g, OTHERS), cores(b, OTHERS), ""],
        ]
    return format_table(HEADERS, rows)


def paced_table(p: PacedPhase) -> str:
    g, b, a, f = p.gateway, p.baseline, p.alone, p.fanout
    assert g.send_lag is not None and b.send_lag is not None
    n = f.subscribers
    if f.problems:
        events = f"{f.complete_subscribers}/{n} complete: see PROBLEM lines"
    else:
        events = f"all {f.expected_events:,} in order, no gap: {f.complete_subscribers}/{n}"
    rows: list[list[str]] = []
    if a is not None:
        rows += latency_rows("no subscribers: ack latency", a.ack, b.ack)
        rows += [
            ["no subscribers: non-2xx answers", str(a.failed), str(b.failed), ""],
            ["no subscribers: CPU, server (cores)", cores(a, GATEWAY), cores(b, BASELINE), ""],
            [f"no subscribers: CPU, server, {THREADS_LABEL}", thread_split(a), "", ""],
            ["no subscribers: CPU, load generator", cores(a, LOADGEN), cores(b, LOADGEN), ""],
            [f"no subscribers: CPU, {OTHERS}", cores(a, OTHERS), cores(b, OTHERS), ""],
        ]
    rate = f"{n} subscribers: achieved rate (webhooks/s)"
    lag = f"{n} subscribers: send lag behind schedule p99"
    rows += [
        [rate, f"{g.throughput:,.0f}", f"{b.throughput:,.0f}", ""],
        [lag, ms(g.send_lag.p99), ms(b.send_lag.p99), ""],
    ]
    rows += latency_rows(f"{n} subscribers: ack latency", g.ack, b.ack)
    rows += [[f"{n} subscribers: non-2xx answers", str(g.failed), str(b.failed), ""]]
    rows += latency_rows(f"{n} subscribers: webhook → subscriber *", f.latency, b.ack)
    rows += [
        [
            f"{n} subscribers: p99 of the best / worst subscriber",
            f"{ms(f.per_subscriber_p99_min)} / {ms(f.per_subscriber_p99_max)}",
            "n/a",
            "",
        ],
        [f"{n} subscribers: (event, subscriber) pairs", f"{f.latency.count:,}", "n/a", ""],
        [f"{n} subscribers: events per subscriber", events, "n/a", ""],
        [f"{n} subscribers: events per Watch message", f"{f.events_per_message:.1f}", "n/a", ""],
        [f"{n} subscribers: CPU, server (cores)", cores(g, GATEWAY), cores(b, BASELINE), ""],
        [f"{n} subscribers: CPU, server, {THREADS_LABEL}", thread_split(g), "", ""],
        [f"{n} subscribers: CPU, subscriber process", cores(g, SUBSCRIBERS), "n/a", ""],
        [f"{n} subscribers: CPU, load generator", cores(g, LOADGEN), cores(b, LOADGEN), ""],
        [f"{n} subscribers: CPU, {OTHERS}", cores(g, OTHERS), cores(b, OTHERS), ""],
    ]
    return format_table(HEADERS, rows)


def seconds_line(label: str, values: list[float]) -> str:
    return f"{label}: " + " ".join(f"{v:.0f}" for v in values)


def verdicts(phases: list[ThroughputPhase], paced: PacedPhase) -> list[str]:
    lines = []
    for p in phases:
        share = p.gateway.throughput / p.baseline.throughput
        met = "met" if share >= THROUGHPUT_AIM else "NOT met"
        lines.append(
            f"aim: ingest >= {THROUGHPUT_AIM}x the baseline's throughput ({p.kind}):"
            f" {met} ({share:.2f}x)"
        )
    p99 = paced.fanout.latency.p99
    met = "met" if p99 < SUBSCRIBER_AIM_MS else "NOT met"
    lines.append(
        f"aim: webhook → subscriber p99 < {SUBSCRIBER_AIM_MS:g} ms at {paced.rate:,.0f}"
        f" webhooks/s with {paced.fanout.subscribers} subscribers: {met} ({ms(p99)})"
    )
    return lines


def correctness_problems(phases: list[ThroughputPhase], paced: PacedPhase) -> list[str]:
    problems = []
    for p in phases:
        for name, side in ((GATEWAY, p.gateway), (BASELINE, p.baseline)):
            if side.failed:
                problems.append(
                    f"{p.kind}, {name}: {side.failed} non-2xx {side.statuses} {side.errors}"
                )
        if p.bad_answers:
            problems.append(f"{p.kind}: {p.bad_answers} answers without the expected events")
    runs = [("paced", BASELINE, paced.baseline), ("paced", GATEWAY, paced.gateway)]
    if paced.alone is not None:
        runs.append(("paced, no subscribers", GATEWAY, paced.alone))
    for phase, name, side in runs:
        if side.failed:
            problems.append(f"{phase}, {name}: {side.failed} non-2xx {side.statuses}")
    problems += paced.fanout.problems[:20]
    return problems


def report(
    args: argparse.Namespace,
    machine: dict[str, Any],
    phases: list[ThroughputPhase],
    paced: PacedPhase,
    elapsed: float,
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"statusgate ingest and fan-out benchmark, {now}, revision {machine['revision']}",
        f"command: {command_line()}",
        f"machine: {machine['nproc']} CPUs ({machine['cpu']}), Python {machine['python']},"
        f" Linux {machine['kernel']}, SQLite file on {machine['filesystem']}",
        f"measured in {elapsed:.0f} s",
    ]
    if phases:
        lines += [
            "",
            f"Ingest at max load: closed loop, concurrency {args.concurrency},"
            f" {args.requests:,} webhooks per server and payload"
            f" (after {args.warmup:,} warm-up webhooks each)",
            "",
            throughput_table(phases),
        ]
    g, a = paced.gateway, paced.alone
    lines += [
        "",
        f"Fan-out: open loop at {paced.rate:,.0f} webhooks/s for {paced.duration:g} s"
        f" ({paced.webhooks:,} {paced.kind} webhooks per run, at most {args.max_in_flight}"
        f" in flight); the gateway without subscribers, then with"
        f" {paced.fanout.subscribers} WatchStatuses subscribers",
        "",
        paced_table(paced),
        "",
        "* webhook → subscriber: from the load generator sending a webhook to a subscriber"
        " holding its decoded event, over every (event, subscriber) pair. The baseline column"
        " there is the bare handler's ack latency under the same paced load (the webhook"
        " half); the subscriber half has no bare equivalent.",
        "",
        "p99 (ms) per second of the paced runs:",
    ]
    if a is not None:
        lines.append(seconds_line("  ack, no subscribers          ", a.ack_p99_by_second))
    lines += [
        seconds_line(
            f"  ack, {paced.fanout.subscribers} subscribers         ", g.ack_p99_by_second
        ),
        seconds_line(
            f"  webhook → subscriber ({paced.fanout.subscribers})   ",
            paced.fanout.p99_by_second,
        ),
        "",
        *verdicts(phases, paced),
    ]
    sides = [side for p in phases for side in (p.gateway, p.baseline)]
    sides += [side for side in (paced.baseline, paced.alone, paced.gateway) if side is not None]
    busiest = max(side.cpu.get(OTHERS, 0.0) for side in sides)
    if busiest > OTHER_LOAD_WARNING:
        lines.append(
            f"WARNING: other processes used up to {busiest:.2f} cores during a run: the"
            " figures are distorted; measure on a quiet machine"
        )
    return "\n".join(lines)


def summarize_profile(path: Path, top: int = 20) -> str:
    """Top functions by own time and by total time, from py-spy's raw (collapsed) output.
    Line numbers are dropped, so a function's samples add up across its lines; the event
    loop and thread plumbing every stack goes through is left out of the total list."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        samples += count
        frames = [_function(frame) for frame in stack.split(";")]
        own[frames[-1]] += count
        for function in set(frames):
            if not function.endswith(_PLUMBING):
                total[function] += count
    if not samples:
        return f"{path.name}: no samples"
    lines = [f"{path.name}: {samples} samples", "  own time:"]
    lines += [f"    {100 * n / samples:5.1f}%  {fn}" for fn, n in own.most_common(top)]
    lines.append("  total time (the function and what it calls):")
    lines += [f"    {100 * n / samples:5.1f}%  {fn}" for fn, n in total.most_common(top)]
    return "\n".join(lines)


_PLUMBING = (
    "(asyncio/base_events.py)",
    "(asyncio/runners.py)",
    "(asyncio/events.py)",
    "(<frozen runpy>)",
    "(statusgate/cli.py)",
    "(threading.py)",
    "(concurrent/futures/thread.py)",
    "(futures/thread.py)",
)


def _function(frame: str) -> str:
    """``name (/usr/lib/python3.11/asyncio/events.py:123)`` → ``name (asyncio/events.py)``."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(file).parts
    short = "/".join(parts[-2:]) if len(parts) > 1 else file
    return f"{name} ({short})" if where else name


# --- main -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of ~15 s")
    parser.add_argument("--requests", type=int, help="webhooks per max-load run (5000)")
    parser.add_argument("--concurrency", type=int, default=64, help="max-load concurrency")
    parser.add_argument("--warmup", type=int, help="webhooks sent before each run (500)")
    parser.add_argument(
        "--payloads",
        default="expiry,upload",
        help="max-load payload kinds, comma-separated; empty skips the part",
    )
    parser.add_argument("--rate", type=float, default=1000, help="paced webhooks/s (1000)")
    parser.add_argument("--duration", type=float, help="seconds per paced run (10)")
    parser.add_argument("--paced-payload", default="expiry", choices=sorted(EVENTS_PER_WEBHOOK))
    parser.add_argument("--subscribers", type=int, default=100, help="Watch subscribers")
    parser.add_argument(
        "--skip-alone", action="store_true", help="no paced run without subscribers"
    )
    parser.add_argument("--max-in-flight", type=int, default=256, help="paced in-flight cap")
    parser.add_argument("--data-dir", type=Path, help="where the temp dir for SQLite goes")
    parser.add_argument(
        "--workers", default="1", help="the gateway's --workers (a number or auto; 1)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file and logs")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--profile", type=Path, help="write py-spy profiles of the gateway here")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument(
        "--py-spy-args", default="", help="more py-spy record flags, e.g. --py-spy-args=--gil"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.requests = args.requests or (1000 if quick else 5000)
    args.warmup = args.warmup if args.warmup is not None else (200 if quick else 500)
    args.duration = args.duration or (3.0 if quick else 10.0)
    args.payloads = [kind.strip() for kind in args.payloads.split(",") if kind.strip()]
    for kind in args.payloads:
        if kind not in EVENTS_PER_WEBHOOK:
            parser.error(f"unknown payload {kind!r}")
    return args


async def run(args: argparse.Namespace) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="statusgate-bench-", dir=args.data_dir))
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    http_port, grpc_port, baseline_port = free_port(), free_port(), free_port()
    gateway = Service(
        GATEWAY,
        python_module(
            "statusgate.cli",
            "serve",
            *("--http", f"127.0.0.1:{http_port}"),
            *("--grpc", f"127.0.0.1:{grpc_port}"),
            *("--api", f"127.0.0.1:{free_port()}"),
            *("--store", f"sqlite:///{data_dir / 'statusgate.db'}"),
            *(("--workers", str(args.workers)) if args.workers != "1" else ()),
        ),
        data_dir / "gateway.log",
    )
    baseline = Service(
        BASELINE,
        python_module("bench._baseline", "--port", str(baseline_port)),
        data_dir / "baseline.log",
    )
    machine = machine_info(data_dir)
    ok = False
    try:
        async with client_session(max(args.concurrency, args.max_in_flight)) as session:
            await wait_http_ready(session, f"http://127.0.0.1:{http_port}/readyz", gateway)
            await wait_http_ready(session, f"http://127.0.0.1:{baseline_port}/readyz", baseline)
            bench = Bench(
                args=args,
                session=session,
                gateway=gateway,
                baseline=baseline,
                grpc_target=f"127.0.0.1:{grpc_port}",
                data_dir=data_dir,
                gateway_url=f"http://127.0.0.1:{http_port}/webhooks/finbox",
                baseline_url=f"http://127.0.0.1:{baseline_port}/webhooks/finbox",
            )
            started = time.monotonic()
            phases = [await bench.throughput(kind) for kind in args.payloads]
            paced = await bench.paced()
            elapsed = time.monotonic() - started
        gateway.check_running()
        ok = True
    finally:
        gateway_code = gateway.stop()
        baseline.stop()
        if not ok:
            print(f"gateway log ({gateway.log_path}):\n{gateway.log_tail()}", file=sys.stderr)
        if args.keep or not ok:
            print(f"data and logs kept in {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)

    print(report(args, machine, phases, paced, elapsed))
    if gateway_code != 0:
        print(f"\nthe gateway exited with {gateway_code} on SIGTERM", file=sys.stderr)
    for profile in bench.profiles:
        print()
        print(summarize_profile(profile))
    if args.json is not None:
        figures = {
            "machine": machine,
            "command": command_line(),
            "throughput": [asdict(p) for p in phases],
            "paced": asdict(paced),
        }
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    problems = correctness_problems(phases, paced)
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems or gateway_code != 0 else 0


def command_line() -> str:
    return shlex.join(["python", "-m", "bench.bench_ingest", *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

"""What waking up costs: the CPU an asyncio process spends each time it goes idle and
is woken, beside the same work done without going idle, in one run.

At moderate rates the gateway idles between webhooks, and every webhook then costs
wake-ups: the event loop's (the request arrives; the group commit's short delay ends;
the writer thread hands back its result) and the writer thread's (a batch is handed to
it). On some machines, virtual ones especially, one wake-up from idle costs far more CPU
than the work it wakes for, which is why CPU per webhook at 100 or 1,000 webhooks/s is
several times the figure at maximum load. Measured here: the CPU of the whole process
(``getrusage``, every thread), and of the event loop's thread alone as the scheduler
counts it (``/proc/self/schedstat``: exact, not sampled at the timer tick, so it shows
the figures are not an accounting artefact):

- **timer**: ``asyncio.sleep(delay)`` for each ``--delays`` (the loop idles in epoll
  until its timer), against ``asyncio.sleep(0)`` (the same loop iteration, no idling);
- **thread hand-off**: ``run_in_executor`` of a function that returns at once, on a
  one-thread pool as the SQLite writer uses (the thread idles between calls, and the
  loop idles while it runs), against calling the same function inline.

    python -m bench.bench_wakeups [--iterations 2000] [--delays 0.002,0.0005]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench._common import format_table, ratio


def scheduler_cpu() -> float:
    """Seconds of CPU the main thread has run, as the scheduler counts them."""
    return int(Path("/proc/self/schedstat").read_text().split()[0]) / 1e9


def rusage_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


async def measure(step: Callable[[], Awaitable[object]], iterations: int) -> tuple[float, ...]:
    """(loop thread's CPU µs, the process's CPU µs, wall µs) per iteration of ``step``."""
    for _ in range(min(100, iterations)):  # warm
        await step()
    sched, used, wall = scheduler_cpu(), rusage_cpu(), time.perf_counter()
    for _ in range(iterations):
        await step()
    sched, used, wall = scheduler_cpu() - sched, rusage_cpu() - used, time.perf_counter() - wall
    return tuple(value / iterations * 1e6 for value in (sched, used, wall))


def _nothing() -> None:
    return None


async def _inline() -> None:
    _nothing()


async def main_async(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(1, thread_name_prefix="bench-writer")
    cases: list[tuple[str, str, Callable[[], Awaitable[object]]]] = [
        ("timer", "asyncio.sleep(0): no idling (baseline)", lambda: asyncio.sleep(0)),
        *(
            ("timer", f"asyncio.sleep({delay:g}): idle until the timer", _sleeper(delay))
            for delay in args.delays
        ),
        ("thread hand-off", "the function inline (baseline)", _inline),
        (
            "thread hand-off",
            "run_in_executor on a one-thread pool",
            lambda: loop.run_in_executor(pool, _nothing),
        ),
    ]
    rows = []
    baseline = 0.0
    for group, name, step in cases:
        sched, used, wall = await measure(step, args.iterations)
        if "baseline" in name:
            baseline = used
        rows.append(
            [
                group,
                name,
                f"{used:.1f} µs",
                ratio(used, baseline),
                f"{sched:.1f} µs",
                f"{wall:.0f} µs",
            ]
        )
    pool.shutdown()
    print(format_table(["what", "step", "CPU, process", "ratio", "CPU, loop thread", "wall"], rows))


def _sleeper(delay: float) -> Callable[[], Awaitable[None]]:
    return lambda: asyncio.sleep(delay)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.bench_wakeups", description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument(
        "--delays",
        type=lambda text: [float(d) for d in text.split(",")],
        default=[0.002, 0.0005],
        help="timer delays in seconds, comma-separated (0.002: the group commit's delay)",
    )
    args = parser.parse_args(argv)
    print(f"statusgate wake-up benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"command: python -m bench.bench_wakeups {' '.join(argv or [])}".rstrip())
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Process and GC metrics of a supervised gateway (``serve --workers N``).

prometheus-client's multiprocess mode leaves its process and GC collectors out: each
would describe only the worker that happens to answer the scrape. Here they describe
the whole gateway instead:

- ``ProcessTreeCollector`` reads ``/proc`` for the supervisor (this worker's parent)
  and every process under it at scrape time: CPU seconds (with those of the workers
  that died, which the supervisor reaped), resident memory and open descriptors are
  summed, the start time is the supervisor's. It costs a few small
  file reads per process per scrape.
- ``GcCounters`` are ordinary multiprocess counters that each worker brings up to date
  from ``gc.get_stats()`` (on the gauge schedule and before it renders), so the sum over
  the workers' files is the gateway's. Never from a ``gc.callbacks`` hook: it can run
  while this thread holds prometheus-client's (non-reentrant) multiprocess lock.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PROC = Path("/proc")


class ProcessTreeCollector(Collector):
    def __init__(
        self, registry: CollectorRegistry | None, *, root: int | None = None, proc: Path = PROC
    ) -> None:
        # A worker is the supervisor's child (started directly, see ``supervisor``).
        self._root = root if root is not None else os.getppid()
        self._proc = proc
        self._ticks = float(os.sysconf("SC_CLK_TCK"))
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._boot = _boot_time(proc)
        if registry is not None:
            registry.register(self)

    def pids(self) -> list[int]:
        """The root and every process under it (children of any of its threads)."""
        found: list[int] = []
        todo = [self._root]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(p for p in _children(self._proc, pid) if p not in found)
        return found

    def collect(self) -> Iterable[Metric]:
        if self._boot is None:
            return []
        cpu = rss = fds = 0.0
        start: float | None = None
        for pid in self.pids():
            try:
                fields = (self._proc / str(pid) / "stat").read_bytes().rsplit(b")", 1)[1].split()
                opened = len(os.listdir(self._proc / str(pid) / "fd"))
            except (OSError, IndexError):
                continue  # gone meanwhile
            # Fields after the command (stat(5), from field 3 on): utime 14, stime 15,
            # cutime 16, cstime 17, starttime 22, rss 24.
            cpu += (int(fields[11]) + int(fields[12])) / self._ticks
            rss += int(fields[21]) * self._page
            fds += opened
            if pid == self._root:
                start = self._boot + int(fields[19]) / self._ticks
                # And the workers that died, which the supervisor has reaped: without
                # them the counter would go back each time one is replaced.
                cpu += (int(fields[13]) + int(fields[14])) / self._ticks
        metrics: list[Metric] = [
            CounterMetricFamily(
                "process_cpu_seconds",
                "Total user and system CPU time of the gateway's processes, in seconds.",
                value=cpu,
            ),
            GaugeMetricFamily(
                "process_resident_memory_bytes",
                "Resident memory of the gateway's processes, in bytes.",
                value=rss,
            ),
            GaugeMetricFamily(
                "process_open_fds",
                "Open file descriptors of the gateway's processes.",
                value=fds,
            ),
        ]
        if start is not None:
            metrics.append(
                GaugeMetricFamily(
                    "process_start_time_seconds",
                    "Start time of the gateway (its supervisor) since the Unix epoch, in seconds.",
                    value=start,
                )
            )
        return metrics


def _boot_time(proc: Path) -> float | None:
    try:
        for line in (proc / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def _children(proc: Path, pid: int) -> list[int]:
    children: list[int] = []
    try:
        tasks = list((proc / str(pid) / "task").iterdir())
    except OSError:
        return children
    for task in tasks:
        try:
            children.extend(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return children


class GcCounters:
    """python_gc_* as multiprocess counters, brought up to date by ``sync``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._collections = Counter(
            "python_gc_collections",
            "Number of times this generation was collected.",
            ["generation"],
            registry=registry,
        )
        self._collected = Counter(
            "python_gc_objects_collected",
            "Objects collected during gc.",
            ["generation"],
            registry=registry,
        )
        self._uncollectable = Counter(
            "python_gc_objects_uncollectable",
            "Uncollectable objects found during GC.",
            ["generation"],
            registry=registry,
        )
        generations = range(len(gc.get_stats()))
        self._children = [
            (
                self._collections.labels(str(g)),
                self._collected.labels(str(g)),
                self._uncollectable.labels(str(g)),
            )
            for g in generations
        ]
        self._seen = [(0, 0, 0) for _ in generations]
        self.sync()

    def sync(self) -> None:
        """Add what the collector did since the last sync."""
        for generation, stats in enumerate(gc.get_stats()):
            now = (stats["collections"], stats["collected"], stats["uncollectable"])
            for child, current, before in zip(
                self._children[generation], now, self._seen[generation], strict=True
            ):
                if current > before:
                    child.inc(current - before)
            self._seen[generation] = now

"""The process metrics of a supervised gateway, read from a /proc laid out by the test:
what each field adds, and a CPU counter that does not go back when a worker dies."""

from __future__ import annotations

import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry

from statusgate.telemetry.process import ProcessTreeCollector

TICKS = 100  # SC_CLK_TCK on Linux


def write_process(
    proc: Path, pid: int, *, cpu: tuple[int, int], reaped: tuple[int, int], children: list[int]
) -> None:
    """A /proc/PID with its stat (utime, stime, cutime, cstime in ticks), no descriptors
    but one, and its children."""
    fields = ["S", "1", *["0"] * 9, str(cpu[0]), str(cpu[1]), str(reaped[0]), str(reaped[1])]
    fields += ["0"] * 4 + ["1000", "0", "25"] + ["0"] * 20  # starttime 22, rss 24 (pages)
    (proc / str(pid) / "task" / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "stat").write_text(f"{pid} (statusgate) {' '.join(fields)}\n")
    (proc / str(pid) / "task" / str(pid) / "children").write_text(" ".join(map(str, children)))
    (proc / str(pid) / "fd").mkdir()
    (proc / str(pid) / "fd" / "0").write_text("")


def values(collector: ProcessTreeCollector) -> dict[str, float]:
    return {m.name: m.samples[0].value for m in collector.collect()}


def test_cpu_of_the_supervisor_its_workers_and_the_workers_it_reaped(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text("cpu 1 2 3\nbtime 1700000000\n")
    # The supervisor (1 s of its own, 3 s of workers that died and were reaped) and two
    # live workers (2 s and 4 s).
    write_process(tmp_path, 10, cpu=(60, 40), reaped=(200, 100), children=[11, 12])
    write_process(tmp_path, 11, cpu=(150, 50), reaped=(0, 0), children=[])
    write_process(tmp_path, 12, cpu=(300, 100), reaped=(0, 0), children=[])
    collector = ProcessTreeCollector(CollectorRegistry(), root=10, proc=tmp_path)

    found = values(collector)
    assert found["process_cpu_seconds"] == 1 + 3 + 2 + 4
    assert found["process_open_fds"] == 3
    assert found["process_resident_memory_bytes"] == 3 * 25 * collector._page
    assert found["process_start_time_seconds"] == 1700000000 + 1000 / TICKS


def test_a_worker_that_dies_and_is_reaped_takes_no_cpu_seconds_away(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text("btime 1700000000\n")
    write_process(tmp_path, 10, cpu=(60, 40), reaped=(0, 0), children=[11])
    write_process(tmp_path, 11, cpu=(150, 50), reaped=(0, 0), children=[])
    collector = ProcessTreeCollector(CollectorRegistry(), root=10, proc=tmp_path)
    before = values(collector)["process_cpu_seconds"]

    # Worker 11 dies; the supervisor reaps it (its time moves to cutime and cstime) and
    # starts worker 13, which has not run yet.
    shutil.rmtree(tmp_path / "11")
    shutil.rmtree(tmp_path / "10")
    write_process(tmp_path, 10, cpu=(60, 40), reaped=(150, 50), children=[13])
    write_process(tmp_path, 13, cpu=(0, 0), reaped=(0, 0), children=[])

    assert values(collector)["process_cpu_seconds"] == before == 3

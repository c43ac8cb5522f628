"""What a worker process of ``statusgate serve --workers N`` is told by its supervisor.

The supervisor starts each worker as ``statusgate serve ... --worker-role JSON``; the
role says which worker it is, where the supervisor's run directory is (its sockets and
the metrics files of every worker), and which inherited descriptors it holds: the
supervisor's end of a pipe (closed when the supervisor dies, so the worker drains and
exits instead of serving on alone) and, for a SQLite store, the file's lock.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

# The environment variable prometheus-client reads for its multiprocess mode.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True, slots=True)
class WorkerRole:
    index: int
    count: int
    run_dir: str
    # Readable end of a pipe the supervisor holds open: end-of-file means it is gone.
    parent_fd: int
    # The SQLite store's lock, held by the supervisor and all its workers; None for
    # PostgreSQL.
    lock_fd: int | None = None

    @property
    def control_socket(self) -> Path:
        """Where a worker reports it is ready (a datagram to the supervisor)."""
        return Path(self.run_dir) / "supervisor.sock"

    @property
    def metrics_dir(self) -> Path:
        return Path(self.run_dir) / "metrics"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerRole:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)


def worker_count(workers: int | Literal["auto"]) -> int:
    """``workers`` as a number: "auto" is one per CPU this process may run on."""
    if workers == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    return workers

"""One SQLite file for the worker processes of one gateway, and for no one else.

The file's lock. A SQLite store takes an exclusive ``flock`` on ``<file>.lock``: a
second gateway, or ``statusgate replay`` while one runs, is refused. The workers of one
gateway share that lock instead of each taking it: the supervisor takes it and its
workers inherit the locked descriptor (``SqliteSharing.lock_fd``). A flock belongs to
the open file description, which every inherited copy shares, so the workers hold the
lock together, and another process, which must open the file anew, still cannot take
it. It is released when the last of them closes it.

Wake-ups. A worker's hub must hear of the others' commits within milliseconds, without
polling. Each worker binds a unix datagram socket in the supervisor's run directory
(``worker-<i>.sock``), and after every commit that wrote events sends its greatest
sequence to each sibling; the sibling's hub then reads the new events from the file,
gap-free, as a PostgreSQL replica does after a NOTIFY. A datagram that cannot be sent
(the sibling is restarting, its queue is full) is dropped: a restarted worker reads the
last sequence when it starts, and a full queue means wake-ups are already on their way,
each followed by a read that sees everything committed before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from statusgate.store.base import StoreUnavailableError

log = logging.getLogger(__name__)

_SEQUENCE = struct.Struct("!Q")


@dataclass(frozen=True, slots=True)
class SqliteSharing:
    """How one worker shares the file: the inherited, locked descriptor of
    ``<file>.lock``, the directory of the workers' sockets, its index and the number
    of workers."""

    lock_fd: int
    run_dir: Path
    index: int
    count: int


def lock_path(path: Path) -> Path:
    return Path(f"{path}.lock")


def take_lock(path: Path) -> BinaryIO:
    """The exclusive lock on ``path``'s SQLite file; StoreUnavailableError when another
    statusgate process holds it, OSError when the lock file cannot be opened."""
    lock = open(lock_path(path), "a+b")  # noqa: SIM115 - held until the store closes
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise StoreUnavailableError(_in_use(path)) from None
    return lock


def _in_use(path: Path) -> str:
    return (
        f"the SQLite store {path} is in use by another statusgate process: stop that one "
        "first, or give this gateway a store of its own (--store); gateways that share a "
        "store use PostgreSQL (the workers of one gateway share its file)"
    )


def adopt_lock(path: Path, fd: int) -> BinaryIO:
    """The lock the supervisor took and passed down as ``fd``: it must be a descriptor
    of ``path``'s lock file that already holds the lock."""
    try:
        held, expected = os.fstat(fd), os.stat(lock_path(path))
    except OSError as error:
        raise StoreUnavailableError(f"cannot check the lock of {path}: {error}") from error
    if (held.st_dev, held.st_ino) != (expected.st_dev, expected.st_ino):
        raise StoreUnavailableError(f"descriptor {fd} is not the lock of the SQLite store {path}")
    lock = os.fdopen(fd, "a+b")
    try:
        # Succeeds at once on the description that holds the lock; another one is refused.
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise StoreUnavailableError(_in_use(path)) from None
    return lock


class PeerChannel:
    """The datagram sockets between the workers sharing one file."""

    def __init__(self, run_dir: Path, index: int, count: int) -> None:
        self._run_dir = run_dir
        self._index = index
        self._siblings = [self.address(i) for i in range(count) if i != index]
        self._listeners: list[Callable[[int], None]] = []
        self._sock: socket.socket | None = None

    def address(self, index: int) -> str:
        return str(self._run_dir / f"worker-{index}.sock")

    def start(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        path = self.address(self._index)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # left by this worker's predecessor
        sock.bind(path)
        sock.setblocking(False)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._receive)

    def close(self) -> None:
        if self._sock is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        with contextlib.suppress(OSError):
            os.unlink(self.address(self._index))

    def add(self, listener: Callable[[int], None]) -> None:
        self._listeners.append(listener)

    def announce(self, sequence: int) -> None:
        """Tell every sibling that events up to ``sequence`` are committed."""
        sock = self._sock
        if sock is None:
            return
        message = _SEQUENCE.pack(sequence)
        for sibling in self._siblings:
            # Gone (restarting) or its queue is full: see the module's docstring.
            with contextlib.suppress(OSError):
                sock.sendto(message, sibling)

    def _receive(self) -> None:
        sock = self._sock
        greatest = 0
        while sock is not None:
            try:
                message = sock.recv(64)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                log.warning("the workers' wake-up socket failed", exc_info=True)
                break
            if len(message) == _SEQUENCE.size:
                greatest = max(greatest, _SEQUENCE.unpack(message)[0])
        if greatest:
            for listener in self._listeners:
                listener(greatest)

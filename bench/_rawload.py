"""A low-CPU open-loop HTTP load generator: pre-built requests on raw asyncio sockets.

aiohttp's client costs a few hundred µs of CPU per request: at 1,000 webhooks/s the
generator alone took most of a core of the two, and a starved generator sends late,
which inflates every latency it measures. This one writes each request as bytes built
before the run, over keep-alive connections (one request at a time on each, HTTP/1.1),
and parses only the status line, ``Content-Length`` and the body of each answer: tens
of µs per request. It returns the same ``LoadResult`` as ``_common.open_loop``.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from bench._common import LoadResult


def build_request(host: str, port: int, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class _Connection(asyncio.Protocol):
    def __init__(self, result: LoadResult, free: collections.deque[_Connection]) -> None:
        self._result = result
        self._free = free
        self._buffer = bytearray()
        self._index = -1
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()
        self.freed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, index: int, request: bytes) -> None:
        assert self.transport is not None
        self._index = index
        self._result.send_ns[index] = time.monotonic_ns()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end]).decode("latin-1")
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(buffer) < end + 4 + length:
            return
        index = self._index
        result = self._result
        result.done_ns[index] = time.monotonic_ns()
        result.status[index] = int(head.split(" ", 2)[1])
        if result.responses is not None:
            result.responses[index] = bytes(buffer[end + 4 : end + 4 + length])
        del buffer[: end + 4 + length]
        self._index = -1
        self._free.append(self)
        self.freed.set()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._index >= 0:
            self._result.done_ns[self._index] = time.monotonic_ns()
            self._result.status[self._index] = 0
            self._result.errors.append(f"connection lost: {exc!r}")
        if not self.lost.done():
            self.lost.set_result(None)


async def open_loop_raw(
    host: str,
    port: int,
    path: str,
    bodies: Sequence[bytes],
    *,
    rate: float,
    connections: int = 64,
    keep_responses: bool = False,
) -> LoadResult:
    """Body i is due at start + i/rate whether or not earlier ones were answered, on
    the first free one of ``connections`` keep-alive connections (when none is free it
    waits, and ``send_lag`` shows it)."""
    loop = asyncio.get_running_loop()
    requests = [build_request(host, port, path, body) for body in bodies]
    result = LoadResult.empty(len(bodies), keep_responses=keep_responses, paced=True)
    assert result.scheduled_ns is not None
    free: collections.deque[_Connection] = collections.deque()
    pool: list[_Connection] = []
    for _ in range(connections):
        _, protocol = await loop.create_connection(lambda: _Connection(result, free), host, port)
        pool.append(protocol)
        free.append(protocol)
    any_freed = asyncio.Event()
    for protocol in pool:
        protocol.freed = any_freed
    interval_ns = round(1e9 / rate)
    start = time.monotonic_ns()
    for index, request in enumerate(requests):
        due = start + index * interval_ns
        delay = due - time.monotonic_ns()
        if delay > 0:
            await asyncio.sleep(delay / 1e9)
        while not free:
            any_freed.clear()
            await any_freed.wait()
        result.scheduled_ns[index] = due
        free.popleft().send(index, request)
    while len(free) < len(pool):
        any_freed.clear()
        await any_freed.wait()
    for protocol in pool:
        if protocol.transport is not None:
            protocol.transport.close()
    await asyncio.gather(*(p.lost for p in pool))
    return result


async def open_loop_url(
    url: str,
    bodies: Sequence[bytes],
    *,
    rate: float,
    connections: int = 64,
    keep_responses: bool = False,
) -> LoadResult:
    """``open_loop_raw`` to ``http://host:port/path``."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return await open_loop_raw(
        parts.hostname,
        parts.port,
        parts.path,
        bodies,
        rate=rate,
        connections=connections,
        keep_responses=keep_responses,
    )

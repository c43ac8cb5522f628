"""Fixtures of the store contract suite.

Every test that takes ``store`` (or ``store_url``) runs once per backend in ``BACKENDS``:
SQLite on a file in tmp_path, and PostgreSQL on a schema of its own (created by the
store at start-up, dropped at teardown) so that tests and concurrent runs never see
each other's data.

PostgreSQL is the server at ``STATUSGATE_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``). When it cannot be reached, its tests
are skipped, and the reason is written to the terminal once, even under ``-q``.
The helpers below are shared with ``tests/test_replicas.py``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest

from statusgate.store.base import Store
from statusgate.store.factory import open_store

BACKENDS = ["sqlite", "postgres"]

POSTGRES_URL_ENV = "STATUSGATE_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

OpenStore = Callable[[], Awaitable[Store]]

# base URL -> None when reachable, else why not (probed once per run).
_probed: dict[str, str | None] = {}
_reported = False


def postgres_base_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL


def _unreachable_reason(url: str) -> str | None:
    if url not in _probed:

        async def probe() -> None:
            conn = await asyncpg.connect(url, timeout=3)
            await conn.close()

        # Fixtures may run while pytest-asyncio has a loop set up on this thread; the
        # probe gets a thread (and a loop) of its own.
        with ThreadPoolExecutor(1) as pool:
            try:
                pool.submit(asyncio.run, probe()).result()
            except Exception as exc:
                _probed[url] = (
                    f"PostgreSQL is not reachable at {_redacted(url)} ({exc!r});"
                    f" start it or point {POSTGRES_URL_ENV} at one"
                )
            else:
                _probed[url] = None
    return _probed[url]


def require_postgres(config: pytest.Config) -> str:
    """The base URL of the test server, or skip the test saying why."""
    global _reported
    url = postgres_base_url()
    reason = _unreachable_reason(url)
    if reason is None:
        return url
    if not _reported:
        _reported = True
        report(config, f"skipping PostgreSQL tests: {reason}")
    pytest.skip(reason)


def report(config: pytest.Config, line: str) -> None:
    """Write ``line`` to the terminal now, even under ``-q`` and output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    suspended = capture.global_and_fixture_disabled() if capture else nullcontext()
    with suspended:
        reporter.write_line(f"\n{line}", yellow=True)


def new_schema_name() -> str:
    return f"sgtest_{uuid.uuid4().hex[:16]}"


def with_params(url: str, **params: str) -> str:
    """``url`` with query parameters added (or replaced)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))


async def drop_schema(base_url: str, schema: str) -> None:
    conn = await asyncpg.connect(base_url, timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
async def postgres_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A store URL on a fresh schema of the test server, dropped afterwards."""
    base = require_postgres(request.config)
    schema = new_schema_name()
    try:
        yield with_params(base, schema=schema)
    finally:
        await drop_schema(base, schema)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/statusgate.db"
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    raise NotImplementedError(request.param)


@pytest.fixture
async def open_another(store_url: str) -> AsyncIterator[OpenStore]:
    """Opens stores on the test's database (more than one to test reopening) and closes
    whatever is still open at the end."""
    opened: list[Store] = []

    async def open_one() -> Store:
        store = open_store(store_url)
        await store.open()
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_another: OpenStore) -> Store:
    return await open_another()

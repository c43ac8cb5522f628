"""Fixtures of the store contract suite.

Every test that takes ``store`` (or ``store_url``) runs once per backend in ``BACKENDS``.
A new backend (PostgreSQL) is added by naming it there and teaching ``store_url`` how to
give each test an empty database of its own; the tests themselves do not change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from statusgate.store.base import Store
from statusgate.store.factory import open_store

BACKENDS = ["sqlite"]

OpenStore = Callable[[], Awaitable[Store]]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/statusgate.db"
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

"""open_store: the store implementation chosen by URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from statusgate.store.base import PollIngest, StoreUnavailableError
from statusgate.store.factory import open_store
from statusgate.store.sqlite import SqliteStore


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///./statusgate.db", "statusgate.db"),
        ("sqlite:///data/gw.db", "data/gw.db"),
        ("sqlite:////var/lib/statusgate/gw.db", "/var/lib/statusgate/gw.db"),
        ("SQLite:////tmp/x.db", "/tmp/x.db"),
    ],
)
def test_sqlite_urls(url: str, path: str) -> None:
    store = open_store(url)
    assert isinstance(store, SqliteStore)
    assert store.path == Path(path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://gw:hunter2@db/gw?schema=Bad", "schema"),
        ("postgres://db/gw?schema=a&schema=b", "more than one schema"),
        ("mysql://db/gw", "accepted: sqlite:///"),
        ("statusgate.db", "no scheme"),
        ("sqlite://host/x.db", "no host"),
        ("sqlite:///", "does not name a database file"),
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite:///x.db?mode=ro", "parameters"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        open_store(url)
    assert "hunter2" not in str(raised.value)


async def test_the_store_is_returned_unopened(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    assert not await store.ready()
    assert not (tmp_path / "s.db").exists()
    with pytest.raises(StoreUnavailableError):
        await store.ingest(PollIngest(()))

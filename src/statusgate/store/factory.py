"""Choose the store implementation from the configured URL: ``sqlite:///path`` (the
embedded default) or ``postgresql://...`` (shared by replicas)."""

from __future__ import annotations

from pathlib import Path

from statusgate.store.base import Store
from statusgate.store.sqlite import SqliteStore
from statusgate.store.sqlite_shared import SqliteSharing

ACCEPTED = (
    "sqlite:///relative/path, sqlite:////absolute/path,"
    " postgresql://user:password@host:port/database[?schema=name]"
)


def open_store(url: str, *, sharing: SqliteSharing | None = None) -> Store:
    """The store for ``url``, not yet opened: the caller awaits ``store.open()``.

    ``sqlite:///`` is followed by the path, so ``sqlite:///./statusgate.db`` is relative
    to the working directory and ``sqlite:////var/lib/statusgate.db`` is absolute.
    ``postgresql://user:password@host:port/database?schema=name`` is shared by replicas;
    ``schema`` is optional (see ``store.postgres``). ``sharing`` is how a worker of a
    gateway shares a SQLite file with the others (``store.sqlite_shared``).
    """
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator:
        raise ValueError(f"store URL {url!r} has no scheme; accepted: {ACCEPTED}")
    if scheme == "sqlite":
        return SqliteStore(_sqlite_path(url, rest), sharing=sharing)
    if scheme in ("postgresql", "postgres"):
        # Imported here so a SQLite deployment never loads asyncpg.
        from statusgate.store.postgres import PostgresStore

        try:
            return PostgresStore(url)
        except ValueError as error:  # e.g. a malformed ?schema=
            raise ValueError(f"store URL {_redacted(url)!r}: {error}") from None
    raise ValueError(f"unknown store URL scheme {scheme!r}; accepted: {ACCEPTED}")


async def probe_store(url: str) -> str | None:
    """What opening the store at ``url`` would fail with (one line), found without
    opening it: a missing SQLite directory, an unreachable PostgreSQL, a missing
    database. None when it looks openable. Raises ValueError for a malformed URL."""
    scheme = url.partition("://")[0].lower()
    if scheme == "sqlite":
        from statusgate.store.sqlite import probe

        return probe(_sqlite_path(url, url.partition("://")[2]))
    if scheme in ("postgresql", "postgres"):
        from statusgate.store import postgres

        return await postgres.probe(url)
    open_store(url)  # raises, saying what is accepted
    return None


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for other stores); ValueError if malformed."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.lower() != "sqlite":
        return None
    return Path(_sqlite_path(url, rest))


def _sqlite_path(url: str, rest: str) -> str:
    if not rest.startswith("/"):
        raise ValueError(
            f"store URL {url!r}: a SQLite URL has no host; use sqlite:///relative/path"
            " or sqlite:////absolute/path"
        )
    path = rest[1:]
    if not path or path.endswith("/"):
        raise ValueError(f"store URL {url!r} does not name a database file")
    if path == ":memory:":
        # Readers use their own connections, which could not see a private in-memory DB.
        raise ValueError("an in-memory SQLite store is not supported; name a file")
    if "?" in path or "#" in path:
        raise ValueError(f"store URL {url!r}: SQLite URL parameters are not supported")
    return path


def _redacted(url: str) -> str:
    """The URL without its password, which must never reach an error message or a log."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url

"""Versioned SQL migrations, one directory of ``NNNN_description.sql`` files per dialect.

The files ship inside the package (see ``tool.setuptools.package-data``) and are read
through ``importlib.resources`` so they are found in a wheel, a zip or an editable
install alike. Each store applies the pending ones in order, each in its own
transaction, and records them in ``schema_migrations(version)``; this module only finds
and orders them, because how a transaction is run differs per dialect.
"""

from __future__ import annotations

import re
from importlib import resources

DIALECTS = ("sqlite", "postgres")

_FILE_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def load_migrations(dialect: str) -> list[tuple[int, str]]:
    """``(version, sql)`` of every migration of ``dialect``, in version order.

    A file whose name does not follow the pattern, or two files with one version, is an
    error: silently skipping a migration would leave a schema that no code expects.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"unknown migration dialect {dialect!r}; expected one of {DIALECTS}")
    directory = resources.files(__name__).joinpath(dialect)
    if not directory.is_dir():
        return []
    found: dict[int, str] = {}
    for entry in directory.iterdir():
        if not entry.is_file() or not entry.name.endswith(".sql"):
            continue
        match = _FILE_RE.match(entry.name)
        if match is None:
            raise ValueError(
                f"migration file {dialect}/{entry.name} is not named NNNN_description.sql"
            )
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two {dialect} migrations have version {version}")
        found[version] = entry.read_text(encoding="utf-8")
    versions = sorted(found)
    if versions and versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"{dialect} migration versions must be 1..N without gaps: {versions}")
    return [(version, found[version]) for version in versions]

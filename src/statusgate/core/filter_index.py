"""Watch streams filed by their filters, so an event costs only the streams it may reach.

With thousands of Watch streams, each filtering on its own session, matching every
event against every stream's filter costs the number of streams, even with each filter
prepared as sets (``core.filters.PreparedFilter``). A ``FilterIndex`` files each
stream's prepared filter under one of its fields, the most selective it has: its names
(a dict from name), else its prefixes (a dict from prefix; a name looks up each of its
whole-segment prefixes, so the cost is the number of segments of the name), else its
states, kinds or sources (dicts from value), else among the filters that want
everything. An event then meets only the filters filed under its own name, prefixes,
state, kind and source, and each of those is checked in full in constant time per
field: the cost per event is independent of the streams that cannot match it and of the
size of their filters.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

from statusgate.core.filters import PreparedFilter
from statusgate.v1.status_pb2 import Status

K = TypeVar("K", bound=Hashable)


def segment_prefixes(name: str) -> list[str]:
    """Every whole-segment proper prefix of ``name``, shortest first:
    ``a/b/c`` -> ``a``, ``a/b``."""
    out = []
    at = name.find("/")
    while at != -1:
        out.append(name[:at])
        at = name.find("/", at + 1)
    return out


class FilterIndex(Generic[K]):
    """PreparedFilters by key (a stream), filed so that ``match`` finds the keys whose
    filters match a status without looking at the others."""

    def __init__(self) -> None:
        self._filters: dict[K, PreparedFilter] = {}
        # Field -> value -> the keys filed under that value of that field.
        self._tables: dict[str, dict[Hashable, set[K]]] = {
            table: {} for table in ("name", "prefix", "state", "kind", "source")
        }
        self._everything: set[K] = set()

    def __len__(self) -> int:
        return len(self._filters)

    def members(self) -> list[K]:
        return list(self._filters)

    def add(self, key: K, status_filter: PreparedFilter) -> None:
        self.remove(key)
        self._filters[key] = status_filter
        filed = _filing(status_filter)
        if filed is None:
            if not status_filter.nothing:
                self._everything.add(key)
            return
        table = self._tables[filed[0]]
        for value in filed[1]:
            table.setdefault(value, set()).add(key)

    def remove(self, key: K) -> None:
        status_filter = self._filters.pop(key, None)
        if status_filter is None:
            return
        self._everything.discard(key)
        filed = _filing(status_filter)
        if filed is None:
            return
        table = self._tables[filed[0]]
        for value in filed[1]:
            keys = table.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del table[value]

    def match(self, status: Status) -> set[K]:
        """The keys whose filters match ``status``."""
        candidates = set(self._everything)
        tables = self._tables
        name = status.name
        for table, value in (
            ("name", name),
            ("state", status.state),
            ("kind", status.kind),
            ("source", status.source),
        ):
            keys = tables[table].get(value)
            if keys:
                candidates.update(keys)
        by_prefix = tables["prefix"]
        if by_prefix:
            for base in (*segment_prefixes(name), name):
                keys = by_prefix.get(base)
                if keys:
                    candidates.update(keys)
        if not candidates:
            return candidates
        filters = self._filters
        return {key for key in candidates if filters[key].matches(status)}


def _filing(status_filter: PreparedFilter) -> tuple[str, Iterable[Hashable]] | None:
    """The field a filter is filed under and its values: the most selective field it
    has. None for a filter checked against every event (it wants everything, or only
    terminal statuses) or for one that can match nothing (filed nowhere)."""
    if status_filter.nothing:
        return None
    if status_filter.names:
        return "name", status_filter.names
    if status_filter.descendants_of:
        return "prefix", status_filter.descendants_of
    if status_filter.states:
        return "state", status_filter.states
    if status_filter.kinds:
        return "kind", status_filter.kinds
    if status_filter.sources is not None:
        return "source", status_filter.sources
    return None

"""The SELECTs that list deliveries, the same for both stores but for how values are
bound (``?`` or ``$n``) and how times are stored.

Deliveries are listed by (received_at, id), newest first or oldest first, and paged by
keyset: a page starts strictly after the last one's (received_at, id). Every equality
filter has an index that carries that order after it (migration 4), so a page is one
index range scan, read no further than the page, however many deliveries match. A
filter with several sources or verdicts would make either store read every match and
sort it; instead each (source, verdict) pair gets its own scan, limited to the page,
and the union of those small, ordered pieces is sorted (what a "merge append" does).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import datetime

from statusgate.core.deliveries import DeliveryCursor, DeliveryQuery

# Beyond this many (source, verdict) pairs one scan with IN lists is cheaper to plan.
MAX_BRANCHES = 32

COLUMNS = "id, source, received_at, verdict, detail, headers, idempotency_key, path"
BODY_COLUMNS = COLUMNS + ", body"

Bind = Callable[[object], str]


def page_sql(
    query: DeliveryQuery,
    *,
    after: DeliveryCursor | None,
    limit: int,
    oldest_first: bool,
    bodies: bool,
    bind: Bind,
    time: Callable[[datetime], object],
) -> str:
    """The SELECT of one page; ``bind`` appends a value and returns its placeholder,
    ``time`` converts a datetime to the store's representation."""
    direction = "" if oldest_first else " DESC"
    order = f"ORDER BY received_at{direction}, id{direction}"
    common: list[str] = []
    if query.received_after is not None:
        common.append(f"received_at >= {bind(time(query.received_after))}")
    if query.received_before is not None:
        common.append(f"received_at < {bind(time(query.received_before))}")
    if after is not None:
        # A row comparison: both stores use the (…, received_at, id) index for it.
        op = ">" if oldest_first else "<"
        common.append(f"(received_at, id) {op} ({bind(time(after.received_at))}, {bind(after.id)})")
    if query.name:
        base = query.name.rstrip("/")
        # The subject or its descendants, as index ranges (see status_query_sql).
        common.append(
            "id IN (SELECT delivery_id FROM events WHERE delivery_id IS NOT NULL AND"  # noqa: S608
            f" (name = {bind(query.name)} OR (name >= {bind(base + '/')}"
            f" AND name < {bind(base + '0')})))"
        )
    columns = BODY_COLUMNS if bodies else COLUMNS
    sources: Sequence[str | None] = list(dict.fromkeys(query.sources)) or [None]
    verdicts: Sequence[str | None] = list(dict.fromkeys(str(v) for v in query.verdicts)) or [None]
    pairs = list(itertools.product(sources, verdicts))
    if len(pairs) > MAX_BRANCHES:
        clauses = [*common, _any_of("source", sources, bind), _any_of("verdict", verdicts, bind)]
        return _select(columns, clauses, order, bind(limit))
    limit_param = bind(limit)
    branches = []
    for source, verdict in pairs:
        clauses = list(common)
        if source is not None:
            clauses.append(f"source = {bind(source)}")
        if verdict is not None:
            clauses.append(f"verdict = {bind(verdict)}")
        branches.append(_select(columns, clauses, order, limit_param))
    if len(branches) == 1:
        return branches[0]
    union = " UNION ALL ".join(
        f"SELECT * FROM ({branch}) AS b{i}"  # noqa: S608 - only placeholders inside
        for i, branch in enumerate(branches)
    )
    return f"{union} {order} LIMIT {limit_param}"


def events_sql(ids: Sequence[str], bind: Bind) -> str:
    """The events the deliveries ``ids`` produced, in sequence order."""
    placeholders = ", ".join(bind(id_) for id_ in ids)
    return (
        "SELECT delivery_id, sequence, name FROM events"  # noqa: S608 - placeholders only
        f" WHERE delivery_id IN ({placeholders}) ORDER BY sequence"
    )


def _select(columns: str, clauses: list[str], order: str, limit: str) -> str:
    where = " AND ".join(clauses) if clauses else "1 = 1"
    return f"SELECT {columns} FROM deliveries WHERE {where} {order} LIMIT {limit}"  # noqa: S608


def _any_of(column: str, values: Sequence[str | None], bind: Bind) -> str:
    if values == [None]:
        return "1 = 1"
    return f"{column} IN ({', '.join(bind(value) for value in values)})"

"""A filter narrowed to a subject's subtree selects its descendants, never the subject."""

from __future__ import annotations

from statusgate.core.filters import to_query
from statusgate.core.names import name_has_prefix
from statusgate.v1.status_pb2 import StatusFilter

SESSION = "sources/finbox/sessions/s1"


def selects(prefixes: list[str], name: str) -> bool:
    return any(name_has_prefix(name, p) for p in prefixes)


def test_within_a_subject_means_below_it() -> None:
    for status_filter in (
        StatusFilter(),
        StatusFilter(name_prefixes=[SESSION]),
        StatusFilter(name_prefixes=["sources/finbox"]),
    ):
        query = to_query(status_filter, within=SESSION)
        assert query is not None
        assert not selects(list(query.name_prefixes), SESSION)
        assert selects(list(query.name_prefixes), SESSION + "/accounts/a1")
        assert not selects(list(query.name_prefixes), SESSION + "0/accounts/a1")


def test_a_prefix_inside_the_subtree_is_kept_and_one_outside_selects_nothing() -> None:
    inside = to_query(StatusFilter(name_prefixes=[SESSION + "/accounts"]), within=SESSION)
    assert inside is not None and list(inside.name_prefixes) == [SESSION + "/accounts"]
    outside = StatusFilter(name_prefixes=["sources/finbox/sessions/s2"])
    assert to_query(outside, within=SESSION) is None

from __future__ import annotations

import pytest

from statusgate.core.names import (
    InvalidNameError,
    make_name,
    name_has_prefix,
    parse_name,
    parse_source_parent,
)
from statusgate.v1.status_pb2 import Kind


@pytest.mark.parametrize(
    ("name", "kind", "parent"),
    [
        ("sources/finbox/sessions/s1", Kind.KIND_SESSION, ""),
        ("sources/finbox/sessions/s1/accounts/a1", Kind.KIND_ACCOUNT, "sources/finbox/sessions/s1"),
        (
            "sources/finbox/sessions/s1/statements/x",
            Kind.KIND_STATEMENT,
            "sources/finbox/sessions/s1",
        ),
        ("sources/finbox/entities/e1", Kind.KIND_ENTITY, ""),
        (
            "sources/finbox/entities/e1/statements/x",
            Kind.KIND_STATEMENT,
            "sources/finbox/entities/e1",
        ),
        ("sources/bq/payments/p-1", Kind.KIND_PAYMENT, ""),
        ("sources/setu/consents/c1", Kind.KIND_CONSENT, ""),
        ("sources/setu/data-sessions/d1", Kind.KIND_DATA_SESSION, ""),
        (
            "sources/setu/data-sessions/d1/accounts/l1",
            Kind.KIND_ACCOUNT,
            "sources/setu/data-sessions/d1",
        ),
    ],
)
def test_every_collection_of_the_design_table_parses(name: str, kind: int, parent: str) -> None:
    parsed = parse_name(name)
    assert parsed.kind == kind
    assert parsed.parent == parent
    assert str(parsed) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "sessions/s1",
        "sources/finbox/sessions",
        "sources/finbox/sessions/",
        "sources/Finbox/sessions/s1",
        "sources/finbox/widgets/s1",
        "sources/finbox/payments/p1/accounts/a1",
        "sources/finbox/sessions/s1/accounts/a1/extra/x",
        "sources/finbox/sessions/has space",
        "sources//sessions/s1",
    ],
)
def test_malformed_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidNameError):
        parse_name(name)


def test_make_name_validates_provider_ids() -> None:
    assert str(make_name("setu", "consents", "a-b_c.1")) == "sources/setu/consents/a-b_c.1"
    with pytest.raises(InvalidNameError):
        make_name("setu", "consents", "a/b")


def test_prefix_matches_whole_segments_only() -> None:
    assert name_has_prefix("sources/a/sessions/1/accounts/x", "sources/a/sessions/1")
    assert name_has_prefix("sources/a/sessions/1", "sources/a/sessions/1")
    assert not name_has_prefix("sources/a/sessions/10", "sources/a/sessions/1")


def test_source_parent() -> None:
    assert parse_source_parent("sources/finbox-main") == "finbox-main"
    assert parse_source_parent("sources/finbox/sessions/s1") is None
    assert parse_source_parent("finbox") is None


def test_control_characters_are_refused_in_ids() -> None:
    # PostgreSQL text cannot hold NUL; a name with it could never be stored.
    for bad in ("a\x00b", "a\x1fb", "a\x7fb", "abc\n"):
        with pytest.raises(InvalidNameError):
            make_name("s", "sessions", bad)

"""Path templates of google.api.http rules, and how routes are told apart."""

from __future__ import annotations

import pytest

from statusgate.api.http_rules import TemplateError, parse_template


def test_variables_verbs_and_encoding() -> None:
    events = parse_template("/v1/{name=sources/**}:listEvents")
    assert (events.variables, events.verb, events.openapi_path) == (
        ("name",),
        "listEvents",
        "/v1/{name}:listEvents",
    )
    assert events.match("/v1/sources/a/sessions/x:listEvents") == {"name": "sources/a/sessions/x"}
    assert events.match("/v1/sources/a/sessions/x") is None
    get = parse_template("/v1/{name=sources/**}")
    # Percent-encoding is decoded in the value, after matching: %2F is not a separator.
    assert get.match("/v1/sources/a/sessions/x%2Fy%3Await") == {
        "name": "sources/a/sessions/x/y:wait"
    }
    assert get.match("/v1/statuses") is None
    one = parse_template("/v1/deliveries/{id}")
    assert one.match("/v1/deliveries/abc") == {"id": "abc"}
    assert one.match("/v1/deliveries/a/b") is None
    assert one.match("/v1/deliveries:replay") is None
    assert parse_template("/v1/statuses:batchGet").match("/v1/statuses:batchGet") == {}
    # More literal segments sort first among templates without a verb.
    assert one.literals > get.literals


def test_templates_that_cannot_be_served() -> None:
    with pytest.raises(TemplateError):
        parse_template("v1/no-slash")

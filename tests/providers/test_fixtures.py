"""Golden fixtures: every provider payload variant and the canonical statuses it becomes.

Each ``tests/fixtures/<provider>/*.json`` file is::

    {
      "description": "what this variant is and where PROVIDERS.md/DESIGN.md names it",
      "source": {...},          # optional source config (id defaults to the provider)
      "payload": {...},         # the webhook body exactly as the provider sends it
      "expect": [ {...}, ... ]  # the updates, as protobuf JSON (MessageToDict) of Status
    }

or, instead of ``expect``, ``"expect_error": "unknown_shape" | "invalid_payload"``.
Expected statuses are written out in full (names, kinds, parents, states, stages,
terminal, errors, attributes), so a mapping change shows up as a fixture diff.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from pydantic import TypeAdapter

from statusgate.config import SourceConfig
from statusgate.providers.base import InvalidPayloadError, UnknownShapeError
from statusgate.providers.registry import ADAPTERS, adapter_for

FIXTURES = Path(__file__).parent.parent / "fixtures"
_SOURCE = TypeAdapter(SourceConfig)


def fixture_files() -> list[Path]:
    return sorted(FIXTURES.glob("*/*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def source_for(path: Path, fixture: dict[str, Any]) -> SourceConfig:
    provider = path.parent.name
    return _SOURCE.validate_python(
        {"id": provider, "provider": provider, **fixture.get("source", {})}
    )


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fixture(path: Path) -> None:
    fixture = load(path)
    source = source_for(path, fixture)
    adapter = adapter_for(path.parent.name)
    if "expect_error" in fixture:
        error = {"unknown_shape": UnknownShapeError, "invalid_payload": InvalidPayloadError}
        with pytest.raises(error[fixture["expect_error"]]):
            adapter.normalize(source, fixture["payload"])
        return
    statuses = adapter.normalize(source, fixture["payload"])
    got = [MessageToDict(s) for s in statuses]
    assert got == fixture["expect"], fixture["description"]


def test_every_provider_has_fixtures() -> None:
    providers_with_fixtures = {p.parent.name for p in fixture_files()}
    assert providers_with_fixtures >= set(ADAPTERS)

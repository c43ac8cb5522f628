"""Golden fixtures: every provider payload variant and the canonical statuses it becomes.

Each provider's spec names its fixtures folder; each ``*.json`` file there is::

    {
      "description": "what this variant is and which documented behaviour it shows",
      "source": {...},          # optional source config (id defaults to the provider)
      "payload": {...},         # the webhook body exactly as the provider sends it
      "expect": [ {...}, ... ]  # the updates, as protobuf JSON (MessageToDict) of Status
    }

or, instead of ``expect``, ``"expect_error": "unknown_shape" | "invalid_payload"``, and
with an invalid payload, ``"expect_code"``: the provider's own name for the problem
(``InvalidPayloadError.code``), for providers whose answers have a vocabulary of them.
Expected statuses are written out in full (names, kinds, parents, states, stages,
terminal, errors, attributes), so a mapping change shows up as a fixture diff.
``"path"`` is the sub-path of ``/webhooks/{source}`` the payload is posted to (the
source's URL itself when absent).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict

from statusgate.config import SourceConfig
from statusgate.providers.base import InvalidPayloadError, UnknownShapeError
from statusgate.providers.registry import PROVIDERS, Registry
from statusgate.providers.spec import ProviderSpec


def fixture_files(registry: Registry = PROVIDERS) -> list[tuple[ProviderSpec, Path]]:
    return [(spec, path) for spec in registry for path in sorted(spec.fixtures.glob("*.json"))]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def source_for(spec: ProviderSpec, fixture: dict[str, Any]) -> SourceConfig:
    return spec.source_model.model_validate(
        {"id": spec.name, "provider": spec.name, **fixture.get("source", {})}
    )


def check_fixture(spec: ProviderSpec, path: Path) -> None:
    """The contract every adapter meets on every one of its fixtures."""
    fixture = load(path)
    source = source_for(spec, fixture)
    if "expect_error" in fixture:
        error = {"unknown_shape": UnknownShapeError, "invalid_payload": InvalidPayloadError}
        with pytest.raises(error[fixture["expect_error"]]) as raised:
            spec.adapter.normalize(source, fixture["payload"])
        if "expect_code" in fixture:
            assert getattr(raised.value, "code", None) == fixture["expect_code"], str(raised.value)
        return
    statuses = spec.adapter.normalize(source, fixture["payload"])
    got = [MessageToDict(s) for s in statuses]
    assert got == fixture["expect"], fixture["description"]


@pytest.mark.parametrize(
    ("spec", "path"), fixture_files(), ids=lambda v: v.stem if isinstance(v, Path) else v.name
)
def test_fixture(spec: ProviderSpec, path: Path) -> None:
    check_fixture(spec, path)


def test_every_provider_has_fixtures() -> None:
    assert {spec.name for spec, _ in fixture_files()} == set(PROVIDERS.provider_names)

"""Scenarios: realistic sequences of one provider's webhooks, for ``statusgate
simulate`` (an integrator trying a whole flow against a gateway).

A provider's spec lists its scenarios; each step is one of its golden fixtures (the
payloads the contract tests already prove it maps), posted in order to the source's
URL or a sub-path of it. Every run gets fresh provider ids, so a scenario can be run
again and again against one gateway: every id that appears in a fixture's expected
resource names is replaced, wherever it appears as a value in any step's payload, by a
new random id of the same shape. Fixtures were written one at a time, so a step says
which of its ids stand for an earlier step's (``same_as``): FinBox's enrichment
fixture names other accounts than its upload fixture, and a flow needs the same ones.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statusgate.core.names import InvalidNameError, parse_name


@dataclass(frozen=True, slots=True)
class ScenarioStep:
    # The stem of a golden fixture of the provider (``upload_completed``).
    fixture: str
    # The sub-path under the source's URL it is posted to; None: the fixture's own
    # ``path`` ("" when it has none, the URL itself).
    path: str | None = None
    # Ids of this fixture that mean the same subject as an id of an earlier step.
    same_as: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Scenario:
    # As typed on the command line: ``upload-then-enrichment``.
    name: str
    description: str
    steps: tuple[ScenarioStep, ...]
    # What else a provider wants new in every message sent (a message id, a timestamp
    # inside its window): applied to each step's payload after the ids are replaced.
    refresh: Callable[[dict[str, Any]], dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class SimulatedWebhook:
    label: str
    path: str
    body: bytes


def webhooks(
    scenario: Scenario, fixtures: Path, *, fresh: Callable[[str], str] | None = None
) -> list[SimulatedWebhook]:
    """The scenario's requests with fresh ids (``fresh(old) -> new``, by default a
    random id of the same shape)."""
    make = fresh or fresh_id
    loaded = [(step, _load(fixtures, step.fixture)) for step in scenario.steps]
    replacements: dict[str, str] = {}
    for step, document in loaded:
        for old in _ids(document):
            canonical = step.same_as.get(old, old)
            if canonical not in replacements:
                replacements[canonical] = make(canonical)
            replacements[old] = replacements[canonical]
    out = []
    for step, document in loaded:
        payload = _replaced(document["payload"], replacements)
        if scenario.refresh is not None:
            payload = scenario.refresh(payload)
        path = step.path if step.path is not None else str(document.get("path", ""))
        out.append(SimulatedWebhook(step.fixture, path, json.dumps(payload).encode()))
    return out


def fresh_id(old: str) -> str:
    """A random id shaped like ``old``: digits stay digits, hex stays hex, letters keep
    their case, separators stay, so a provider's id format still holds."""
    out = []
    for char in old:
        if char.isdigit():
            out.append(secrets.choice(string.digits))
        elif char in "abcdef":
            out.append(secrets.choice("0123456789abcdef"))
        elif char.islower():
            out.append(secrets.choice(string.ascii_lowercase))
        elif char.isupper():
            out.append(secrets.choice(string.ascii_uppercase))
        else:
            out.append(char)
    return "".join(out)


def _load(fixtures: Path, stem: str) -> dict[str, Any]:
    path = fixtures / f"{stem}.json"
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def _ids(document: Mapping[str, Any]) -> list[str]:
    """The provider ids in a fixture's expected names (``sources/s/c/ID[/c/ID]``)."""
    found: list[str] = []
    for expected in document.get("expect") or []:
        try:
            name = parse_name(str(expected.get("name", "")))
        except InvalidNameError:
            continue
        found.extend(id_ for _, id_ in name.path if id_ not in found)
    return found


def _replaced(value: Any, replacements: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return replacements.get(value, value)
    if isinstance(value, list):
        return [_replaced(item, replacements) for item in value]
    if isinstance(value, dict):
        return {key: _replaced(item, replacements) for key, item in value.items()}
    return value

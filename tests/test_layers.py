"""The package's dependencies point one way: down.

Every ``import`` of ``statusgate`` (at the top, inside functions, under TYPE_CHECKING)
is an arrow from one part to another; each part may only point at the parts below it.
Siblings (``providers`` and ``store``; ``web`` and ``rpc``) never point at each other.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from statusgate.providers.registry import PROVIDERS

SRC = Path(__file__).parent.parent / "src" / "statusgate"

# What each part may import besides itself. Parts are the top-level packages and
# modules of statusgate; ``v1`` is the generated code.
_BASE = {"v1"}
ALLOWED: dict[str, set[str]] = {
    "v1": set(),
    "core": _BASE,
    "logs": set(),
    "config": _BASE | {"core", "logs"},
    # Metrics and traces: everything above reports through it.
    "telemetry": _BASE | {"core", "logs", "config"},
    "upstream": _BASE | {"core", "logs", "config", "telemetry"},
    "providers": _BASE | {"core", "logs", "config", "telemetry", "upstream"},
    "store": _BASE | {"core", "logs", "config", "telemetry"},
    "ingest": _BASE | {"core", "logs", "config", "telemetry", "providers", "store"},
    "poll": _BASE
    | {"core", "logs", "config", "telemetry", "upstream", "providers", "store", "ingest"},
    "web": _BASE | {"core", "logs", "config", "telemetry", "providers", "store", "ingest", "poll"},
    "rpc": _BASE | {"core", "logs", "config", "telemetry", "providers", "store", "ingest", "poll"},
    # The JSON API calls the gRPC services' own objects, admitted by rpc.access; the
    # console's overview shows the poll service's circuit breakers (upstream's).
    "api": _BASE
    | {
        "core",
        "logs",
        "config",
        "telemetry",
        "upstream",
        "providers",
        "store",
        "ingest",
        "poll",
        "rpc",
    },
    "retention": _BASE | {"core", "logs", "config", "telemetry", "store"},
    "replay": _BASE | {"core", "logs", "config", "telemetry", "store", "ingest"},
}
# The command line's side of a running gateway: it signs as web.auth verifies.
ALLOWED["client"] = _BASE | {"core", "logs", "config", "providers", "web"}
_BELOW_APP = set(ALLOWED) - {"client"}
ALLOWED["app"] = _BELOW_APP | {"upstream", "web", "rpc", "api"}
ALLOWED["config_check"] = ALLOWED["app"] | {"app"}
ALLOWED["supervisor"] = _BASE | {"core", "logs", "config", "telemetry", "store"}
ALLOWED["cli"] = ALLOWED["config_check"] | {"config_check", "client", "supervisor"}


def part(module: str) -> str:
    """``statusgate.poll.service`` -> ``poll``; ``statusgate`` alone -> ``""``."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "statusgate":
                found.update(f"statusgate.{alias.name}" for alias in node.names)
            elif node.module.startswith("statusgate."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("statusgate."))
    return found


def sources() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if "v1" not in p.relative_to(SRC).parts[:1]]


def test_every_part_is_placed() -> None:
    parts = {path.relative_to(SRC).parts[0].removesuffix(".py") for path in sources()}
    assert parts - {"__init__"} <= set(ALLOWED), "place the new part in ALLOWED"


def test_dependencies_point_down() -> None:
    upward = []
    for path in sources():
        here = path.relative_to(SRC).parts[0].removesuffix(".py")
        for module in imports_of(path):
            there = part(module)
            if there not in (here, "") and there not in ALLOWED.get(here, set()):
                upward.append(f"{path.relative_to(SRC)} imports {module}")
    assert not upward


def test_only_providers_name_a_provider() -> None:
    names = "|".join(re.escape(name) for name in PROVIDERS.provider_names)
    pattern = re.compile(rf"\b({names})\b", re.IGNORECASE)
    named = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in sources()
        if path.relative_to(SRC).parts[0] != "providers"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not named

"""Comments, docs and tests cite only files that exist: in the repository, or, for what
other projects own, in Python's standard library and the protobuf well-known types. A
fact that lives in a document outside the repository is stated where it is used."""

from __future__ import annotations

import re
import subprocess
import sysconfig
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Documents that were never part of the repository: citing one sends the reader nowhere.
# (Spelt in two parts, so that this file does not name them either.)
NEVER = tuple(f"{stem}.md" for stem in ("DESIGN", "PROVIDERS", "STYLE"))
_EXTENSIONS = "md|py|pyi|proto|toml|sh|json|yaml|yml|sql|txt|cfg|ini"
# A path with at least one directory and a file extension, or any Markdown file name.
_CITATION = re.compile(
    rf"(?<![\w/.-])((?:[\w.-]+/)+[\w.-]+\.(?:{_EXTENSIONS})|[\w-]+\.md)(?![\w/])"
)
# Files other projects own, named by what they are called there (protobuf's import
# paths, gRPC's descriptor names).
_FOREIGN = ("google/protobuf/", "grpc/reflection/")


def repository_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return [name for name in listed if (ROOT / name).is_file()]


@cache
def stdlib_files() -> frozenset[str]:
    base = Path(sysconfig.get_paths()["stdlib"])
    return frozenset(str(p.relative_to(base)) for p in base.rglob("*.py"))


def exists(citation: str, files: set[str], citing: str = "") -> bool:
    """Whether ``citation`` names a file: relative to the citing file (a Markdown
    link), or as the end of a repository path (``core/apply.py``), or a foreign one."""
    cited = citation.removeprefix("./")
    beside = (ROOT / citing).parent / cited
    if citing and beside.resolve().is_relative_to(ROOT) and beside.is_file():
        return True
    if any(name == cited or name.endswith("/" + cited) for name in files):
        return True
    if cited.startswith(_FOREIGN):
        return True
    return any(name == cited or name.endswith("/" + cited) for name in stdlib_files())


def citations(text: str) -> list[str]:
    return [match.group(1) for match in _CITATION.finditer(text)]


def test_every_cited_file_exists() -> None:
    files = repository_files()
    present = set(files)
    missing = []
    for name in files:
        # Generated descriptors are serialized, not prose; this file cites on purpose.
        if name.endswith("_pb2.py") or name == "tests/test_citations.py":
            continue
        try:
            text = (ROOT / name).read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            missing += [
                f"{name}:{number}: {cited}"
                for cited in citations(line)
                if not exists(cited, present, name)
            ]
    assert not missing, "cited but not in the repository:\n" + "\n".join(missing)


def test_the_documents_outside_the_repository_are_never_named() -> None:
    offenders = [
        f"{name}: {document}"
        for name in repository_files()
        for document in NEVER
        if document in (ROOT / name).read_text(errors="replace")
    ]
    assert not offenders, offenders


def test_the_check_sees_a_missing_file() -> None:
    present = set(repository_files())
    assert citations("see ROADMAP.md §4 and docs/configuration.md") == [
        "ROADMAP.md",
        "docs/configuration.md",
    ]
    assert not exists("ROADMAP.md", present)
    assert not exists("docs/gone.md", present)
    assert exists("docs/configuration.md", present)
    assert exists("core/apply.py", present)  # a path under src/statusgate
    assert exists("asyncio/events.py", present)  # the standard library's
    assert exists("../BENCHMARKS.md", present, "docs/postgres.md")  # a relative link
    assert not exists("../BENCHMARKS.md", present, "README.md")

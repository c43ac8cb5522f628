"""``scripts/check-breaking.sh`` (run by ``scripts/test``) refuses a wire-breaking change
to the protos, on a branch and on main itself, and lets a compatible one through.

Each case is a scratch git repository holding a copy of the repository's protos and
buf.yaml; nothing of the real repository is touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check-breaking.sh"
STATUS_PROTO = Path("protos/statusgate/v1/status.proto")
# A field every client reads: removing it breaks them all.
REMOVED_FIELD = "  bool ready_to_fetch = "


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A scratch repository on main whose only commit holds today's protos."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "buf.yaml", repo / "buf.yaml")
    shutil.copytree(ROOT / "protos", repo / "protos")
    shutil.copytree(ROOT / "third_party", repo / "third_party")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "protos")
    return repo


def check(repo: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(SCRIPT), str(repo)], env=env, capture_output=True, text=True, timeout=120
    )


def remove_a_field(repo: Path) -> None:
    path = repo / STATUS_PROTO
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(REMOVED_FIELD)]
    assert len(kept) == len(lines) - 1, "the field to remove is not in status.proto"
    path.write_text("".join(kept))


def add_a_field(repo: Path) -> None:
    path = repo / STATUS_PROTO
    text = path.read_text()
    head, sep, tail = text.partition("message StatusError {\n")
    assert sep
    path.write_text(head + sep + "  string hint = 99;\n" + tail)


def commit(repo: Path, message: str) -> None:
    git(repo, "commit", "-q", "-am", message)


def refused(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode != 0 and "ready_to_fetch" in result.stdout + result.stderr


def test_a_breaking_change_on_a_branch_is_refused(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    remove_a_field(repo)
    commit(repo, "drop a field")
    result = check(repo)
    assert "against the merge base with main" in result.stdout
    assert refused(result), result


def test_a_breaking_change_on_main_is_refused(repo: Path) -> None:
    """On main the merge base is HEAD itself: the check compares with the commit
    before, not main with main."""
    remove_a_field(repo)
    commit(repo, "drop a field")
    result = check(repo)
    assert "against the commit before HEAD" in result.stdout
    assert refused(result), result


def test_a_breaking_change_since_the_last_release_is_refused(repo: Path) -> None:
    git(repo, "tag", "v0.1.0")
    add_a_field(repo)
    commit(repo, "a compatible change")
    remove_a_field(repo)
    commit(repo, "drop a field")
    result = check(repo)
    assert "against the last release tag v0.1.0" in result.stdout
    assert refused(result), result


def test_uncommitted_breakage_is_refused_and_compatible_changes_pass(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    add_a_field(repo)
    commit(repo, "a compatible change")
    result = check(repo)
    assert result.returncode == 0, result
    remove_a_field(repo)  # not committed: the working tree is what is checked
    assert refused(check(repo))

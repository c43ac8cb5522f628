"""``statusgate`` as an operator meets it: every start-up failure is one log line saying
what failed and what to do (no traceback, non-zero exit), log settings are checked,
and the commands explain themselves."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from statusgate import __version__
from statusgate.cli import parser
from tests.process import free_port
from tests.store.conftest import require_postgres


def statusgate(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statusgate.cli", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def the_one_line(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The failure: exactly one JSON log line on stderr, nothing else anywhere."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    line: dict[str, str] = json.loads(lines[0])
    assert line["level"] == "error"
    return line


@contextlib.contextmanager
def listening() -> Iterator[int]:
    """A port some other program holds."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def serve(tmp_path: Path, *flags: str, **env: str) -> subprocess.CompletedProcess[str]:
    defaults = {
        "--http": "127.0.0.1:0",
        "--grpc": "127.0.0.1:0",
        "--store": f"sqlite:///{tmp_path / 'g.db'}",
    }
    given = dict(zip(flags[::2], flags[1::2], strict=True))
    args = [part for flag, value in {**defaults, **given}.items() for part in (flag, value)]
    return statusgate("serve", *args, cwd=tmp_path, env=env)


@pytest.mark.parametrize("listener", ["--http", "--grpc"])
def test_a_busy_port_is_one_line(tmp_path: Path, listener: str) -> None:
    with listening() as port:
        line = the_one_line(serve(tmp_path, listener, f"127.0.0.1:{port}"))
    what = "HTTP" if listener == "--http" else "gRPC"
    assert line["message"] == (
        f"cannot start: cannot listen for {what} on 127.0.0.1:{port}: the address is in use "
        f"(by another gateway or program); stop that one, or choose another port ({listener})"
    )
    # Nothing was opened first: the store was not even created.
    assert not (tmp_path / "g.db").exists()


def test_an_address_of_another_machine_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "statusgate.toml"
    token = "0" * 64
    config.write_text(
        f'allow_plaintext_grpc = true\n[clients.a]\ntoken_sha256 = "{token}"\nsources = ["*"]\n'
    )
    # TEST-NET-1 (RFC 5737): never an address of this machine. Nothing is sent to it.
    line = the_one_line(serve(tmp_path, "--config", str(config), "--grpc", "192.0.2.1:50051"))
    assert line["message"] == (
        "cannot start: cannot listen for gRPC on 192.0.2.1:50051: it is not an address of "
        "this machine; choose one that is (--grpc)"
    )


def test_a_missing_sqlite_directory_is_one_line(tmp_path: Path) -> None:
    line = the_one_line(serve(tmp_path, "--store", "sqlite:///./nowhere/g.db"))
    assert "the directory nowhere does not exist; create it" in line["message"]
    assert "--store" in line["message"]


def test_a_sqlite_store_held_by_another_process_is_one_line(tmp_path: Path) -> None:
    with open(tmp_path / "g.db.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running gateway holds it
        line = the_one_line(serve(tmp_path))
    assert "is in use by another statusgate process: stop that one first" in line["message"]


def test_unreachable_postgresql_is_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    line = the_one_line(serve(tmp_path, "--store", f"postgresql://postgres@127.0.0.1:{port}/x"))
    assert f"cannot reach PostgreSQL at 127.0.0.1:{port}" in line["message"]
    assert "start it" in line["message"]


def test_a_missing_postgresql_database_is_one_line(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    base = urlsplit(require_postgres(request.config))
    url = urlunsplit(base._replace(path="/statusgate_no_such_database"))
    line = the_one_line(serve(tmp_path, "--store", url))
    assert "has no database 'statusgate_no_such_database': create it" in line["message"]


def test_unreadable_tls_files_are_one_line_each(tmp_path: Path) -> None:
    config = tmp_path / "statusgate.toml"
    config.write_text('[grpc_tls]\ncert_file = "missing.crt"\nkey_file = "missing.key"\n')
    result = serve(tmp_path, "--config", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    messages = [json.loads(line)["message"] for line in result.stderr.splitlines()]
    assert messages == [
        f"cannot start: grpc_tls.{name}: cannot read {tmp_path / f'missing.{ext}'}: "
        "No such file or directory"
        for name, ext in (("cert_file", "crt"), ("key_file", "key"))
    ]


def test_start_up_failures_follow_the_log_format(tmp_path: Path) -> None:
    with listening() as port:
        result = serve(
            tmp_path,
            "--http",
            f"127.0.0.1:{port}",
            STATUSGATE_LOG_FORMAT="Text",
            STATUSGATE_LOG_LEVEL="warning",
        )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert " ERROR statusgate: cannot start: cannot listen for HTTP" in line


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("STATUSGATE_LOG_LEVEL", "verbose", "debug, info, warning, error, critical"),
        ("STATUSGATE_LOG_FORMAT", "yaml", "json (the default) or text"),
    ],
)
def test_unknown_log_settings_are_refused_in_one_line(
    tmp_path: Path, variable: str, value: str, accepted: str
) -> None:
    result = statusgate("check-config", "x.toml", cwd=tmp_path, env={variable: value})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"statusgate: {variable}={value!r} is not a "
        f"{'log level' if 'LEVEL' in variable else 'log format'}: use "
        + ("one of " if "LEVEL" in variable else "")
        + f"{accepted} (any case)"
    ]


@pytest.mark.parametrize("level", ["debug", "Info", "WARNING"])
def test_log_levels_in_any_case(tmp_path: Path, level: str) -> None:
    result = statusgate(
        "replay", "--store", f"sqlite:///{tmp_path / 'g.db'}", cwd=tmp_path,
        env={"STATUSGATE_LOG_LEVEL": level},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "examined 0" in result.stdout
    migrated = [json.loads(line) for line in result.stderr.splitlines() if "migration" in line]
    assert bool(migrated) == (level.lower() in ("debug", "info"))


def test_version() -> None:
    result = statusgate("--version", cwd=Path.cwd())
    assert (result.returncode, result.stdout.strip()) == (0, f"statusgate {__version__}")


def _positionals(command: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.Action]]:
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((f"{name} {n}", a) for n, a in _positionals(sub))
        if not action.option_strings:
            yield action.dest, action


def test_every_positional_argument_has_help() -> None:
    found = list(_positionals(parser()))
    assert {name for name, _ in found} >= {"command", "check-config path"}
    for name, action in found:
        assert action.help and action.help != argparse.SUPPRESS, name


@pytest.mark.parametrize(
    "since", ["2026-01-01", "2026-01-01T00:00:00Z", "2026-01-01T05:30:00+05:30", "2026-01-01 00:00"]
)
def test_replay_since_accepts_what_its_help_names(tmp_path: Path, since: str) -> None:
    result = statusgate(
        "replay", "--store", f"sqlite:///{tmp_path / 'g.db'}", "--since", since, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "examined 0" in result.stdout
    help_text = statusgate("replay", "--help", cwd=tmp_path).stdout
    assert "2026-01-01T00:00:00Z" in help_text and "2026-01-01)" in help_text


def test_replay_since_says_what_it_expects(tmp_path: Path) -> None:
    result = statusgate("replay", "--since", "yesterday", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "statusgate replay: error: argument --since: expected an ISO 8601 time "
        "(2026-01-01T00:00:00Z, 2026-01-01T05:30:00+05:30) or date (2026-01-01), not 'yesterday'"
    )

"""The `seqrec` command line: help everywhere, one-line errors, exit code 2 on bad usage."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "kafka" in result.stdout and "Usage" in result.stdout


@pytest.mark.parametrize(
    "args",
    [("--no-such-flag",), ("no-such-command",), ("kafka", "start", "--timeout", "-3")],
)
def test_bad_argument_is_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqrec: error:"), result.stderr
    assert "Traceback" not in result.stderr


def test_every_subcommand_has_help() -> None:
    from pipeline.cli import cli

    def walk(group, path):
        for name, cmd in group.commands.items():
            yield path + [name], cmd
            if hasattr(cmd, "commands"):
                yield from walk(cmd, path + [name])

    for path, cmd in walk(cli, []):
        assert cmd.help, f"`seqrec {' '.join(path)}` has no help text"
        result = run_cli(*path, "--help")
        assert result.returncode == 0, (path, result.stderr)

"""The `seqrec` command line: help everywhere, one-line errors, exit code 2 on bad usage."""

from __future__ import annotations

import subprocess
import sys

import pytest

from seqrec.pipeline.cli import cli, main


def test_installed_entry_point_shows_help() -> None:
    result = subprocess.run([sys.executable, "-m", "seqrec.pipeline.cli", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0
    assert "kafka" in result.stdout and "Usage" in result.stdout


@pytest.mark.parametrize(
    "args",
    [("--no-such-flag",), ("no-such-command",), ("kafka", "start", "--timeout", "-3"),
     ("replay", "/nonexistent-log"), ("evaluate-replay", "/tmp", "--model", "x.pt", "--retrain-every", "often")],
)
def test_bad_argument_is_one_line_and_exit_2(args: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(list(args)) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqrec: error:"), err
    assert "Traceback" not in err


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    def walk(group, path):
        for name, cmd in group.commands.items():
            yield path + [name], cmd
            if hasattr(cmd, "commands"):
                yield from walk(cmd, path + [name])

    commands = list(walk(cli, []))
    assert len(commands) > 10
    for path, cmd in commands:
        assert cmd.help, f"`seqrec {' '.join(path)}` has no help text"
        assert main([*path, "--help"]) == 0, path
        assert "Usage: seqrec " + " ".join(path) in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"seqrec {version('seqrec')}"

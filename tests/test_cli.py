"""``cnn`` names every instructor tool once, and the Makefile goes through it."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest

from cnngrader.tools import cli

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_command(capsys):
    """`cnn` with no command prints the list of subcommands and succeeds."""
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in cli.COMMANDS)


def test_unknown_command_is_refused(capsys):
    """A typo exits 2 and shows the list instead of a traceback."""
    assert cli.main(["grde"]) == 2
    assert "unknown command 'grde'" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_has_a_main(name):
    """Each subcommand's module imports and exposes its entry point (main() unless named)."""
    module, _, function = cli.COMMANDS[name][0].partition(":")
    assert callable(getattr(importlib.import_module(f"cnngrader.{module}"), function or "main"))


def test_a_command_runs_through_the_entry_point(capsys):
    """`cnn limits` reaches the limits module and prints the limits in force."""
    assert cli.main(["limits"]) == 0
    assert "memory" in capsys.readouterr().out.lower()


def test_declared_in_pyproject_with_dependencies():
    """pyproject.toml declares the `cnn` script and the runtime requirements by name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["cnn"] == "cnngrader.tools.cli:main"
    declared = {re.split(r"[<>=!~ ]", d)[0].lower() for d in project["dependencies"]}
    pinned = {line.split("==")[0].lower() for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line and not line.startswith("#")}
    assert pinned <= declared


def test_makefile_uses_the_entry_point():
    """The Makefile's tool targets call `cnn`, not `python -m` module paths."""
    text = (ROOT / "Makefile").read_text()
    assert "-m cnngrader." not in text
    for name in ("grade", "report", "accuracy", "bench", "demo", "figures"):
        assert re.search(rf"\$\(CNN\) {name}\b", text), name

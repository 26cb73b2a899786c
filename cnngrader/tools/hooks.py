"""Run a course tool that belongs to an assignment's content, such as its figures.

An assignment's ``spec.toml`` names its tools in ``[hooks]`` as
``module:function`` inside its grading folder; ``cnn figures`` and
``cnn checks-data`` run that hook for every assignment that declares it (or
only for ``--assignment``). The grading core never calls these.
"""

from __future__ import annotations

import argparse
import sys

from cnngrader.core import i18n, spec


def run(hook: str, argv: list[str] | None = None) -> int:
    """Call ``hook(rest_of_argv)`` of each assignment that has it; the first failure's code, else 0."""
    parser = argparse.ArgumentParser(prog=f"cnn {hook.replace('_', '-')}", add_help=False)
    parser.add_argument("--assignment", action="append", default=None)
    args, rest = parser.parse_known_args(argv)
    names = args.assignment or spec.assignments()
    ran = 0
    for name in names:
        assignment = spec.load(name)
        target = assignment.hooks.get(hook)
        if not target:
            continue
        ran += 1
        code = int(assignment.resolve(target)(rest) or 0)
        if code:
            return code
    if not ran:
        print(f"no assignment declares a {hook!r} hook", file=sys.stderr)
        return 1
    return 0


def assignments(argv: list[str] | None = None) -> int:
    """Print the course's assignments, one per line, in teaching order (for shell loops)."""
    parser = argparse.ArgumentParser(prog="cnn assignments", description=assignments.__doc__)
    parser.add_argument("--editions", action="store_true",
                        help="also every translated edition's assignment id (<id>_<lang>), after the English ones")
    args = parser.parse_args(argv)
    print("\n".join(i18n.all_editions() if args.editions else spec.assignments()))
    return 0


def figures(argv: list[str] | None = None) -> int:
    return run("figures", argv)


def checks_data(argv: list[str] | None = None) -> int:
    return run("checks_data", argv)


def measure(argv: list[str] | None = None) -> int:
    return run("measure", argv)

"""``cnn``: one command for every instructor tool, declared in pyproject.toml.

Each subcommand is a module of this package with its own ``main(argv)``; this
file only names them, so ``cnn grade --help`` is the batch module's own help.
The Makefile calls these subcommands.
"""

from __future__ import annotations

import importlib
import sys

#: subcommand -> (module under cnngrader[:function, default main], one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "grade": ("tools.batch", "grade every submission in submitted/ in parallel, hardened"),
    "report": ("tools.report", "feedback/report.html: histogram, per-function means, failure reasons"),
    "accuracy": ("tools.accuracy", "hidden tests against the mutant and variant catalogues"),
    "visible-accuracy": ("tools.student_loop", "visible checks and Validate against the catalogues"),
    "bench": ("tools.bench", "stock nbgrader against the hardened grader, same run"),
    "demo": ("tools.demo", "the whole course on bundled examples, in demo/"),
    "demo-data": ("tools.submissions", "write the demo's example submissions into a folder"),
    "figures": ("tools.hooks:figures", "redraw each assignment's figures (its spec's figures hook)"),
    "hidden-data": ("core.hidden_data", "build the hidden inputs and expectations"),
    "checks-data": ("tools.hooks:checks_data", "build the visible checks' expected values (checks_data hook)"),
    "measure": ("tools.hooks:measure", "an assignment's own measurements (measure hook), e.g. the capstone's"),
    "assignments": ("tools.hooks:assignments", "list the course's assignments (course.toml), one per line"),
    "translate": ("tools.translate", "translated editions: stale entries, sync, confirm, build"),
    "due-dates": ("glue.term", "record the term's due dates in the gradebook"),
    "limits": ("sandbox.limits", "print every grading limit in force"),
}

#: modules whose main() takes no argument list
_NO_ARGV = {"sandbox.limits", "glue.term"}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: cnn <command> [options]   (cnn <command> --help for its options)", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"cnn: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, _, function = COMMANDS[name][0].partition(":")
    module = importlib.import_module(f"cnngrader.{module_name}")
    entry = getattr(module, function or "main")
    sys.argv = [f"cnn {name}", *rest]  # so each module's argparse names itself "cnn <command>"
    if module_name in _NO_ARGV:
        if rest:
            print(f"cnn {name} takes no options", file=sys.stderr)
            return 2
        return int(entry() or 0)
    return int(entry(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())

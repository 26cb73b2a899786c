"""Does the student's loop tell the truth? ``make visible-accuracy`` (``python -m cnngrader.tools.student_loop``).

Runs the release notebook the way a student's **Run All** and nbgrader's
**Validate** run it (every code cell in order, errors allowed) over the
whole catalogue: the blank release, the reference, every mutant in
the mutant catalogue and every correct variant (``source/<id>/grading/``). For each
notebook it records which functions' visible check cells report a failure
(a ``[FAIL]`` line, or an exception) and which graded test cells raise, as
Validate would report them. It then prints how many mutants their own
function's check catches, how many leak into another function's check, how
many make Validate fail naming only their own function, and how many
variants pass.

It runs in-process and needs no kernel, so the whole catalogue takes seconds.
``--release DIR`` measures another release folder (an older checkout, say);
the check cells are found by their code (``check_<function>(...)``), so any
version of the checks module can be measured the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from nbformat import NotebookNode

from cnngrader.core import paths, spec
from cnngrader.core.reference import grade_id, is_test_cell
from cnngrader.tools import mutants, submissions

_CHECK_CALL = re.compile(r"^\s*check_(\w+)\(", flags=re.M)


@dataclass
class LoopResult:
    """What a student sees after Run All, and what Validate reports, for one notebook."""

    #: function -> the check cell's printed output (with the exception, if it raised)
    check_output: dict[str, str] = field(default_factory=dict)
    #: functions whose visible check reported a failure
    check_failed: set[str] = field(default_factory=set)
    #: function -> the first failing graded test cell's error, as Validate lists it
    validate_failed: dict[str, str] = field(default_factory=dict)


def _test_function(cell: NotebookNode) -> str:
    return spec.load().by_grade_id()[grade_id(cell)].function


def run_notebook(nb: NotebookNode, folder: Path) -> LoopResult:
    """Run every code cell of ``nb`` in order with errors allowed, from ``folder`` (the release folder)."""
    result = LoopResult()
    namespace: dict = {"__name__": "__main__"}
    old_cwd = os.getcwd()
    # The checks module is imported from the folder; a fresh import per notebook keeps caches apart.
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name.startswith("cnn_checks")}
    sys.path.insert(0, str(folder))
    os.chdir(folder)
    try:
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            out = io.StringIO()
            error = None
            try:
                with contextlib.redirect_stdout(out), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a mutant's NumPy warnings are not what is measured
                    exec(compile(cell.source, "<cell>", "exec"), namespace)  # noqa: S102 - the course's fixtures
            except Exception as exc:  # noqa: BLE001 - a failing cell is what Validate and Run All show
                error = f"{type(exc).__name__}: {exc}"
            if is_test_cell(cell):
                if error:
                    result.validate_failed.setdefault(_test_function(cell), error)
                continue
            match = _CHECK_CALL.search(cell.source)
            if match and match.group(1) in spec.load().function_names:
                name = match.group(1)
                result.check_output[name] = out.getvalue() + (f"\n{error}" if error else "")
                if error or "[FAIL]" in out.getvalue():
                    result.check_failed.add(name)
    finally:
        os.chdir(old_cwd)
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n.startswith("cnn_checks")]:
            del sys.modules[name]
        sys.modules.update(saved)
    return result


@dataclass
class Summary:
    blank: LoopResult
    reference: LoopResult
    mutants: dict[str, LoopResult]
    variants: dict[str, LoopResult]

    def slipped(self) -> list[str]:
        """Mutants that their own function's visible check does not catch."""
        return [m for m, r in self.mutants.items() if own(m) not in r.check_failed]

    def unnoticed(self) -> list[str]:
        """Mutants that pass every visible check, of every function."""
        return [m for m, r in self.mutants.items() if not r.check_failed]

    def leaks(self) -> dict[str, list[str]]:
        """Mutant -> other functions whose visible check fails because of it."""
        found = {m: sorted(r.check_failed - {own(m)}) for m, r in self.mutants.items()}
        return {m: fns for m, fns in found.items() if fns}

    def validate_names_own(self) -> list[str]:
        """Mutants for which Validate fails, naming their own function and no other."""
        return [m for m, r in self.mutants.items() if list(r.validate_failed) == [own(m)]]

    def variants_clean(self) -> list[str]:
        return [v for v, r in self.variants.items() if not r.check_failed and not r.validate_failed]


def own(mutant: str) -> str:
    """The function a mutant breaks (its name up to ``__``)."""
    return mutant.split("__", 1)[0]


def measure(release: Path | None = None) -> Summary:
    """Run the whole catalogue against a copy of the release folder ``release`` (default: this course's)."""
    source = release or paths.release_notebook().parent
    with tempfile.TemporaryDirectory(prefix="cnn-loop-") as tmp:
        # A copy, so that importing the checks module leaves no __pycache__ in the release.
        folder = Path(tmp) / source.name
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        # A release folder is named after its assignment id, and so is its notebook (an edition's too).
        notebook = folder / f"{source.name}.ipynb"
        if not notebook.exists():
            notebook = folder / f"{paths.default_assignment()}.ipynb"

        def run(*files: Path) -> LoopResult:
            return run_notebook(submissions.with_files(*files, release=notebook), folder)

        return Summary(
            blank=run_notebook(submissions.read_release(notebook), folder),
            reference=run(),
            mutants={p.stem: run(p) for p in mutants.files()},
            variants={p.stem: run(p) for p in sorted(submissions.variants_dir().glob("*.py"))},
        )


def report(summary: Summary, folder: Path) -> str:
    n_fn, n_m, n_v = len(spec.load().functions), len(summary.mutants), len(summary.variants)
    leaks = summary.leaks()
    slipped = summary.slipped()
    lines = [
        f"student's loop of {folder}",
        f"  blank release: {len(summary.blank.check_failed)}/{n_fn} visible checks fail; "
        f"Validate fails for {len(summary.blank.validate_failed)}/{n_fn} functions",
        f"  reference: {n_fn - len(summary.reference.check_failed)}/{n_fn} visible checks pass; Validate "
        + ("succeeds" if not summary.reference.validate_failed else f"fails for {sorted(summary.reference.validate_failed)}"),
        f"  mutants caught by their own function's visible check: {n_m - len(slipped)}/{n_m}",
        f"  mutants that pass every visible check of every function: {len(summary.unnoticed())}/{n_m}",
        f"  mutants that fail another function's visible check (isolation leaks): {len(leaks)}/{n_m}",
        f"  mutants for which Validate fails naming their own function only: {len(summary.validate_names_own())}/{n_m}",
        f"  variants passing every visible check and Validate: {len(summary.variants_clean())}/{n_v}",
    ]
    if slipped:
        lines.append("  not caught by their own check: " + ", ".join(slipped))
    if summary.unnoticed():
        lines.append("  passing every check: " + ", ".join(summary.unnoticed()))
    for mutant, fns in leaks.items():
        lines.append(f"  leak: {mutant} fails the check of {', '.join(fns)}")
    for variant in sorted(set(summary.variants) - set(summary.variants_clean())):
        lines.append(f"  variant failing: {variant}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", type=Path, default=None,
                        help="release folder holding the notebook and cnn_checks.py (default: this course's)")
    args = parser.parse_args(argv)
    folder = (args.release or paths.release_notebook().parent).resolve()
    summary = measure(folder)
    print(report(summary, folder))
    ok = (not summary.slipped() and not summary.leaks()
          and len(summary.validate_names_own()) == len(summary.mutants)
          and len(summary.variants_clean()) == len(summary.variants))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Build student submissions from the release notebook: the demo's examples and the test fixtures.

A submission is described, not stored: the release notebook with some
solution cells replaced (by the reference, by a mutant from the assignment's ``grading/mutants.toml``
or by any other source), plus optional extra cells or deletions. Building
them from the current release keeps every fixture in step with the notebook.

``python -m cnngrader.tools.submissions --out FOLDER`` writes the demo set (``make demo``
writes it into its own course copy, never into the class's ``submitted/``):

========  ==========================================================
alice     the reference solutions: should score 100
bob       the blank release: should score 0
carol     realistic bugs in three functions (stride forgotten in
          conv_forward, ``=`` instead of ``+=`` in pool_backward,
          ``dz / n_H * n_W`` in distribute_value)
dave      a notebook that is not valid JSON
erin      a submission folder with the notebook missing (renamed)
========  ==========================================================
"""

from __future__ import annotations

import argparse
import ast
import copy
from functools import lru_cache
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from cnngrader.core import paths, reference, spec
from cnngrader.tools import mutants


def variants_dir(assignment: str | None = None) -> Path:
    """The assignment's correct-but-different solutions, beside its spec."""
    return spec.load(assignment).folder / "variants"


def strip_markers(source: str) -> str:
    """Remove nbgrader's solution markers, leaving the code as a student would submit it."""
    return "\n".join(line for line in source.splitlines()
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def reference_cells() -> dict[str, str]:
    """Solution cell sources as a student would submit them (a fresh dict each call)."""
    return dict(_reference_cells(str(paths.source_notebook())))


@lru_cache(maxsize=2)
def _reference_cells(notebook: str) -> dict[str, str]:
    return {gid: strip_markers(src) for gid, src in reference.solution_cells(Path(notebook)).items()}


def read_release(path: Path | None = None) -> NotebookNode:
    """A fresh copy of the release notebook (parsed once per process)."""
    return copy.deepcopy(_read_release(str(path or paths.release_notebook())))


@lru_cache(maxsize=2)
def _read_release(path: str) -> NotebookNode:
    return nbformat.read(path, as_version=4)


def functions_in(source: str) -> list[str]:
    """Names of the top-level functions a file defines."""
    return [node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)]


def build(cells: dict[str, str] | None = None, *, release: Path | None = None, extra: list[str] | None = None,
          drop: list[str] | None = None, edit: dict[str, str] | None = None) -> NotebookNode:
    """The release notebook with solution cells replaced.

    ``cells`` maps a solution ``grade_id`` to its new source; ``extra`` cells
    are appended as plain student cells (inserted right after the setup
    cell, where student code runs before everything else); ``drop`` removes
    cells by grade_id; ``edit`` replaces the source of any cell by grade_id.
    """
    nb = read_release(release)
    cells, drop, edit = cells or {}, set(drop or ()), edit or {}
    kept = []
    for cell in nb.cells:
        gid = reference.grade_id(cell)
        if gid in drop:
            continue
        if gid in cells:
            cell.source = cells[gid]
        if gid in edit:
            cell.source = edit[gid]
        kept.append(cell)
        if gid == "setup":
            for n, src in enumerate(extra or ()):
                new = nbformat.v4.new_code_cell(src)
                new.id = f"student-extra-{n}"
                kept.append(new)
    nb.cells = kept
    return nb


def solved(**kwargs) -> NotebookNode:
    """The release with every function filled in from the reference."""
    cells = reference_cells()
    cells.update(kwargs.pop("cells", None) or {})
    return build(cells, **kwargs)


def with_files(*files: Path, release: Path | None = None) -> NotebookNode:
    """The solved release with each function defined in ``files`` (mutants, variants) swapped in."""
    cells = reference_cells()
    for path in files:
        source = path.read_text()
        for name in functions_in(source):
            cells[name] = source
    return build(cells, release=release)


def mutant(name: str) -> Path:
    """The generated file of the mutant ``name`` (see ``cnngrader.tools.mutants``)."""
    return mutants.path(name)


def write(nb: NotebookNode, submitted: Path, student: str, assignment: str | None = None) -> Path:
    assignment = assignment or paths.default_assignment()
    folder = submitted / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{assignment}.ipynb"
    nbformat.write(nb, str(out))
    return out


def submit_release(root: Path, student: str, assignment: str, cells: dict[str, str] | None = None,
                   solve: bool = True) -> Path:
    """Put a submission of ``assignment`` into ``root/submitted/<student>``: the release folder as a
    student fetched it (data files included), its solution cells filled from the reference (unless
    ``solve`` is false) and then from ``cells``."""
    import shutil

    release = root / "release" / assignment
    folder = root / "submitted" / student / assignment
    shutil.copytree(release, folder)
    solutions = reference.solution_cells(root / "source" / assignment / f"{assignment}.ipynb") if solve else {}
    solutions.update(cells or {})
    nb = build(solutions, release=release / f"{assignment}.ipynb")
    nbformat.write(nb, str(folder / f"{assignment}.ipynb"))
    return folder


#: The capstone's demo: one correct, one blank, one with two bugs (each costs its own function).
CAPSTONE_BUGS = ("relu_backward__kink_passes", "sgd_momentum_update__plain_step")


def write_capstone_demo(root: Path, assignment: str = "train_cnn") -> list[str]:
    """The capstone's demo students in ``root/submitted``: alice solved, bob blank, carol two bugs."""
    submit_release(root, "alice", assignment)
    submit_release(root, "bob", assignment, solve=False)
    bugs = [mutants.by_name(name, assignment=assignment) for name in CAPSTONE_BUGS]
    submit_release(root, "carol", assignment, {m.function: m.source for m in bugs})
    return ["alice", "bob", "carol"]


DEMO_BUGS = ("conv_forward__stride_forgotten", "pool_backward__max_assign_not_add",
             "distribute_value__precedence")


def buggy() -> NotebookNode:
    """carol's notebook: the reference with the three demo bugs."""
    return with_files(*(mutant(bug) for bug in DEMO_BUGS))


def write_edition_demo(root: Path, assignment: str) -> list[str]:
    """A translated edition's demo students: fang solved, gao with carol's three bugs."""
    submit_release(root, "fang", assignment)
    bugs = [mutants.by_name(name, assignment=assignment) for name in DEMO_BUGS]
    submit_release(root, "gao", assignment, {m.function: m.source for m in bugs})
    return ["fang", "gao"]


def write_demo(submitted: Path) -> list[str]:
    """Write the demo students into ``submitted`` and return their ids (nothing else there is touched)."""
    write(solved(), submitted, "alice")
    write(read_release(), submitted, "bob")
    write(buggy(), submitted, "carol")
    assignment = paths.default_assignment()
    bad = submitted / "dave" / assignment
    bad.mkdir(parents=True, exist_ok=True)
    (bad / f"{assignment}.ipynb").write_text('{"cells": [ {"cell_type": "code", "source": "def zero_pad(')
    missing = submitted / "erin" / assignment
    missing.mkdir(parents=True, exist_ok=True)
    nbformat.write(solved(), str(missing / "my_copy_of_the_notebook.ipynb"))
    return ["alice", "bob", "carol", "dave", "erin"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the demo submissions.")
    parser.add_argument("--out", type=Path, required=True, help="a submitted/ folder of a demo or test course")
    args = parser.parse_args(argv)
    if args.out.resolve() == (paths.course_root() / "submitted").resolve():
        parser.error("refusing to write demo students into the class's submitted/ folder (use `make demo`)")
    students = write_demo(args.out)
    print(f"wrote {len(students)} demo submissions to {args.out}: {', '.join(students)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

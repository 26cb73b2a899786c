"""The reference solutions, read from the source notebook.

The solutions are written once, in the solution cells of the instructor
notebook. Everything that needs them (the hidden expected outputs, the helper
swap used for credit isolation, the figures) loads them from there, so the
notebook stays the single source of truth.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import nbformat

from cnngrader.core import paths


def nbgrader_meta(cell: Any) -> dict:
    """A cell's nbgrader metadata (empty for a plain cell)."""
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell: Any) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def is_test_cell(cell: Any) -> bool:
    """A graded test cell: graded, code, and not a student's answer."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def solution_cells(notebook: Path | None = None) -> dict[str, str]:
    """Map ``grade_id`` to source for every solution cell of the notebook."""
    nb = nbformat.read(str(notebook or paths.source_notebook()), as_version=4)
    cells = {}
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type == "code" and meta.get("solution"):
            cells[meta["grade_id"]] = cell.source
    return cells


def source_digest(notebook: Path | None = None) -> str:
    """A digest of the reference solutions, used to detect stale hidden data."""
    h = hashlib.sha256()
    notebook = Path(notebook or paths.source_notebook())
    # The hidden inputs are defined by the grading spec beside the notebook, so a change
    # there must rebuild the data too.
    grading = notebook.parent / "grading"
    for path in sorted(grading.glob("*.toml")) + sorted(grading.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    for src in preamble(notebook):
        h.update(src.encode() + b"\0")
    for grade_id, src in sorted(solution_cells(notebook).items()):
        h.update(grade_id.encode())
        h.update(b"\0")
        h.update(src.encode())
        h.update(b"\0")
    return h.hexdigest()


def exec_cells(sources: list[str]) -> dict[str, Any]:
    """Execute cell sources in a fresh namespace that already has ``np``."""
    import numpy as np

    namespace: dict[str, Any] = {"np": np, "__name__": "reference"}
    for src in sources:
        exec(compile(src, "<reference>", "exec"), namespace)  # noqa: S102 - trusted instructor code
    return namespace


def preamble(notebook: Path) -> list[str]:
    """Reference code the notebook provides, as its grading spec lists under ``[reference]``.

    A later assignment's solutions may call code the course gives: a released
    module (``modules``, files beside the notebook), the names the notebook's
    setup cell binds (``code``) or a given function (``cells``, by cell id). Their sources run first, in the same namespace,
    so the reference needs no files at run time and can be sent to a sandbox.
    """
    spec_file = notebook.parent / "grading" / "spec.toml"
    if not spec_file.exists():
        return []
    import tomllib

    wanted = tomllib.loads(spec_file.read_text(encoding="utf-8")).get("reference", {})
    sources = [(notebook.parent / m).read_text(encoding="utf-8") for m in wanted.get("modules", [])]
    if wanted.get("code"):
        sources.append(str(wanted["code"]))
    cell_ids = wanted.get("cells", [])
    if cell_ids:
        by_id = {c.get("id"): c.source for c in nbformat.read(str(notebook), as_version=4).cells
                 if c.cell_type == "code"}
        missing = [w for w in cell_ids if w not in by_id]
        if missing:
            raise KeyError(f"{notebook.name}: no code cells with ids {missing} ([reference] cells in the spec)")
        sources += [by_id[w] for w in cell_ids]
    return sources


def bundle(notebook: Path) -> str | None:
    """The whole reference as one self-contained source (preamble and every solution), or None without a preamble.

    Credit isolation sends a helper's source to a sandbox; a helper that calls
    other functions of its assignment needs all of them beside it.
    """
    pre = preamble(notebook)
    if not pre:
        return None
    return "\n\n".join([*pre, *solution_cells(notebook).values()])


@lru_cache(maxsize=4)
def _load(notebook: str) -> dict[str, Callable]:
    path = Path(notebook)
    cells = solution_cells(path)
    namespace = exec_cells([*preamble(path), *cells.values()])
    return {name: namespace[name] for name in cells if callable(namespace.get(name))}


def reference_namespace(notebook: Path) -> dict[str, Any]:
    """Everything the reference defines (preamble included), for tools that need the given functions too."""
    return exec_cells([*preamble(notebook), *solution_cells(notebook).values()])


def load_reference(notebook: Path | None = None) -> dict[str, Callable]:
    """The reference solutions, keyed by name (a solution cell's grade id is its function's name)."""
    return dict(_load(str(notebook or paths.source_notebook())))

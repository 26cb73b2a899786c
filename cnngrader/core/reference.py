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


@lru_cache(maxsize=4)
def _load(notebook: str) -> dict[str, Callable]:
    cells = solution_cells(Path(notebook))
    namespace = exec_cells(list(cells.values()))
    return {name: namespace[name] for name in cells if callable(namespace.get(name))}


def load_reference(notebook: Path | None = None) -> dict[str, Callable]:
    """The reference solutions, keyed by name (a solution cell's grade id is its function's name)."""
    return dict(_load(str(notebook or paths.source_notebook())))

"""The mutant catalogue: the reference with one bug, stored as line edits.

An assignment's ``grading/mutants.toml`` holds one table per mutant, named
``<function>__<bug>``, with a one-line ``bug`` description and a list of
``edits`` applied to that function's solution cell in the source notebook:

* ``{ old = "line", new = "line" }`` replaces the one line whose stripped text
  is ``old`` (``new`` may hold several lines; each keeps ``old``'s indentation
  plus its own leading spaces);
* ``{ old = "line", delete = true }`` removes it;
* ``{ after = "line", new = "..." }`` and ``{ before = "line", new = "..." }``
  insert next to an anchor line, at the anchor's indentation.

Every anchor must match exactly one line of the reference function, so an
edit that no longer applies after the reference changes fails loudly rather
than producing a mutant that is silently correct. The full functions are
generated on demand; nothing but the edits is stored.
"""

from __future__ import annotations

import ast
import atexit
import tempfile
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from shutil import rmtree

from cnngrader.core import reference, spec


def catalogue_file(assignment: str | None = None) -> Path:
    """The assignment's mutant catalogue, beside its spec."""
    return spec.load(assignment).folder / "mutants.toml"


class EditError(ValueError):
    """An edit whose anchor line is missing from, or repeated in, the reference."""


@dataclass(frozen=True)
class Mutant:
    name: str
    function: str
    bug: str
    source: str  # a whole module: the docstring, ``import numpy as np``, the mutated function


def _function_source(cell: str, name: str) -> list[str]:
    """The lines of ``def name`` in a solution cell, without nbgrader's markers."""
    lines = cell.splitlines()
    for node in ast.parse(cell).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            body = lines[node.lineno - 1:node.end_lineno]
            return [ln for ln in body if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
    raise EditError(f"the reference has no function {name}")


def _find(lines: list[str], text: str, mutant: str) -> int:
    hits = [i for i, ln in enumerate(lines) if ln.strip() == text.strip()]
    if len(hits) != 1:
        where = "is not in" if not hits else f"occurs {len(hits)} times in"
        raise EditError(f"{mutant}: the line {text!r} {where} the reference")
    return hits[0]


def _indented(new: str, indent: str) -> list[str]:
    return [indent + ln if ln.strip() else "" for ln in new.split("\n")]


def apply_edits(lines: list[str], edits: list[dict], mutant: str = "?") -> list[str]:
    """``lines`` with every edit applied in order (see the module docstring)."""
    out = list(lines)
    for edit in edits:
        keys = set(edit)
        if keys == {"old", "new"} or keys == {"old", "delete"}:
            i = _find(out, edit["old"], mutant)
            indent = out[i][: len(out[i]) - len(out[i].lstrip())]
            out[i:i + 1] = [] if edit.get("delete") else _indented(edit["new"], indent)
        elif keys in ({"after", "new"}, {"before", "new"}):
            anchor = edit.get("after", edit.get("before"))
            i = _find(out, anchor, mutant)
            indent = out[i][: len(out[i]) - len(out[i].lstrip())]
            at = i + 1 if "after" in edit else i
            out[at:at] = _indented(edit["new"], indent)
        else:
            raise EditError(f"{mutant}: an edit needs old+new, old+delete, after+new or before+new, not {sorted(keys)}")
    return out


@lru_cache(maxsize=2)
def _catalogue(path: str, notebook: str) -> tuple[Mutant, ...]:
    with open(path, "rb") as fh:
        table = tomllib.load(fh)
    cells = reference.solution_cells(Path(notebook))
    found = []
    for name, entry in sorted(table.items()):
        function = name.split("__")[0]
        if function not in cells:
            raise EditError(f"{name}: no solution cell for {function}")
        lines = apply_edits(_function_source(cells[function], function), entry["edits"], name)
        source = f'"""{entry["bug"]}"""\nimport numpy as np\n\n\n' + "\n".join(lines) + "\n"
        ast.parse(source)  # a mutant must at least compile; its bug is meant to be semantic
        found.append(Mutant(name, function, entry["bug"], source))
    return tuple(found)


def catalogue(path: Path | None = None, assignment: str | None = None) -> tuple[Mutant, ...]:
    """Every mutant, sorted by name, generated from the current reference."""
    return _catalogue(str(path or catalogue_file(assignment)), str(spec.load(assignment).notebook))


def by_name(name: str, assignment: str | None = None) -> Mutant:
    for mutant in catalogue(assignment=assignment):
        if mutant.name == name:
            return mutant
    raise KeyError(f"no mutant named {name} in {catalogue_file(assignment)}")


@lru_cache(maxsize=1)
def _folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="cnn-mutants-"))
    atexit.register(rmtree, folder, True)
    for mutant in catalogue():
        (folder / f"{mutant.name}.py").write_text(mutant.source)
    return folder


def files() -> list[Path]:
    """One generated ``<name>.py`` per mutant, in a private temporary folder (for code that wants paths)."""
    folder = _folder()
    return [folder / f"{m.name}.py" for m in catalogue()]


def path(name: str) -> Path:
    """The generated file of the mutant ``name``."""
    by_name(name)
    return _folder() / f"{name}.py"

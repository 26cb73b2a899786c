"""Build and read the instructor-side HDF5 file of hidden inputs and expectations.

Layout of ``grader_data/<assignment>_hidden.h5``::

    /            attrs: digest (of the reference solutions), assignment
    /helpers     attrs: <function name> -> reference source of that solution cell
    /checks/<grade_id>/<k>/in/<array>    inputs of case k
    /checks/<grade_id>/<k>/exp/<array>   expected outputs of case k
        attrs: in_tree, exp_tree (JSON from cnngrader.core.codec), describe

Expected outputs come from the reference solutions in the source notebook. For
the backward passes they are numerical gradients, computed here by central
differences of the reference forward pass, and the reference backward pass
must agree with them before the file is written: a wrong reference cannot
produce a file.

Run ``python -m cnngrader.core.hidden_data`` (``make hidden-data``) to rebuild.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import h5py
import numpy as np

from cnngrader.core import codec, paths, reference, spec
from cnngrader.core.spec import Assignment, Case, Check, Computed

EPS = 1e-6


def numeric_gradient(loss: Callable[[], float], x: np.ndarray, assignment: Assignment | None = None) -> np.ndarray:
    """Central-difference gradient of ``loss()`` with respect to ``x``: the released checks' own helper.

    Students gradient-check with their visible-checks module's
    ``numerical_gradient``; the hidden expectations are built with the very
    same function, loaded from the assignment's source folder.
    """
    return _released_checks(assignment or spec.load()).numerical_gradient(loss, x, eps=EPS)


@functools.cache
def _released_checks(assignment: Assignment) -> ModuleType:
    module = assignment.visible.get("module")
    if not module:
        raise spec.SpecError(f"{assignment.name}: numeric_gradient checks need [visible] module with numerical_gradient")
    return spec.load_module(assignment.source_folder / module, f"_cnn_released_{assignment.name}_checks")


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``|a - b| / (|a| + |b|)``, the usual gradient-check measure (0 when both are 0).

    The released ``cnn_checks.relative_error`` is the same formula; it cannot
    import this package, and the grader must not import a released file.
    """
    num = float(np.linalg.norm(np.asarray(a, float) - np.asarray(b, float)))
    den = float(np.linalg.norm(np.asarray(a, float)) + np.linalg.norm(np.asarray(b, float)))
    return 0.0 if den == 0 else num / den


def _gradients(assignment: Assignment, ref: dict[str, Callable], check: Check, case: Case) -> dict[str, np.ndarray]:
    """Numeric gradients of the reference forward pass, checked against the reference backward pass."""
    setup = case.gradient
    if setup is None:
        raise spec.SpecError(f"{check.grade_id}: a numeric_gradient case needs a GradientSetup")
    forward = ref[assignment.function(check.function).gradient_of]
    fargs = _copy(setup.forward_args)

    def loss() -> float:
        out = forward(*fargs, **setup.forward_kwargs)
        return float(np.sum((out if setup.output is None else out[setup.output]) * setup.upstream))

    grads = {name: numeric_gradient(loss, _at(fargs, where), assignment) for name, where in setup.wrt.items()}
    got = ref[check.function](*_copy(case.args))
    if check.output == "dict":
        values = dict(got)
    else:
        values = dict(zip(check.returns, (got,) if len(check.returns) == 1 else got, strict=True))
    for name in grads:
        err = relative_error(values[name], grads[name])
        if err > 1e-7:
            raise AssertionError(f"reference {check.function} {name} disagrees with the numeric gradient ({err:.1e})")
    return grads


def _at(args: Any, where: Any) -> np.ndarray:
    """The forward argument a gradient is taken with respect to: an index, or a path of indices and keys."""
    for step in (where if isinstance(where, list | tuple) else (where,)):
        args = args[step]
    return args


def resolve(value: Any, ref: dict[str, Callable]) -> Any:
    """``value`` with every :class:`Computed` argument replaced by what the reference returns."""
    if isinstance(value, Computed):
        out = ref[value.function](*_copy(resolve(value.args, ref)))
        return out if value.output is None else out[value.output]
    if isinstance(value, tuple):
        return tuple(resolve(v, ref) for v in value)
    if isinstance(value, list):
        return [resolve(v, ref) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, ref) for k, v in value.items()}
    return value


def expected_for(assignment: Assignment, ref: dict[str, Callable], check: Check, case: Case) -> Any:
    """What the check compares against, made the way the spec says (``expect``)."""
    if check.expect == "numeric_gradient":
        return _gradients(assignment, ref, check, case)
    if check.expect == "none":
        return None
    return ref[check.function](*_copy(case.args))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return all(_same(a[k], b[k]) for k in a)
    if isinstance(a, tuple):
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))


def _copy(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, tuple):
        return tuple(_copy(v) for v in value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _write_tree(group: h5py.Group, name: str, payload: Any) -> None:
    arrays: dict[str, np.ndarray] = {}
    tree = codec.encode(payload, arrays)
    sub = group.create_group(name)
    for key, arr in arrays.items():
        sub.create_dataset(key, data=arr)
    group.attrs[f"{name}_tree"] = json.dumps(tree)


def build(out: Path | None = None, notebook: Path | None = None, assignment: Assignment | None = None) -> Path:
    """Compute every hidden expectation and write the HDF5 file atomically."""
    assignment = assignment or spec.load()
    out = out or paths.hidden_data_file(assignment.name)
    notebook = notebook or assignment.notebook
    ref = reference.load_reference(notebook)
    solutions = reference.solution_cells(notebook)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.h5")
    with h5py.File(tmp, "w") as h5:
        h5.attrs["digest"] = reference.source_digest(notebook)
        h5.attrs["assignment"] = assignment.name
        helpers = h5.create_group("helpers")
        whole = reference.bundle(notebook)
        for name in sorted({h for hs in assignment.helpers.values() for h in hs}):
            helpers.attrs[name] = whole or solutions[name]
        root = h5.create_group("checks")
        for check in (*assignment.checks, *assignment.probes().values()):
            g = root.create_group(check.grade_id)
            expected = []
            for k, case in enumerate(check.cases):
                case = Case(resolve(case.args, ref), case.describe, case.gradient)
                cg = g.create_group(str(k))
                cg.attrs["describe"] = case.describe
                _write_tree(cg, "in", case.args)
                expected.append(expected_for(assignment, ref, check, case))
                _write_tree(cg, "exp", expected[-1])
            if check.grade_id.startswith("probe_") and _same(expected[0], expected[1]):
                raise AssertionError(f"{check.grade_id}: the two probe inputs must give different outputs")
    os.replace(tmp, out)
    return out


class HiddenData:
    """Read access to the hidden file; one instance per grading process."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path or paths.hidden_data_file())
        if not self.path.exists():
            raise FileNotFoundError(f"hidden test data {self.path} is missing: run `make hidden-data`")
        with h5py.File(self.path, "r") as h5:
            self.digest = str(h5.attrs["digest"])
            self.assignment = str(h5.attrs["assignment"])
            self.helpers = {k: str(v) for k, v in h5["helpers"].attrs.items()}
            self._cases: dict[str, list[tuple[str, Any, Any]]] = {}
            for grade_id, g in h5["checks"].items():
                items = []
                for k in sorted(g.keys(), key=int):
                    cg = g[k]
                    args = self._read(cg, "in")
                    exp = self._read(cg, "exp")
                    items.append((str(cg.attrs["describe"]), args, exp))
                self._cases[grade_id] = items

    @staticmethod
    def _read(cg: h5py.Group, name: str) -> Any:
        arrays = {k: cg[name][k][()] for k in cg[name].keys()}
        tree = json.loads(cg.attrs[f"{name}_tree"])
        return codec.decode(tree, arrays)

    @property
    def spec(self) -> Assignment:
        """The grading spec of the assignment this file was built for."""
        return spec.load(self.assignment)

    def cases(self, grade_id: str) -> list[tuple[str, Any, Any]]:
        """``(describe, args, expected)`` for each case; args/expected are decoded trees."""
        return self._cases[grade_id]

    def is_current(self, notebook: Path | None = None) -> bool:
        return self.digest == reference.source_digest(notebook)


def ensure_current(path: Path | None = None, notebook: Path | None = None,
                   assignment: Assignment | None = None) -> Path:
    """Rebuild the hidden file when it is missing or older than the reference solutions or the spec."""
    assignment = assignment or spec.load()
    notebook = notebook or assignment.notebook
    path = Path(path or paths.hidden_data_file(assignment.name))
    if path.exists():
        with h5py.File(path, "r") as h5:
            if str(h5.attrs.get("digest", "")) == reference.source_digest(notebook):
                return path
    return build(path, notebook, assignment)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--if-stale", action="store_true", help="only rebuild when the solutions changed")
    parser.add_argument("--assignment", action="append", help="assignment id (default: every assignment)")
    args = parser.parse_args(argv)
    for name in args.assignment or spec.assignments():
        assignment = spec.load(name)
        path = (ensure_current(args.out, assignment=assignment) if args.if_stale
                else build(args.out, assignment=assignment))
        print(f"hidden data: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

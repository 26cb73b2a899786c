"""Build and read the instructor-side HDF5 file of hidden inputs and expectations.

Layout of ``grader_data/<assignment>_hidden.h5``::

    /            attrs: digest (of the reference solutions), assignment
    /helpers     attrs: <function name> -> reference source of that solution cell
    /checks/<grade_id>/<k>/in/<array>    inputs of case k
    /checks/<grade_id>/<k>/exp/<array>   expected outputs of case k
        attrs: in_tree, exp_tree (JSON from cnngrader.codec), describe

Expected outputs come from the reference solutions in the source notebook. For
the backward passes they are numerical gradients, computed here by central
differences of the reference forward pass, and the reference backward pass
must agree with them before the file is written: a wrong reference cannot
produce a file.

Run ``python -m cnngrader.hidden_data`` (``make hidden-data``) to rebuild.
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

from . import cases, checks_data, codec, paths, reference

EPS = 1e-6


def numeric_gradient(loss: Callable[[], float], x: np.ndarray) -> np.ndarray:
    """Central-difference gradient of ``loss()`` with respect to ``x``: the released checks' own helper.

    Students gradient-check with ``cnn_checks.numerical_gradient``; the hidden
    expectations are built with the very same function.
    """
    return _released_checks().numerical_gradient(loss, x, eps=EPS)


@functools.cache
def _released_checks() -> ModuleType:
    return checks_data.load_checks()


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``|a - b| / (|a| + |b|)``, the usual gradient-check measure (0 when both are 0).

    The released ``cnn_checks.relative_error`` is the same formula; it cannot
    import this package, and the grader must not import a released file.
    """
    num = float(np.linalg.norm(np.asarray(a, float) - np.asarray(b, float)))
    den = float(np.linalg.norm(np.asarray(a, float)) + np.linalg.norm(np.asarray(b, float)))
    return 0.0 if den == 0 else num / den


def _conv_gradients(ref: dict[str, Callable], case: cases.Case) -> dict[str, np.ndarray]:
    dZ, (A, W, b, hp) = case.args
    A, W, b = A.copy(), W.copy(), b.copy()

    def loss() -> float:
        return float(np.sum(ref["conv_forward"](A, W, b, hp)[0] * dZ))

    grads = {"dA_prev": numeric_gradient(loss, A), "dW": numeric_gradient(loss, W),
             "db": numeric_gradient(loss, b)}
    got = ref["conv_backward"](dZ, (A, W, b, hp))
    for name, value in zip(("dA_prev", "dW", "db"), got, strict=True):
        err = relative_error(value, grads[name])
        if err > 1e-7:
            raise AssertionError(f"reference conv_backward {name} disagrees with the numeric gradient ({err:.1e})")
    return grads


def _pool_gradients(ref: dict[str, Callable], case: cases.Case) -> dict[str, np.ndarray]:
    dA, (A, hp), mode = case.args
    if mode == "max" and cases.has_tied_window(A, hp["f"], hp["stride"]):
        raise AssertionError(f"tied maximum in a hidden pooling input: {case.describe}")
    A = A.copy()

    def loss() -> float:
        return float(np.sum(ref["pool_forward"](A, hp, mode=mode)[0] * dA))

    grad = numeric_gradient(loss, A)
    err = relative_error(ref["pool_backward"](dA, (A, hp), mode=mode), grad)
    if err > 1e-7:
        raise AssertionError(f"reference pool_backward disagrees with the numeric gradient ({err:.1e})")
    return {"dA_prev": grad}


def expected_for(ref: dict[str, Callable], check: cases.Check, case: cases.Case) -> Any:
    if check.kind.startswith("grad"):
        if check.function == "conv_backward":
            return _conv_gradients(ref, case)
        return _pool_gradients(ref, case)
    args = _copy(case.args)
    return ref[check.function](*args)


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


def build(out: Path | None = None, notebook: Path | None = None) -> Path:
    """Compute every hidden expectation and write the HDF5 file atomically."""
    out = out or paths.hidden_data_file()
    notebook = notebook or paths.source_notebook()
    ref = reference.load_reference(notebook)
    solutions = reference.solution_cells(notebook)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.h5")
    with h5py.File(tmp, "w") as h5:
        h5.attrs["digest"] = reference.source_digest(notebook)
        h5.attrs["assignment"] = paths.ASSIGNMENT
        helpers = h5.create_group("helpers")
        for name in sorted({h for hs in cases.HELPERS.values() for h in hs}):
            helpers.attrs[name] = solutions[name]
        root = h5.create_group("checks")
        for check in (*cases.checks(), *cases.probes().values()):
            g = root.create_group(check.grade_id)
            expected = []
            for k, case in enumerate(check.cases):
                cg = g.create_group(str(k))
                cg.attrs["describe"] = case.describe
                _write_tree(cg, "in", case.args)
                expected.append(expected_for(ref, check, case))
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

    def cases(self, grade_id: str) -> list[tuple[str, Any, Any]]:
        """``(describe, args, expected)`` for each case; args/expected are decoded trees."""
        return self._cases[grade_id]

    def is_current(self, notebook: Path | None = None) -> bool:
        return self.digest == reference.source_digest(notebook)


def ensure_current(path: Path | None = None, notebook: Path | None = None) -> Path:
    """Rebuild the hidden file when it is missing or older than the reference solutions."""
    path = Path(path or paths.hidden_data_file())
    if path.exists():
        with h5py.File(path, "r") as h5:
            if str(h5.attrs.get("digest", "")) == reference.source_digest(notebook):
                return path
    return build(path, notebook)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--if-stale", action="store_true", help="only rebuild when the solutions changed")
    args = parser.parse_args(argv)
    path = ensure_current(args.out) if args.if_stale else build(args.out)
    print(f"hidden data: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

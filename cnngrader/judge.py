"""Compare a function's results with the hidden expectations.

The judge only ever sees decoded plain data (:mod:`cnngrader.codec`), never a
student object, so it runs in the trusted grader. Its messages name the failing
property and the case's input shapes and hyperparameters, and describe the
student's own result; they never print a hidden expected value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .cases import Check
from .codec import Leaf, Opaque
from .hidden_data import relative_error

RTOL = 1e-4
#: Gradient checks pass below this relative error. The reference sits near
#: 1e-10 and float32 arithmetic near 1e-7; every bug in the mutant catalogue
#: sits above 1e-2.
GRAD_TOL = 1e-4


@dataclass
class Verdict:
    grade_id: str
    passed: bool
    messages: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return "\n".join(self.messages)


class Mismatch(Exception):
    """Raised inside a comparison with the student-facing reason."""


def _describe(value: Any) -> str:
    if isinstance(value, Leaf):
        if value.array.ndim == 0:
            return f"a {value.kind.replace('_', ' ')} {value.array.dtype}"
        return f"an array of shape {tuple(value.array.shape)}"
    if isinstance(value, Opaque):
        return f"an object of type {value.type_name}"
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"a {type(value).__name__}"


def _array(value: Any, what: str) -> np.ndarray:
    if isinstance(value, Leaf):
        return value.array
    if isinstance(value, bool | int | float) and not isinstance(value, bool):
        return np.asarray(value, dtype=float)
    raise Mismatch(f"{what} should be a NumPy array, got {_describe(value)}")


def _numeric(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype.kind not in "biuf":
        raise Mismatch(f"{what} has dtype {arr.dtype}, expected numbers")
    return arr.astype(float)


def _same_shape(got: np.ndarray, exp: np.ndarray, what: str) -> None:
    if got.shape != exp.shape:
        raise Mismatch(f"{what} has the wrong shape: got {tuple(got.shape)}")


def _close(got: Any, exp: Any, what: str) -> None:
    g = _array(got, what)
    e = _array(exp, "expected")
    _same_shape(g, e, what)
    g = _numeric(g, what)
    e = e.astype(float)
    if not np.all(np.isfinite(g)):
        raise Mismatch(f"{what} contains NaN or infinity")
    scale = max(1.0, float(np.max(np.abs(e)))) if e.size else 1.0
    if not np.allclose(g, e, rtol=RTOL, atol=RTOL * scale):
        diff = float(np.max(np.abs(g - e)))
        wrong = int(np.sum(~np.isclose(g, e, rtol=RTOL, atol=RTOL * scale)))
        raise Mismatch(f"{what} has wrong values ({wrong} of {g.size} entries differ, "
                       f"largest difference {diff:.2g})")


def _grad(got: Any, exp: Any, what: str) -> None:
    g = _array(got, what)
    e = _array(exp, "expected")
    _same_shape(g, e, what)
    g = _numeric(g, what)
    if not np.all(np.isfinite(g)):
        raise Mismatch(f"{what} contains NaN or infinity")
    err = relative_error(g, e)
    if err > GRAD_TOL:
        raise Mismatch(f"gradient check on {what} failed (relative error {err:.1e})")


def _item(value: Any, n: int, what: str) -> Any:
    if not isinstance(value, tuple | list) or len(value) <= n:
        raise Mismatch(f"{what}: the function should return a tuple, got {_describe(value)}")
    return value[n]


def _scalar_value(got: Any) -> float:
    if isinstance(got, bool):
        raise Mismatch("returned a bool, expected a number")
    if isinstance(got, int | float):
        return float(got)
    arr = _array(got, "the result")
    if arr.size != 1:
        raise Mismatch(f"the result should be a single number, got an array of shape {tuple(arr.shape)}")
    return float(_numeric(arr, "the result").reshape(-1)[0])


def _compare(check: Check, args: Any, got: Any, exp: Any) -> None:
    kind = check.kind
    if kind == "shape":
        _same_shape(_array(got, "the output"), _array(exp, "expected"), "the output")
    elif kind == "array":
        _close(got, exp, "the output")
    elif kind == "first_shape":
        _same_shape(_array(_item(got, 0, "output"), "the output"), _array(_item(exp, 0, "output"), "e"),
                    "the output")
    elif kind == "first_array":
        _close(_item(got, 0, "output"), _item(exp, 0, "output"), "the output")
    elif kind in ("scalar_value", "scalar_type"):
        value = _scalar_value(got)
        expected = _scalar_value(exp)
        if kind == "scalar_type" and isinstance(got, Leaf) and got.array.ndim != 0:
            raise Mismatch(f"returned an array of shape {tuple(got.array.shape)}; "
                           "return a single number, for example with b.item()")
        if not np.isclose(value, expected, rtol=RTOL, atol=RTOL * max(1.0, abs(expected))):
            raise Mismatch(f"the value is wrong (off by {abs(value - expected):.2g})")
    elif kind in ("conv_cache", "pool_cache"):
        _close(_item(got, 0, "output"), _item(exp, 0, "output"), "the output")
        cache = _item(got, 1, "output")
        names = ("A_prev", "W", "b", "hparameters") if kind == "conv_cache" else ("A_prev", "hparameters")
        if not isinstance(cache, tuple | list) or len(cache) != len(names):
            raise Mismatch(f"cache should be a tuple ({', '.join(names)}), got {_describe(cache)}")
        inputs = args if kind == "conv_cache" else (args[0], args[1])
        for name, stored, given in zip(names, cache, inputs, strict=True):
            if name == "hparameters":
                if stored != given:
                    raise Mismatch("cache must hold the hparameters dictionary you were given")
                continue
            try:
                _close(stored, given, f"cache {name}")
            except Mismatch as exc:
                if name == "A_prev":
                    raise Mismatch(f"cache must hold the unpadded input A_prev ({exc})") from None
                raise
    elif kind in ("grad_dA", "grad_dWdb", "grad_all"):
        wanted = {"grad_dA": ("dA_prev",), "grad_dWdb": ("dW", "db"),
                  "grad_all": ("dA_prev", "dW", "db")}[kind]
        index = {"dA_prev": 0, "dW": 1, "db": 2}
        for name in wanted:
            _grad(_item(got, index[name], "output"), exp[name], name)
    elif kind == "grad_single":
        _grad(got, exp["dA_prev"], "dA_prev")
    elif kind in ("mask", "mask_shape"):
        x = _array(args[0], "x")
        arr = _array(got, "the mask")
        if arr.shape != x.shape:
            raise Mismatch(f"the mask should have the window's shape {tuple(x.shape)}, "
                           f"got {_describe(got)}")
        if kind == "mask":
            if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
                raise Mismatch("the mask should hold only True/False values")
            if not np.array_equal(arr.astype(bool), _array(exp, "e").astype(bool)):
                raise Mismatch("the mask is True in the wrong places (it must be True only at the maximum)")
    else:  # pragma: no cover - a programming error in cases.py
        raise ValueError(f"unknown check kind {kind}")


def judge(check: Check, items: list[tuple[str, Any, Any]], results: list[dict]) -> Verdict:
    """Judge one check.

    ``items`` are ``(describe, args, expected)`` from the hidden data and
    ``results`` one dict per case: ``{"status": "ok", "value": ...}`` or
    ``{"status": "error", "error": "reason"}``. A missing result fails its case.
    """
    verdict = Verdict(check.grade_id, True)
    for k, (describe, args, expected) in enumerate(items):
        result = results[k] if k < len(results) else {"status": "error", "error": "no result was produced"}
        try:
            if result.get("status") != "ok":
                raise Mismatch(str(result.get("error") or "no result was produced"))
            _compare(check, args, result.get("value"), expected)
        except Mismatch as exc:
            verdict.passed = False
            verdict.messages.append(f"{check.function} - {check.prop}: {exc} [case: {describe}]")
        except Exception as exc:  # a malformed result must fail, never crash the grader
            verdict.passed = False
            verdict.messages.append(f"{check.function} - {check.prop}: could not read the result "
                                    f"({type(exc).__name__}) [case: {describe}]")
    return verdict

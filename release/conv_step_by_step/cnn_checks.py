"""Visible checks for "Convolutional Neural Networks, step by step".

Each ``check_<function>`` runs the published example for one exercise and
prints one line per property, for instance::

    conv_forward
      [pass] output shape (10, 4, 4, 8)
      [FAIL] mean of Z: expected 0.0489952035289, got 0.1627
             hint: ...

On a failure it shows what was expected and what came back for this visible
example, plus a hint naming the most likely bug. These checks are for you:
the grade comes from hidden tests with other shapes, strides and paddings.

This file is released with the notebook and restored from the course copy at
grading time, so editing it changes nothing about your grade.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: Published expected values (from the original course material).
X_1_1 = [[0.90085595, -0.68372786], [-0.12289023, -0.93576943], [-0.26788808, 0.53035547]]
CONV_Z_3_2_1 = [-0.61490741, -6.7439236, -2.55153897, 1.75698377, 3.56208902, 0.53036437, 5.18531798,
                8.75898442]
CONV_CACHE_1_2_3 = [-0.20075807, 0.18656139, 0.41005165]
POOL_MAX = [[[[1.74481176, 0.86540763, 1.13376944]]], [[[1.13162939, 1.51981682, 2.18557541]]]]
POOL_AVG = [[[[0.02105773, -0.20328806, -0.40389855]]], [[[-0.22154621, 0.51716526, 0.48155844]]]]
POOL_BACK_MAX_1_1 = [[0.0, 0.0], [5.05844394, -1.68282702], [0.0, 0.0]]
POOL_BACK_AVG_1_1 = [[0.08485462, 0.2787552], [1.26461098, -0.25749373], [1.17975636, -0.53624893]]


class Report:
    """Collects one line per property and prints them as they come."""

    def __init__(self, title: str):
        self.title = title
        self.failures = 0
        print(title)

    def line(self, ok: bool, what: str, expected: Any = None, got: Any = None, hint: str = "") -> bool:
        if ok:
            print(f"  [pass] {what}")
            return True
        self.failures += 1
        detail = "" if expected is None else f": expected {_fmt(expected)}, got {_fmt(got)}"
        print(f"  [FAIL] {what}{detail}")
        if hint:
            print(f"         hint: {hint}")
        return False

    def close(self) -> None:
        if self.failures:
            print(f"  {self.failures} check(s) failed for {self.title}.")
        else:
            print(f"  All visible checks passed for {self.title}.")


def _fmt(value: Any) -> str:
    if isinstance(value, np.ndarray | list):
        text = np.array2string(np.asarray(value), precision=8, separator=" ", max_line_width=100)
        return text if len(text) < 300 else text[:300] + " ..."
    return repr(value) if isinstance(value, str | tuple) else str(value)


def _shape(x: Any) -> Any:
    return getattr(x, "shape", type(x).__name__)


def _close(got: Any, expected: Any) -> bool:
    try:
        g = np.asarray(got, dtype=float)
        e = np.asarray(expected, dtype=float)
        return g.shape == e.shape and bool(np.allclose(g, e, rtol=1e-6, atol=1e-7))
    except (TypeError, ValueError):
        return False


def _call(report: Report, fn: Callable, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Call the student's function; report an exception as one failed line."""
    try:
        return True, fn(*args, **kwargs)
    except NotImplementedError:
        report.line(False, f"{fn.__name__} is not implemented yet (it raised NotImplementedError)")
    except Exception as exc:  # any crash becomes a readable line, not a traceback wall
        report.line(False, f"{fn.__name__} raised {type(exc).__name__}: {exc}",
                    hint=_crash_hint(exc))
    return False, None


def _crash_hint(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, TypeError) and "only 0-dimensional arrays" in text or "only length-1" in text:
        return "float(b) fails on NumPy 2 for a (1, 1, 1) array; use b.item()."
    if isinstance(exc, ValueError) and "setting an array element with a sequence" in text:
        return "you are storing an array in a single element; conv_single_step must return a number (b.item())."
    if isinstance(exc, TypeError) and "float" in text and "integer" in text:
        return "array sizes must be integers: use // (or int(...)) in the output-size formula."
    if isinstance(exc, IndexError):
        return "a slice or loop runs past the array: check the loop ranges (range(n_H)) and vert_start = h * stride."
    return ""


def _done(report: Report) -> None:
    report.close()


# ---------------------------------------------------------------------------

def check_zero_pad(zero_pad: Callable) -> None:
    """Published example: x = randn(4, 3, 3, 2) with seed 1, pad 2."""
    r = Report("zero_pad")
    np.random.seed(1)
    x = np.random.randn(4, 3, 3, 2)
    ok, x_pad = _call(r, zero_pad, x, 2)
    if ok:
        r.line(_shape(x_pad) == (4, 7, 7, 2), "output shape", (4, 7, 7, 2), _shape(x_pad),
               "pad only axes 1 and 2: np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)))")
        r.line(_close(x[1, 1], X_1_1), "input unchanged: x[1, 1]", X_1_1, x[1, 1],
               "do not modify X in place; build a new padded array.")
        if _shape(x_pad) == (4, 7, 7, 2):
            r.line(not np.any(x_pad[1, 1]), "border is zero: x_pad[1, 1]", np.zeros((7, 2)), x_pad[1, 1],
                   "use mode='constant' with constant_values=0.")
            r.line(_close(x_pad[:, 2:5, 2:5, :], x), "input copied into the middle",
                   hint="the original values belong at x_pad[:, pad:pad + n_H, pad:pad + n_W, :].")
    _done(r)


def check_conv_single_step(conv_single_step: Callable) -> None:
    """Published example: a, W = randn(4, 4, 3), b = randn(1, 1, 1), seed 1."""
    r = Report("conv_single_step")
    np.random.seed(1)
    a = np.random.randn(4, 4, 3)
    W = np.random.randn(4, 4, 3)
    b = np.random.randn(1, 1, 1)
    ok, Z = _call(r, conv_single_step, a, W, b)
    if ok:
        expected = -6.99908945068
        r.line(np.ndim(Z) == 0, "returns a single number", "a scalar", f"shape {_shape(Z)}",
               "np.sum(a * W) + b keeps b's (1, 1, 1) shape; add b.item() instead.")
        value = float(np.asarray(Z, dtype=float).reshape(-1)[0]) if np.size(Z) == 1 else None
        r.line(value is not None and abs(value - expected) < 1e-8, "value", expected, value,
               "sum every product a * W, then add the bias once (not to each element).")
    _done(r)


def check_conv_forward(conv_forward: Callable) -> None:
    """Published example: A_prev (10, 4, 4, 3), W (2, 2, 3, 8), b (1, 1, 1, 8), pad 2, stride 2."""
    r = Report("conv_forward")
    np.random.seed(1)
    A_prev = np.random.randn(10, 4, 4, 3)
    W = np.random.randn(2, 2, 3, 8)
    b = np.random.randn(1, 1, 1, 8)
    hp = {"pad": 2, "stride": 2}
    ok, out = _call(r, conv_forward, A_prev, W, b, hp)
    if ok:
        if not r.line(isinstance(out, tuple) and len(out) == 2, "returns (Z, cache)", "a tuple of 2",
                      type(out).__name__):
            return _done(r)
        Z, cache = out
        good_shape = r.line(_shape(Z) == (10, 4, 4, 8), "output shape", (10, 4, 4, 8), _shape(Z),
                            "n_H = (n_H_prev - f + 2 * pad) // stride + 1, and the same for n_W.")
        if good_shape:
            r.line(abs(float(np.mean(Z)) - 0.0489952035289) < 1e-9, "mean of Z", 0.0489952035289,
                   float(np.mean(Z)),
                   "this example uses stride 2: did you multiply h and w by the stride for the corners? "
                   "Each filter c needs W[:, :, :, c] and b[:, :, :, c].")
            r.line(_close(Z[3, 2, 1], CONV_Z_3_2_1), "Z[3, 2, 1]", CONV_Z_3_2_1, Z[3, 2, 1],
                   "slice the padded input: a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :].")
        cache_ok = isinstance(cache, tuple) and len(cache) == 4
        r.line(cache_ok, "cache is (A_prev, W, b, hparameters)", "a tuple of 4", type(cache).__name__)
        if cache_ok:
            r.line(_shape(cache[0]) == A_prev.shape and _close(cache[0][1][2][3], CONV_CACHE_1_2_3),
                   "cache holds the unpadded A_prev", CONV_CACHE_1_2_3,
                   cache[0][1][2][3] if _shape(cache[0]) == A_prev.shape else f"shape {_shape(cache[0])}",
                   "store A_prev itself in the cache, not the padded copy.")
    _done(r)


def check_pool_forward(pool_forward: Callable) -> None:
    """Published example: A_prev (2, 4, 4, 3), f 3, stride 2, both modes."""
    r = Report("pool_forward")
    np.random.seed(1)
    A_prev = np.random.randn(2, 4, 4, 3)
    hp = {"stride": 2, "f": 3}
    for mode, expected in (("max", POOL_MAX), ("average", POOL_AVG)):
        ok, out = _call(r, pool_forward, A_prev, hp, mode=mode)
        if not ok:
            continue
        if not r.line(isinstance(out, tuple) and len(out) == 2, f"mode={mode!r} returns (A, cache)",
                      "a tuple of 2", type(out).__name__):
            continue
        A, cache = out
        if r.line(_shape(A) == (2, 1, 1, 3), f"mode={mode!r} output shape", (2, 1, 1, 3), _shape(A),
                  "n_H = (n_H_prev - f) // stride + 1; pooling has no padding."):
            r.line(_close(A, expected), f"mode={mode!r} values", expected, A,
                   "use np.max for 'max' and np.mean for 'average' on "
                   "A_prev[i, vert_start:vert_end, horiz_start:horiz_end, c] (keep the batch index i).")
        r.line(isinstance(cache, tuple) and len(cache) == 2 and cache[0] is A_prev,
               f"mode={mode!r} cache is (A_prev, hparameters)")
    _done(r)


def check_conv_backward(conv_forward: Callable, conv_backward: Callable) -> None:
    """Published example: the conv_forward example above, with dZ = Z."""
    r = Report("conv_backward")
    np.random.seed(1)
    A_prev = np.random.randn(10, 4, 4, 3)
    W = np.random.randn(2, 2, 3, 8)
    b = np.random.randn(1, 1, 1, 8)
    hp = {"pad": 2, "stride": 2}
    ok, out = _call(r, conv_forward, A_prev, W, b, hp)
    if not ok:
        r.line(False, "conv_forward must work before conv_backward can be checked")
        return _done(r)
    Z, cache = out
    ok, grads = _call(r, conv_backward, Z, cache)
    if ok:
        if not r.line(isinstance(grads, tuple) and len(grads) == 3, "returns (dA_prev, dW, db)",
                      "a tuple of 3", type(grads).__name__):
            return _done(r)
        dA, dW, db = grads
        checks = (("dA_prev", dA, A_prev.shape, 1.45243777754,
                   "add W[:, :, :, c] * dZ[i, h, w, c] into the padded window with +=, then cut the padding "
                   "off with pad:pad + n_H_prev (x[pad:-pad] is empty when pad = 0)."),
                  ("dW", dW, W.shape, 1.72699145831, "dW[:, :, :, c] += a_slice * dZ[i, h, w, c], over every example."),
                  ("db", db, b.shape, 7.83923256462, "db[:, :, :, c] += dZ[i, h, w, c], over every example."))
        for name, value, shape, mean, hint in checks:
            if r.line(_shape(value) == shape, f"{name} shape", shape, _shape(value)):
                r.line(abs(float(np.mean(value)) - mean) < 1e-8, f"mean of {name}", mean, float(np.mean(value)),
                       hint)
    _done(r)


def check_create_mask_from_window(create_mask_from_window: Callable) -> None:
    """Published example: x = randn(2, 3) with seed 1."""
    r = Report("create_mask_from_window")
    np.random.seed(1)
    x = np.random.randn(2, 3)
    expected = np.array([[True, False, False], [False, False, False]])
    ok, mask = _call(r, create_mask_from_window, x)
    if ok:
        if r.line(_shape(mask) == (2, 3), "mask has the window's shape", (2, 3), _shape(mask),
                  "return x == np.max(x), not an index."):
            r.line(np.array_equal(np.asarray(mask, dtype=bool), expected), "True only at the maximum",
                   expected, mask, "compare with np.max(x) (not np.min, not the absolute value).")
    _done(r)


def check_distribute_value(distribute_value: Callable) -> None:
    """Published example: distribute_value(2, (2, 2))."""
    r = Report("distribute_value")
    expected = np.full((2, 2), 0.5)
    ok, a = _call(r, distribute_value, 2, (2, 2))
    if ok:
        if r.line(_shape(a) == (2, 2), "output shape", (2, 2), _shape(a)):
            r.line(_close(a, expected), "each cell holds dz / (n_H * n_W)", expected, a,
                   "dz / n_H * n_W divides by n_H and then multiplies by n_W; write dz / (n_H * n_W).")
    _done(r)


def check_pool_backward(pool_forward: Callable, pool_backward: Callable) -> None:
    """Published example: A_prev (5, 5, 3, 2), f 2, stride 1, dA = randn(5, 4, 2, 2)."""
    r = Report("pool_backward")
    np.random.seed(1)
    A_prev = np.random.randn(5, 5, 3, 2)
    hp = {"stride": 1, "f": 2}
    ok, out = _call(r, pool_forward, A_prev, hp)
    if not ok:
        r.line(False, "pool_forward must work before pool_backward can be checked")
        return _done(r)
    _, cache = out
    dA = np.random.randn(5, 4, 2, 2)
    r.line(abs(float(np.mean(dA)) - 0.145713902729) < 1e-9, "mean of dA (sanity check of the inputs)")
    for mode, expected in (("max", POOL_BACK_MAX_1_1), ("average", POOL_BACK_AVG_1_1)):
        ok, dA_prev = _call(r, pool_backward, dA, cache, mode=mode)
        if not ok:
            continue
        if r.line(_shape(dA_prev) == A_prev.shape, f"mode={mode!r} dA_prev shape", A_prev.shape, _shape(dA_prev)):
            hint = ("multiply the mask by the single number dA[i, h, w, c] and add it with += (windows overlap here)."
                    if mode == "max" else
                    "add distribute_value(dA[i, h, w, c], (f, f)) into the window with +=.")
            r.line(_close(dA_prev[1, 1], expected), f"mode={mode!r} dA_prev[1, 1]", expected, dA_prev[1, 1], hint)
    _done(r)


def require_implemented(fn: Callable, *args: Any) -> None:
    """Fail the cell early, with a clear message, while ``fn`` still raises NotImplementedError."""
    samples = {
        "zero_pad": lambda: (np.zeros((1, 2, 2, 1)), 1),
        "conv_single_step": lambda: (np.ones((2, 2, 1)), np.ones((2, 2, 1)), np.zeros((1, 1, 1))),
        "conv_forward": lambda: (np.ones((1, 3, 3, 1)), np.ones((2, 2, 1, 1)), np.zeros((1, 1, 1, 1)),
                                 {"stride": 1, "pad": 0}),
        "pool_forward": lambda: (np.ones((1, 2, 2, 1)), {"f": 2, "stride": 1}),
        "create_mask_from_window": lambda: (np.array([[1.0, 2.0], [0.0, -1.0]]),),
        "distribute_value": lambda: (1.0, (2, 2)),
    }
    name = getattr(fn, "__name__", "this function")
    if name == "conv_backward":
        args = (np.ones((1, 2, 2, 1)), (np.ones((1, 3, 3, 1)), np.ones((2, 2, 1, 1)), np.zeros((1, 1, 1, 1)),
                                        {"stride": 1, "pad": 0}))
    elif name == "pool_backward":
        args = (np.ones((1, 1, 1, 1)), (np.array([[[[1.0], [2.0]], [[0.0], [-1.0]]]]), {"f": 2, "stride": 1}))
    elif not args and name in samples:
        args = samples[name]()
    try:
        fn(*args)
    except NotImplementedError:
        raise AssertionError(f"{name} is not implemented yet") from None

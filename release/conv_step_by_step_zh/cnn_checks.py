"""Visible checks for "Convolutional Neural Networks, step by step".

Each ``check_<function>`` runs your function on a few fixed inputs and prints
one line per property, for instance::

    conv_forward
      [pass] published example: output shape (10, 4, 4, 8)
      [FAIL] non-square input, stride 2, pad 1: values (12 of 60 entries differ)
             expected: [[...]]
             got:      [[...]]
             hint: ...

The first case is always the example published with the original course;
the others add what it cannot show: non-square inputs, pad = 0, strides
above 1 with several outputs, overlapping windows. Whole arrays are
compared, not only their means. A hint appears only when your output is
exactly what a known bug produces on that input; otherwise the check says
what differs and leaves the diagnosis to you.

Each function is checked on its own inputs: the backward checks build their
own caches instead of calling your forward functions. A function that calls
one of your helpers (``conv_forward`` calls ``zero_pad`` and
``conv_single_step``) is checked once those helpers pass their own checks.

The test cells below each exercise call :func:`require_checks`, so nbgrader's
Validate button fails, naming the function and the property, whenever a
visible check fails. The grade itself comes from hidden tests with other
inputs. This file and ``cnn_checks_data.json`` (expected values, generated
from the course's solutions) are restored from the course copy at grading
time, so editing them changes nothing about your grade.

:func:`numerical_gradient` and :func:`relative_error` let you gradient-check
your own backward passes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DATA_FILE = Path(__file__).with_name("cnn_checks_data.json")
MESSAGES_FILE = Path(__file__).with_name("messages.json")


def _load_messages() -> dict:
    """This edition's translations (a translated release ships messages.json; English has none)."""
    try:
        data = json.loads(MESSAGES_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


_EDITION = _load_messages()
_MESSAGES = {k: v for k, v in (_EDITION.get("messages") or {}).items() if isinstance(k, str) and isinstance(v, str)}


def _(text: str, **params: Any) -> str:
    """``text`` in this edition's language (unchanged in English), with ``params`` filled in."""
    text = _MESSAGES.get(text, text)
    return text.format(**params) if params else text


def N_(text: str) -> str:
    """Marks a string for translation where it is defined; ``_()`` translates it where it is shown."""
    return text

#: Functions each check needs to pass their own checks first (their calls are part of the result).
DEPENDS = {
    "conv_forward": ("zero_pad", "conv_single_step"),
    "conv_backward": ("zero_pad",),
    "pool_backward": ("create_mask_from_window", "distribute_value"),
}
PASS, FAIL, BLOCKED, MISSING = "pass", "fail", "blocked", "not implemented"


def _rng(seed: int) -> np.random.RandomState:
    """A private generator: the checks never touch your global random state."""
    return np.random.RandomState(seed)


def _data() -> dict:
    if not hasattr(_data, "cache"):
        _data.cache = json.loads(DATA_FILE.read_text())
    return _data.cache


def _expected(key: str) -> Any:
    value = _data()["expected"][key]
    return value if isinstance(value, float) else np.asarray(value)


# ---------------------------------------------------------------------------
# The cases: inputs are built here; expected outputs come from cnn_checks_data.json
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One call of the function: what it exercises, how its inputs are made, and any keyword arguments."""

    name: str  # in English, marked with N_() where it is written
    build: Callable[[], tuple]
    kwargs: dict = field(default_factory=dict)
    shown: str = ""  # the name as printed, when it is more than ``_(name)``

    @property
    def title(self) -> str:
        """The name as the checks print it, in this edition's language."""
        return self.shown or _(self.name)


def _zero_pad_cases() -> list[Case]:
    return [
        Case(N_("published example"), lambda: (_rng(1).randn(4, 3, 3, 2), 2)),
        Case(N_("non-square images, pad 1"), lambda: (_rng(101).randn(2, 3, 5, 1), 1)),
        Case(N_("pad = 0"), lambda: (_rng(102).randn(1, 2, 3, 2), 0)),
    ]


def _css(seed: int, f: int, n_c: int) -> tuple:
    r = _rng(seed)
    return r.randn(f, f, n_c), r.randn(f, f, n_c), r.randn(1, 1, 1)


def _conv_single_step_cases() -> list[Case]:
    return [
        Case(N_("published example"), lambda: _css(1, 4, 3)),
        Case(N_("a 2 by 2 window with two channels"), lambda: _css(111, 2, 2)),
    ]


def _conv(seed: int, a_shape: tuple, f: int, n_c: int, stride: int, pad: int) -> tuple:
    r = _rng(seed)
    A = r.randn(*a_shape)
    W = r.randn(f, f, a_shape[-1], n_c)
    b = r.randn(1, 1, 1, n_c)
    return A, W, b, {"pad": pad, "stride": stride}


CONV_CASES = (
    (N_("published example"), 1, (10, 4, 4, 3), 2, 8, 2, 2),
    (N_("non-square input, stride 2, pad 1"), 121, (2, 5, 7, 3), 3, 2, 2, 1),
    (N_("pad = 0, stride 1"), 122, (1, 4, 5, 2), 2, 3, 1, 0),
    (N_("stride 3, pad 1"), 123, (1, 7, 8, 2), 2, 1, 3, 1),
)


def _conv_forward_cases() -> list[Case]:
    return [Case(name, lambda s=s, a=a, f=f, n=n, st=st, p=p: _conv(s, a, f, n, st, p))
            for name, s, a, f, n, st, p in CONV_CASES]


def _pool(seed: int, a_shape: tuple, f: int, stride: int) -> tuple:
    return _rng(seed).randn(*a_shape), {"stride": stride, "f": f}


POOL_CASES = (
    (N_("published example"), 1, (2, 4, 4, 3), 3, 2),
    (N_("overlapping windows (f 3, stride 2), non-square"), 131, (2, 5, 7, 2), 3, 2),
    (N_("stride 2, f 2"), 132, (1, 6, 4, 3), 2, 2),
)


def _with_mode(name: str, mode: str) -> str:
    """A pooling case's name with its mode, as printed."""
    return _("{case}, mode={mode!r}", case=_(name), mode=mode)


def _pool_forward_cases() -> list[Case]:
    return [Case(f"{name}, mode={mode!r}", lambda s=s, a=a, f=f, st=st: _pool(s, a, f, st), {"mode": mode},
                 _with_mode(name, mode))
            for name, s, a, f, st in POOL_CASES for mode in ("max", "average")]


CONV_BACK_CASES = (
    (N_("published example (dZ = Z)"), 1, (10, 4, 4, 3), 2, 8, 2, 2),
    (N_("pad = 0"), 141, (2, 4, 5, 2), 2, 3, 1, 0),
    (N_("stride 2, overlapping windows (f 3), pad 1"), 142, (1, 6, 7, 2), 3, 2, 2, 1),
)


def _conv_back(k: int) -> tuple:
    _name, seed, a_shape, f, n_c, stride, pad = CONV_BACK_CASES[k]
    A, W, b, hp = _conv(seed, a_shape, f, n_c, stride, pad)
    if k == 0:
        dZ = _expected("conv_forward/0")  # the published example feeds Z itself back
    else:
        n_h = (a_shape[1] - f + 2 * pad) // stride + 1
        n_w = (a_shape[2] - f + 2 * pad) // stride + 1
        dZ = _rng(seed + 1000).randn(a_shape[0], n_h, n_w, n_c)
    return dZ, (A, W, b, hp)


def _conv_backward_cases() -> list[Case]:
    return [Case(c[0], lambda k=k: _conv_back(k)) for k, c in enumerate(CONV_BACK_CASES)]


def _mask_cases() -> list[Case]:
    return [
        Case(N_("published example"), lambda: (_rng(1).randn(2, 3),)),
        Case(N_("all values negative (the maximum is not the largest magnitude)"),
             lambda: (_rng(151).randn(3, 3) - 2.0,)),
        Case(N_("a 2 by 4 window"), lambda: (_rng(152).randn(2, 4),)),
    ]


def _distribute_cases() -> list[Case]:
    return [
        Case(N_("published example"), lambda: (2, (2, 2))),
        Case(N_("a 3 by 2 window"), lambda: (3.0, (3, 2))),
        Case(N_("a 1 by 4 window"), lambda: (-1.5, (1, 4))),
    ]


POOL_BACK_CASES = (
    (N_("published example"), 1, (5, 5, 3, 2), 2, 1),
    (N_("stride 2, no overlap, non-square"), 161, (2, 4, 6, 2), 2, 2),
    (N_("overlapping windows (f 3, stride 1)"), 162, (1, 5, 4, 1), 3, 1),
    (N_("stride 3"), 163, (1, 7, 7, 2), 2, 3),
)


def _pool_back(k: int) -> tuple:
    _name, seed, a_shape, f, stride = POOL_BACK_CASES[k]
    r = _rng(seed)
    A = r.randn(*a_shape)
    n_h = (a_shape[1] - f) // stride + 1
    n_w = (a_shape[2] - f) // stride + 1
    dA = r.randn(a_shape[0], n_h, n_w, a_shape[3])
    return dA, (A, {"stride": stride, "f": f})


def _pool_backward_cases() -> list[Case]:
    return [Case(f"{c[0]}, mode={mode!r}", lambda k=k: _pool_back(k), {"mode": mode}, _with_mode(c[0], mode))
            for k, c in enumerate(POOL_BACK_CASES) for mode in ("max", "average")]


CASES: dict[str, Callable[[], list[Case]]] = {
    "zero_pad": _zero_pad_cases,
    "conv_single_step": _conv_single_step_cases,
    "conv_forward": _conv_forward_cases,
    "pool_forward": _pool_forward_cases,
    "conv_backward": _conv_backward_cases,
    "create_mask_from_window": _mask_cases,
    "distribute_value": _distribute_cases,
    "pool_backward": _pool_backward_cases,
}


# ---------------------------------------------------------------------------
# Hints: shown only when the output is exactly what a known bug gives
# ---------------------------------------------------------------------------

HINTS = {
    "stride": N_("The windows move one step at a time, as if the stride were 1: the window corners must move by "
                 "the stride (vert_start is h times the stride, and the same for the columns)."),
    "loop_range": N_("The loops visit the wrong number of output positions: loop over the output's height and "
                     "width (n_H, n_W), not over the input's."),
    "window_end": N_("A window must always be f rows tall and f columns wide: its end is its start plus f."),
    "overwrite": N_("Windows overlap in this case, and each overlapping contribution replaced the previous one: "
                    "gradients from overlapping windows must be added up (accumulate, do not assign)."),
    "unpad": N_("Removing the padding from the gradient gives the wrong part of the array: with pad = 0 a "
                "negative end index such as -pad selects nothing. Use explicit end indices (start plus size)."),
    "unpad_forgotten": N_("The padding was not removed from dA_prev before returning it."),
    "bias_inside": N_("The bias was added more than once: it belongs outside the sum, added once per output value."),
    "bias": N_("Each filter c has its own bias b[..., c], added once to every output value of that filter."),
    "filter_channel": N_("Each output channel c must use its own filter W[..., c] (and bias b[..., c])."),
    "cache": N_("The cache must hold exactly the inputs you were given: the unpadded A_prev, W, b and hparameters."),
    "examples": N_("Gradients of shared parameters add up over every example in the batch, not only the last one "
                   "and not averaged."),
    "missing_dz": N_("Each contribution must be scaled by that output position's gradient dZ[i, h, w, c]."),
    "unpadded_slice": N_("Take the windows from the padded input, not from the unpadded one."),
    "size": N_("Check the output-size formula: n_H = floor((n_H_prev - f + 2 * pad) / stride) + 1 (no padding "
               "term for pooling), computed with integer division."),
    "height_width": N_("Height and width are mixed up somewhere: rows go with h and n_H, columns with w and n_W."),
    "elementwise": N_("Multiply the window and the filter elementwise, then add up every product."),
    "mean": N_("Add up the products (a sum), do not average them."),
    "scalar": N_("Return a single number, not an array: turn the (1, 1, 1) bias into a number first."),
    "mask_max": N_("The mask must be True exactly where the window holds its maximum (not its minimum, not its "
                   "largest magnitude)."),
    "mask_type": N_("Return a boolean array of the window's shape, not the maximum itself or its position."),
    "mask_axis": N_("Compare with the maximum of the whole window, not of each column or row."),
    "divide": N_("Each cell must receive dz divided by the number of cells in the window (n_H times n_W)."),
    "precedence": N_("Check the operator precedence: dividing by n_H and then multiplying by n_W is not the same "
                     "as dividing by their product."),
    "spread_shape": N_("The result must have the window's shape (n_H, n_W), in that order."),
    "average_spread": N_("In average mode, spread the single number dA[i, h, w, c] over an f by f window."),
    "mask_times_slice": N_("Multiply the mask by the single number dA[i, h, w, c], not by a slice of dA."),
    "mode": N_("The mode decides how the window is reduced: 'max' takes the largest value, 'average' the mean. "
               "Check how the mode is compared."),
    "channel_window": N_("Take the window from a single channel c: the max or mean is over a window of one "
                         "channel."),
    "corners": N_("Rows and columns are swapped in the window: rows run from vert_start to vert_end, columns "
                  "from horiz_start to horiz_end."),
    "batch": N_("Keep the example index i when you slice the input."),
    "padding": N_("Pooling uses no padding: slice the input as it is."),
    "pad_axes": N_("Pad only the height and width axes (1 and 2); the batch and channel axes stay as they are."),
    "pad_zeros": N_("The border must be zeros, and the original values unchanged in the middle."),
    "pad_sides": N_("Pad both sides of each padded axis by pad."),
}


def _fingerprint(value: Any) -> str:
    """A short digest of an output, rounded so equal results from different code agree."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return "unreadable"
    arr = np.round(arr, 5) + 0.0  # + 0.0 turns -0.0 into 0.0
    return hashlib.sha1(repr(arr.shape).encode() + arr.tobytes()).hexdigest()[:16]


def _hint_for(key: str, value: Any) -> str:
    family = _data().get("bugs", {}).get(key, {}).get(_fingerprint(value))
    hint = HINTS.get(family, "") if family else ""
    return _(hint) if hint else ""


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------

@dataclass
class Result:
    """What the visible checks found for one function."""

    function: str
    status: str = PASS
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    blocked_by: list[str] = field(default_factory=list)


class Report:
    """Collects one line per property, printing them if asked to."""

    def __init__(self, result: Result, echo: bool):
        self.result = result
        self.echo = echo
        self._say(result.function)

    def _say(self, text: str) -> None:
        self.result.lines.append(text)
        if self.echo:
            print(text)

    def line(self, ok: bool, what: str, expected: Any = None, got: Any = None, hint: str = "") -> bool:
        if ok:
            self._say("  " + _("[pass] {what}", what=what))
            return True
        self.result.failures.append(what)
        if self.result.status == PASS:
            self.result.status = FAIL
        self._say("  " + _("[FAIL] {what}", what=what))
        if expected is not None or got is not None:
            self._say("         " + _("expected: {value}", value=_fmt(expected)))
            self._say("         " + _("got:      {value}", value=_fmt(got)))
        if hint:
            self._say("         " + _("hint: {hint}", hint=hint))
        return False

    def close(self) -> None:
        r = self.result
        if r.status == BLOCKED:
            self._say("  " + _("{function} is not checked yet: it calls {helpers}, whose visible checks fail. "
                               "Fix that first.", function=r.function, helpers=", ".join(r.blocked_by)))
        elif r.status == MISSING:
            pass  # the failed line already says so
        elif r.failures:
            self._say("  " + _("{count} check(s) failed for {function}.", count=len(r.failures),
                               function=r.function))
        else:
            self._say("  " + _("All visible checks passed for {function}.", function=r.function))


def _fmt(value: Any) -> str:
    if isinstance(value, np.ndarray | list):
        arr = np.asarray(value)
        text = np.array2string(arr, precision=6, separator=" ", max_line_width=100, threshold=60)
        text = text.replace("\n", "\n                   ")
        return text if len(text) < 900 else text[:900] + " ..."
    if isinstance(value, float):
        return f"{value:.10g}"
    return repr(value) if isinstance(value, str | tuple) else str(value)


def _shape(x: Any) -> Any:
    return getattr(x, "shape", type(x).__name__)


#: Tolerances loose enough for float32 arithmetic, tight enough for any real bug.
RTOL, ATOL = 1e-4, 1e-6


def _close(got: Any, expected: Any) -> bool:
    try:
        g = np.asarray(got, dtype=float)
        e = np.asarray(expected, dtype=float)
        return g.shape == e.shape and bool(np.allclose(g, e, rtol=RTOL, atol=ATOL))
    except (TypeError, ValueError):
        return False


def _values_differ(where: str, what: str, got: Any, expected: Any) -> str:
    """The line for values that differ, saying how many when they can be counted."""
    try:
        g = np.asarray(got, dtype=float)
        e = np.asarray(expected, dtype=float)
        n = int(np.sum(~np.isclose(g, e, rtol=RTOL, atol=ATOL)))
    except (TypeError, ValueError):
        return _("{case}: {what} values", case=where, what=what)
    return _("{case}: {what} values ({count} of {size} entries differ)", case=where, what=what, count=n, size=e.size)


def _crash_hint(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, TypeError) and ("only 0-dimensional arrays" in text or "only length-1" in text):
        return _("float() of a (1, 1, 1) array fails on NumPy 2: use .item() to turn it into a number.")
    if isinstance(exc, ValueError) and "setting an array element with a sequence" in text:
        return _("an array is being stored in a single element: the value must be a number (use .item()).")
    if isinstance(exc, TypeError) and "float" in text and "integer" in text:
        return _("array sizes must be integers: use integer division (//) in the output-size formula.")
    if isinstance(exc, IndexError):
        return _("a slice or a loop runs past the end of an array: check the loop ranges and the window corners.")
    if isinstance(exc, ValueError) and "broadcast" in text:
        if "input array from shape (0," in text:  # an empty gradient stored into dA_prev
            return _(HINTS["unpad"])
        return _("two arrays of different shapes were combined: every window must be f by f (the shape of the "
                 "filter, mask or spread it meets), and a gradient must come back with its input's shape.")
    return ""


def _call(report: Report, fn: Callable, case: Case, args: tuple) -> tuple[bool, Any]:
    """Call the student's function on one case; report an exception as one failed line."""
    try:
        return True, fn(*args, **case.kwargs)
    except NotImplementedError:
        report.line(False, _("{function} is not implemented yet (it raises NotImplementedError)",
                             function=fn.__name__))
        report.result.status = MISSING
        return False, None
    except Exception as exc:  # any crash becomes a readable line, not a traceback wall
        report.line(False, _("{case}: {function} raised {error}: {message}", case=case.title, function=fn.__name__,
                             error=type(exc).__name__, message=str(exc)[:200]),
                    hint=_crash_hint(exc))
    return False, None


# ---------------------------------------------------------------------------
# Comparing one output
# ---------------------------------------------------------------------------

def _array(r: Report, key: str, case: Case, what: str, got: Any, expected: np.ndarray) -> bool:
    """Shape, then every value; a hint only when ``got`` is exactly what a known bug gives.

    ``what`` is printed as given: an array's name (``dA_prev``) or an already translated word.
    """
    if not isinstance(got, np.ndarray) or got.shape != expected.shape:
        hint = _hint_for(key, got) if isinstance(got, np.ndarray) else ""
        return r.line(False, _("{case}: {what} shape", case=case.title, what=what), expected.shape, _shape(got), hint)
    r.line(True, _("{case}: {what} shape {shape}", case=case.title, what=what, shape=expected.shape))
    if _close(got, expected):
        return r.line(True, _("{case}: {what} values", case=case.title, what=what))
    if expected.size <= 24:
        return r.line(False, _values_differ(case.title, what, got, expected), expected, got, _hint_for(key, got))
    # A big array: show where it differs rather than every number.
    r.line(False, _values_differ(case.title, what, got, expected), hint=_hint_for(key, got))
    g, e = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    for index in list(zip(*np.nonzero(~np.isclose(g, e, rtol=RTOL, atol=ATOL)), strict=True))[:3]:
        where = ", ".join(str(int(k)) for k in index)
        r._say("         " + _("at [{index}]: expected {expected:.6g}, got {got:.6g}", index=where, expected=e[index],
                               got=g[index]))
    return False


def _same_inputs(original: Any, after: Any) -> bool:
    if isinstance(original, np.ndarray):
        return isinstance(after, np.ndarray) and original.shape == after.shape and np.array_equal(original, after)
    if isinstance(original, tuple):
        return isinstance(after, tuple) and len(original) == len(after) and all(
            _same_inputs(a, b) for a, b in zip(original, after, strict=True))
    return True


def _check_case(r: Report, name: str, k: int, case: Case, fn: Callable) -> None:
    args = case.build()
    pristine = case.build()
    ok, out = _call(r, fn, case, args)
    if not ok:
        return
    key = f"{name}/{k}"
    if name in ("zero_pad", "distribute_value", "pool_backward"):
        _array(r, key, case, _("output"), out, _expected(key))
    elif name == "create_mask_from_window":
        expected = _expected(key).astype(bool)
        if not isinstance(out, np.ndarray) or out.shape != expected.shape:
            r.line(False, _("{case}: {what} shape", case=case.title, what=_("mask")), expected.shape, _shape(out),
                   _(HINTS["mask_type"]))
        elif _array(r, key, case, _("mask"), out, expected):
            r.line(np.asarray(out).dtype == bool, _("{case}: the mask holds True/False values", case=case.title),
                   _("dtype bool"), np.asarray(out).dtype, _(HINTS["mask_type"]))
    elif name == "conv_single_step":
        expected = _expected(key)
        scalar = np.ndim(out) == 0
        r.line(scalar, _("{case}: returns a single number", case=case.title), _("a number"),
               _("shape {shape}", shape=_shape(out)), _(HINTS["scalar"]))
        try:
            value = float(np.asarray(out, dtype=float).reshape(-1)[0]) if np.size(out) == 1 else None
        except (TypeError, ValueError):
            value = None  # a string or an object: not a number, reported as a wrong value
        r.line(value is not None and abs(value - expected) <= ATOL + RTOL * abs(expected),
               _("{case}: value", case=case.title), expected, value, _hint_for(key, out))
    elif name in ("conv_forward", "pool_forward"):
        if not r.line(isinstance(out, tuple) and len(out) == 2, _("{case}: returns (output, cache)", case=case.title),
                      _("a tuple of {size}", size=2), type(out).__name__):
            return
        value, cache = out
        _array(r, key, case, _("output"), value, _expected(key))
        size = 4 if name == "conv_forward" else 2
        good = isinstance(cache, tuple) and len(cache) == size and all(
            (np.array_equal(c, p) and c.shape == p.shape) if isinstance(p, np.ndarray) else c == p
            for c, p in zip(cache, pristine, strict=False))
        r.line(good, _("{case}: cache holds the inputs, unchanged and unpadded", case=case.title),
               hint=_(HINTS["cache"]))
    elif name == "conv_backward":
        if not r.line(isinstance(out, tuple) and len(out) == 3,
                      _("{case}: returns {values}", case=case.title, values="(dA_prev, dW, db)"),
                      _("a tuple of {size}", size=3), type(out).__name__):
            return
        for part, got in zip(("dA_prev", "dW", "db"), out, strict=True):
            _array(r, f"{key}/{part}", case, part, got, _expected(f"{key}/{part}"))
    if not _same_inputs(pristine, args):
        r.line(False, _("{case}: the inputs must be left unchanged (work on a copy)", case=case.title))


@contextlib.contextmanager
def _silenced():
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def evaluate(name: str, fn: Callable, echo: bool = False) -> Result:
    """Run the visible checks of ``name`` on ``fn`` and return what they found (printing if ``echo``)."""
    result = Result(name)
    r = Report(result, echo)
    blockers = []
    for dep in DEPENDS.get(name, ()):
        helper = getattr(fn, "__globals__", {}).get(dep)
        if helper is None or evaluate(dep, helper).status != PASS:
            blockers.append(dep)
    if blockers:
        # Not checked against its helpers' bugs, but a function still left blank is reported as such.
        first = CASES[name]()[0]
        try:
            with _silenced():
                fn(*first.build(), **first.kwargs)
        except NotImplementedError:
            r.line(False, _("{function} is not implemented yet (it raises NotImplementedError)", function=name))
            result.status = MISSING
            return result
        except Exception:  # noqa: BLE001 - its helpers' bugs may well crash it
            pass
        result.status, result.blocked_by = BLOCKED, blockers
        r.close()
        return result
    for k, case in enumerate(CASES[name]()):
        result.cases.append(case.title)
        _check_case(r, name, k, case, fn)
        if result.status == MISSING:
            break
    r.close()
    return result


# ---------------------------------------------------------------------------
# What the notebook calls
# ---------------------------------------------------------------------------

def check_zero_pad(zero_pad: Callable) -> None:
    evaluate("zero_pad", zero_pad, echo=True)


def check_conv_single_step(conv_single_step: Callable) -> None:
    evaluate("conv_single_step", conv_single_step, echo=True)


def check_conv_forward(conv_forward: Callable) -> None:
    result = evaluate("conv_forward", conv_forward, echo=True)
    if result.status == PASS:
        z = _expected("conv_forward/0")
        print("  " + _("(published values: mean of Z = {mean:.12g}, Z[3, 2, 1] = {values})", mean=float(np.mean(z)),
                       values=np.array2string(z[3, 2, 1], precision=8, max_line_width=200)))


def check_pool_forward(pool_forward: Callable) -> None:
    evaluate("pool_forward", pool_forward, echo=True)


def check_conv_backward(conv_backward: Callable) -> None:
    result = evaluate("conv_backward", conv_backward, echo=True)
    if result.status == PASS:
        means = [float(np.mean(_expected(f"conv_backward/0/{p}"))) for p in ("dA_prev", "dW", "db")]
        dA, dW, db = means
        print("  " + _("(published values: mean of dA = {dA:.12g}, mean of dW = {dW:.12g}, mean of db = {db:.12g})",
                       dA=dA, dW=dW, db=db))


def check_create_mask_from_window(create_mask_from_window: Callable) -> None:
    evaluate("create_mask_from_window", create_mask_from_window, echo=True)


def check_distribute_value(distribute_value: Callable) -> None:
    evaluate("distribute_value", distribute_value, echo=True)


def check_pool_backward(pool_backward: Callable) -> None:
    evaluate("pool_backward", pool_backward, echo=True)


_CACHE: dict[tuple, Result] = {}


def _version(fn: Any) -> tuple:
    code = getattr(fn, "__code__", None)
    return (id(fn), hashlib.sha1(code.co_code + repr(code.co_consts).encode()).hexdigest() if code else "")


#: Set in the notebook's namespace by the hidden tests (cnngrader.incell.run_check) once they ran.
HIDDEN_TESTS_JUDGED = "_cnn_hidden_tests_judged"


def require_checks(fn: Callable) -> None:
    """For the test cells: raise (so Validate fails) when ``fn``'s visible checks fail; say what passed."""
    name = getattr(fn, "__name__", _("this function"))
    if name not in CASES:
        raise AssertionError(_("{function} is not one of the graded functions", function=name))
    if getattr(fn, "__globals__", {}).get(HIDDEN_TESTS_JUDGED):
        # Autograding without the course's grader: this cell's hidden tests, which run
        # first, have already judged its one property. A failure of another property
        # must not cost this cell too.
        return
    deps = tuple(getattr(fn, "__globals__", {}).get(d) for d in DEPENDS.get(name, ()))
    key = (name, _version(fn), *(_version(d) for d in deps))
    if key not in _CACHE:
        _CACHE[key] = evaluate(name, fn)
    result = _CACHE[key]
    if result.status == MISSING:
        raise AssertionError(_("{function} is not implemented yet", function=name))
    if result.status == BLOCKED:
        print(_("{function} is not checked yet: it calls {helpers}, whose visible checks fail.", function=name,
                helpers=", ".join(result.blocked_by)))
        return
    if result.status == FAIL:
        failed = list(dict.fromkeys(f.split(" (")[0] for f in result.failures))
        if len(failed) > 4:
            raise AssertionError(_("{function}: visible check failed: {failed} and more. The output of its check "
                                   "cell above shows what was expected and what came back.",
                                   function=name, failed="; ".join(failed[:4])))
        raise AssertionError(_("{function}: visible check failed: {failed}. The output of its check cell above "
                               "shows what was expected and what came back.", function=name, failed="; ".join(failed)))
    print(_("{function}: every visible check passed ({cases}).", function=name, cases="; ".join(result.cases)))


def require_implemented(fn: Callable) -> None:
    """Kept for notebooks saved with an earlier version of the course: same as :func:`require_checks`."""
    require_checks(fn)


# ---------------------------------------------------------------------------
# Gradient checking your own backward passes
# ---------------------------------------------------------------------------

def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences: the gradient of ``f()`` with respect to ``x``, changing ``x`` in place and back.

    ``f`` takes no arguments and must read ``x`` (for example a loss built
    from your forward pass on ``x``). Returns an array shaped like ``x``.
    """
    grad = np.zeros_like(x, dtype=float)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        up = f()
        x[idx] = old - eps
        down = f()
        x[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``|a - b| / (|a| + |b|)``: below about 1e-7 two gradients agree; above 1e-2 one of them is wrong."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    num = float(np.linalg.norm(a - b))
    den = float(np.linalg.norm(a) + np.linalg.norm(b))
    return 0.0 if den == 0 else num / den

"""Visible checks for "Train a CNN from your own layers".

Each ``check_<function>(<function>)`` runs your function on one to three small
fixed inputs and prints one line per property, for instance::

    dense_backward
      [pass] 4 examples, 5 inputs, 3 outputs: dA_prev shape (4, 5)
      [FAIL] 4 examples, 5 inputs, 3 outputs: dW values (15 of 15 entries differ)
             hint: dW looks divided by the batch size m ...

Expected values come from ``train_checks_data.json``, generated from the
course's solutions; the fast convolutions are compared with the loop versions
of ``cnn_layers.py`` directly. A function that calls other graded functions
(``model_forward``, ``model_backward``, ``train``) is checked once those pass
their own checks.

The test cells call :func:`require_checks`, so nbgrader's Validate button
fails, naming the function, while its visible checks fail. Your grade comes
from hidden tests with other inputs. This file and its data are restored from
the course's copy at grading time: editing them changes nothing.

:func:`numerical_gradient` and :func:`relative_error` let you gradient-check
your own backward passes. ``LABELS`` holds the words the notebook's figures
use, so that the notebook's code has none of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DATA_FILE = HERE / "train_checks_data.json"
DIGITS_FILE = HERE / "data" / "digits.h5"
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


def _use_fonts(fonts: Any) -> None:
    """Put this edition's fonts first for the notebook's figures (matplotlib falls back glyph by glyph)."""
    if not (isinstance(fonts, list) and fonts and all(isinstance(f, str) for f in fonts)):
        return
    try:
        import matplotlib
    except ImportError:
        return
    rest = [f for f in matplotlib.rcParams["font.sans-serif"] if f not in fonts]
    matplotlib.rcParams["font.sans-serif"] = [*fonts, *rest]


_use_fonts(_EDITION.get("matplotlib_fonts"))

#: The graded functions, in the order the notebook teaches them.
FUNCTIONS = (
    "relu_forward",
    "relu_backward",
    "dense_forward",
    "dense_backward",
    "softmax_cross_entropy",
    "conv_forward_fast",
    "conv_backward_fast",
    "model_forward",
    "model_backward",
    "sgd_momentum_update",
    "train",
)
#: Graded functions a check needs to pass their own checks first (they are part of the result).
DEPENDS = {
    "model_forward": ("conv_forward_fast", "relu_forward", "dense_forward"),
    "model_backward": ("model_forward", "relu_backward", "dense_backward", "conv_backward_fast"),
    "train": ("model_forward", "model_backward", "softmax_cross_entropy", "sgd_momentum_update"),
}
PARAM_KEYS = ("W1", "b1", "W2", "b2")
PASS, FAIL, BLOCKED, MISSING = "pass", "fail", "blocked", "not implemented"

#: The English words of the notebook's figures and printed results: templates for ``str.format``.
LABEL_TEMPLATES = {
    "digit_title": N_("label {}"),
    "timing_title": N_("Convolution forward pass: loops against vectorised NumPy"),
    "timing_xlabel": N_("height and width of the input images (n_H = n_W)"),
    "timing_ylabel": N_("time per call (seconds, log scale)"),
    "timing_loop": N_("conv_forward_loop (first notebook)"),
    "timing_fast": N_("conv_forward_fast (yours)"),
    "timing_row": N_("n_H = n_W = {:>2}: loops {:.4f} s, vectorised {:.5f} s, {:.0f} times faster"),
    "timing_ratio": N_("timing input: the fast forward pass is {:.0f} times faster, the fast backward pass "
                       "{:.0f} times"),
    "train_time": N_("training took {:.1f} s"),
    "val_accuracy": N_("validation accuracy: {:.2%} ({} of {} images)"),
    "filters_title": N_("The 8 learned 3x3 filters of the convolutional layer"),
    "filter_name": N_("filter {}"),
    "confusion_title": N_("Confusion matrix on the validation images"),
    "confusion_xlabel": N_("predicted digit"),
    "confusion_ylabel": N_("true digit"),
}
#: The same words in this edition's language: the notebook's code calls ``LABELS["..."].format(...)``.
LABELS = {key: _(text) for key, text in LABEL_TEMPLATES.items()}


def _rng(seed: int) -> np.random.RandomState:
    """A private generator: the checks never touch your global random state."""
    return np.random.RandomState(seed)


def _data() -> dict:
    if not hasattr(_data, "cache"):
        _data.cache = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    return _data.cache


def _expected(key: str) -> Any:
    value = _data()["expected"][key]
    return value if isinstance(value, float) else np.asarray(value, dtype=float)


# ---------------------------------------------------------------------------
# The cases: inputs are built here; expected outputs come from train_checks_data.json
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


def _with_zeros(seed: int, shape: tuple) -> np.ndarray:
    z = _rng(seed).randn(*shape)
    z.reshape(-1)[::5] = 0.0  # exact zeros: the kink of the ReLU
    return z


def _relu_forward_cases() -> list[Case]:
    return [
        Case(N_("a (2, 3, 4) array"), lambda: (_rng(201).randn(2, 3, 4),)),
        Case(N_("a batch shaped like a conv output (2, 4, 4, 3), with exact zeros"),
             lambda: (_with_zeros(202, (2, 4, 4, 3)),)),
    ]


def _relu_backward_cases() -> list[Case]:
    def make(seed: int, shape: tuple) -> tuple:
        return _rng(seed + 1000).randn(*shape), _with_zeros(seed, shape)

    return [
        Case(N_("a (2, 3, 4) array"), lambda: make(211, (2, 3, 4))),
        Case(N_("a (2, 4, 4, 3) batch with exact zeros in Z"), lambda: make(212, (2, 4, 4, 3))),
    ]


def _dense(seed: int, m: int, n_in: int, n_out: int) -> tuple:
    r = _rng(seed)
    return r.randn(m, n_in), r.randn(n_in, n_out), r.randn(1, n_out)


DENSE_CASES = ((N_("4 examples, 5 inputs, 3 outputs"), 221, 4, 5, 3),
               (N_("a single example, 128 inputs, 10 outputs"), 222, 1, 128, 10))


def _dense_forward_cases() -> list[Case]:
    return [Case(n, lambda s=s, m=m, i=i, o=o: _dense(s, m, i, o)) for n, s, m, i, o in DENSE_CASES]


def _dense_back(seed: int, m: int, n_in: int, n_out: int) -> tuple:
    cache = _dense(seed, m, n_in, n_out)
    return _rng(seed + 1000).randn(m, n_out), cache


def _dense_backward_cases() -> list[Case]:
    return [
        Case(N_("4 examples, 5 inputs, 3 outputs"), lambda: _dense_back(231, 4, 5, 3)),
        Case(N_("6 examples, 7 inputs, 2 outputs"), lambda: _dense_back(232, 6, 7, 2)),
    ]


def _logits(seed: int, m: int, k: int, scale: float = 1.0) -> tuple:
    r = _rng(seed)
    return r.randn(m, k) * scale, r.randint(0, k, size=m).astype(np.int64)


LARGE_LOGITS = np.array([[1000.0, 999.0, -1000.0, 0.0],
                         [-1000.0, -999.0, -998.5, -1000.0],
                         [998.0, 1000.0, 1000.0, -1000.0]])


def _softmax_cases() -> list[Case]:
    return [
        Case(N_("4 examples, 5 classes"), lambda: _logits(241, 4, 5)),
        Case(N_("a single example, 3 classes"), lambda: _logits(242, 1, 3, 3.0)),
        Case(N_("large logits (around +-1000)"),
             lambda: (LARGE_LOGITS.copy(), np.array([0, 2, 1], dtype=np.int64))),
    ]


def _conv(seed: int, a_shape: tuple, f: int, n_c: int, stride: int, pad: int) -> tuple:
    r = _rng(seed)
    A = r.randn(*a_shape)
    W = r.randn(f, f, a_shape[-1], n_c)
    b = r.randn(1, 1, 1, n_c)
    return A, W, b, {"stride": stride, "pad": pad}


CONV_CASES = (
    (N_("the model's layer: stride 1, pad 1, f 3"), 251, (2, 5, 5, 1), 3, 4, 1, 1),
    (N_("non-square input, 3 channels, stride 2, pad 1"), 252, (2, 5, 7, 3), 3, 2, 2, 1),
    (N_("pad 0, f 2, stride 1"), 253, (1, 4, 5, 2), 2, 3, 1, 0),
    (N_("stride 3, pad 2 (windows skip part of the input)"), 254, (1, 7, 8, 2), 2, 2, 3, 2),
)


def _conv_forward_cases() -> list[Case]:
    return [Case(n, lambda s=s, a=a, f=f, c=c, st=st, p=p: _conv(s, a, f, c, st, p))
            for n, s, a, f, c, st, p in CONV_CASES[:3]]


def _conv_backward_cases() -> list[Case]:
    def make(k: int) -> tuple:
        _name, seed, a_shape, f, n_c, stride, pad = CONV_CASES[k]
        A, W, b, hp = _conv(seed, a_shape, f, n_c, stride, pad)
        n_h = (a_shape[1] - f + 2 * pad) // stride + 1
        n_w = (a_shape[2] - f + 2 * pad) // stride + 1
        return _rng(seed + 1000).randn(a_shape[0], n_h, n_w, n_c), (A, W, b, hp)

    return [Case(CONV_CASES[k][0], lambda k=k: make(k)) for k in (0, 2, 3)]


def _model(seed: int, m: int, side: int, n_filters: int, n_classes: int, shift: float) -> tuple:
    r = _rng(seed)
    X = r.rand(m, side, side, 1)
    features = (side // 2) * (side // 2) * n_filters
    params = {"W1": r.randn(3, 3, 1, n_filters) * 0.5, "b1": r.randn(1, 1, 1, n_filters) * 0.1 + shift,
              "W2": r.randn(features, n_classes) * 0.3, "b2": r.randn(1, n_classes) * 0.1}
    return X, params


#: The last number shifts the conv biases: -0.5 makes some pooling windows all negative before the ReLU.
MODEL_CASES = ((N_("the notebook's model on 3 images"), 261, 3, 8, 8, 10, 0.0),
               (N_("a smaller model: 4x4 images, 2 filters, 3 classes"), 262, 2, 4, 2, 3, -0.5))


def _model_forward_cases() -> list[Case]:
    return [Case(n, lambda s=s, m=m, h=h, c=c, k=k, b=b: _model(s, m, h, c, k, b))
            for n, s, m, h, c, k, b in MODEL_CASES]


def _model_backward_cases() -> list[Case]:
    def make(k: int) -> tuple:
        _name, seed, m, side, n_filters, n_classes, shift = MODEL_CASES[k]
        X, params = _model(seed, m, side, n_filters, n_classes, shift)
        return _rng(seed + 1000).randn(m, n_classes), X, params

    return [Case(MODEL_CASES[k][0], lambda k=k: make(k)) for k in (0, 1)]


SGD_SHAPES = {"W1": (3, 3, 1, 2), "b1": (1, 1, 1, 2), "W2": (8, 3), "b2": (1, 3)}


def _sgd(seed: int, zero_velocity: bool, learning_rate: float, beta: float) -> tuple:
    r = _rng(seed)
    params = {k: r.randn(*s) for k, s in SGD_SHAPES.items()}
    grads = {k: r.randn(*s) for k, s in SGD_SHAPES.items()}
    velocity = {k: (np.zeros(s) if zero_velocity else r.randn(*s)) for k, s in SGD_SHAPES.items()}
    return params, grads, velocity, learning_rate, beta


def _sgd_cases() -> list[Case]:
    return [
        Case(N_("the first step (velocity zero), learning rate 0.1, beta 0.9"), lambda: _sgd(281, True, 0.1, 0.9)),
        Case(N_("a later step (velocity not zero), learning rate 0.01, beta 0.5"),
             lambda: _sgd(282, False, 0.01, 0.5)),
    ]


#: The short training run of the check: the first TRAIN_M training images.
TRAIN_M = 48
TRAIN_KWARGS = {"epochs": 2, "batch_size": 10, "learning_rate": 0.05, "beta": 0.9}


def _train_inputs() -> tuple:
    import h5py  # only this check reads the data set

    with h5py.File(DIGITS_FILE, "r") as f:
        return f["train/X"][:TRAIN_M], f["train/y"][:TRAIN_M], 3


TRAIN_CASE = N_("{m} training images, seed 3, 2 epochs, batches of 10 (the last one of 8)")


def _train_cases() -> list[Case]:
    return [Case(TRAIN_CASE.format(m=TRAIN_M), _train_inputs, TRAIN_KWARGS, _(TRAIN_CASE, m=TRAIN_M))]


CASES: dict[str, Callable[[], list[Case]]] = {
    "relu_forward": _relu_forward_cases,
    "relu_backward": _relu_backward_cases,
    "dense_forward": _dense_forward_cases,
    "dense_backward": _dense_backward_cases,
    "softmax_cross_entropy": _softmax_cases,
    "conv_forward_fast": _conv_forward_cases,
    "conv_backward_fast": _conv_backward_cases,
    "model_forward": _model_forward_cases,
    "model_backward": _model_backward_cases,
    "sgd_momentum_update": _sgd_cases,
    "train": _train_cases,
}
#: Compared with the loop versions of cnn_layers.py, not with stored values.
LIVE = {"conv_forward_fast": "conv_forward", "conv_backward_fast": "conv_backward"}


# ---------------------------------------------------------------------------
# Running a function on a case (the same code computes the stored expectations)
# ---------------------------------------------------------------------------

def run_case(name: str, fn: Callable, case: Case, args: tuple, helpers: dict[str, Callable]) -> Any:
    """Call ``fn`` on one case. ``model_backward`` takes its caches from ``helpers["model_forward"]``."""
    if name == "model_backward":
        dlogits, X, params = args
        _logits_out, caches = helpers["model_forward"](X, params)
        return fn(dlogits, caches)
    return fn(*args, **case.kwargs)


def outputs(name: str, out: Any) -> dict[str, Any]:
    """The parts of a return value that are compared, by name."""
    if name in ("relu_forward", "dense_forward", "model_forward"):
        return {"out": out[0]}
    if name == "relu_backward":
        return {"dZ": out}
    if name == "dense_backward":
        return dict(zip(("dA_prev", "dW", "db"), out, strict=True))
    if name == "softmax_cross_entropy":
        return {"loss": float(out[0]), "dZ": out[1]}
    if name in ("model_backward", "train"):
        return {k: out[k] for k in PARAM_KEYS}
    if name == "sgd_momentum_update":
        params, velocity = out
        return {**{f"params/{k}": params[k] for k in PARAM_KEYS}, **{f"velocity/{k}": velocity[k] for k in PARAM_KEYS}}
    raise KeyError(name)


def compute_expected(functions: dict[str, Callable]) -> dict[str, Any]:
    """Expected outputs of every stored case, computed with ``functions`` (the course's solutions)."""
    expected: dict[str, Any] = {}
    for name in FUNCTIONS:
        if name in LIVE:
            continue
        for k, case in enumerate(CASES[name]()):
            out = run_case(name, functions[name], case, case.build(), functions)
            for part, value in outputs(name, out).items():
                expected[f"{name}/{k}/{part}"] = value if isinstance(value, float) else np.asarray(
                    value, dtype=float).tolist()
    return expected


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------

@dataclass
class Result:
    """What the visible checks found for one function."""

    function: str
    status: str = PASS
    failures: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    blocked_by: list[str] = field(default_factory=list)


class Report:
    """Collects one line per property, printing them if asked to."""

    def __init__(self, result: Result, echo: bool):
        self.result = result
        self.echo = echo
        self.say(result.function)

    def say(self, text: str) -> None:
        if self.echo:
            print(text)

    def line(self, ok: bool, what: str, expected: Any = None, got: Any = None, hint: str = "") -> bool:
        if ok:
            self.say("  " + _("[pass] {what}", what=what))
            return True
        self.result.failures.append(what)
        if self.result.status == PASS:
            self.result.status = FAIL
        self.say("  " + _("[FAIL] {what}", what=what))
        if expected is not None or got is not None:
            self.say("         " + _("expected: {value}", value=_fmt(expected)))
            self.say("         " + _("got:      {value}", value=_fmt(got)))
        if hint:
            self.say("         " + _("hint: {hint}", hint=hint))
        return False

    def close(self) -> None:
        r = self.result
        if r.status == BLOCKED:
            self.say("  " + _("{function} is not checked yet: it calls {helpers}, whose visible checks fail. "
                              "Fix that first.", function=r.function, helpers=", ".join(r.blocked_by)))
        elif r.failures and r.status != MISSING:
            self.say("  " + _("{count} check(s) failed for {function}.", count=len(r.failures), function=r.function))
        elif not r.failures:
            self.say("  " + _("All visible checks passed for {function}.", function=r.function))


def _fmt(value: Any) -> str:
    if isinstance(value, np.ndarray | list):
        text = np.array2string(np.asarray(value), precision=6, separator=" ", max_line_width=100, threshold=40)
        text = text.replace("\n", "\n                   ")
        return text if len(text) < 700 else text[:700] + " ..."
    if isinstance(value, float):
        return f"{value:.10g}"
    return repr(value) if isinstance(value, str | tuple) else str(value)


def _shape(x: Any) -> Any:
    return getattr(x, "shape", type(x).__name__)


RTOL, ATOL = 1e-6, 1e-9


def _as_float(x: Any) -> np.ndarray | None:
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        return None


def _close(got: Any, expected: Any, rtol: float = RTOL, atol: float = ATOL) -> bool:
    g, e = _as_float(got), _as_float(expected)
    return g is not None and e is not None and g.shape == e.shape and bool(np.allclose(g, e, rtol=rtol, atol=atol))


def _array(r: Report, where: str, what: str, got: Any, expected: Any, hint: str = "",
           rtol: float = RTOL, atol: float = ATOL) -> bool:
    """Shape, then values; a large array's differences are shown by position.

    ``where`` is the case's printed name; ``what`` an array's name (``dA_prev``), printed as it is.
    """
    expected = np.asarray(expected, dtype=float)
    if not isinstance(got, np.ndarray) or got.shape != expected.shape:
        return r.line(False, _("{case}: {what} shape", case=where, what=what), expected.shape, _shape(got), hint)
    r.line(True, _("{case}: {what} shape {shape}", case=where, what=what, shape=expected.shape))
    if _close(got, expected, rtol, atol):
        return r.line(True, _("{case}: {what} values", case=where, what=what))
    g = np.asarray(got, dtype=float)
    bad = ~np.isclose(g, expected, rtol=rtol, atol=atol)
    label = _("{case}: {what} values ({count} of {size} entries differ)", case=where, what=what,
              count=int(bad.sum()), size=expected.size)
    if expected.size <= 20:
        return r.line(False, label, expected, got, hint)
    r.line(False, label, hint=hint)
    for index in list(zip(*np.nonzero(bad), strict=True))[:3]:
        r.say("         " + _("at [{index}]: expected {expected:.6g}, got {got:.6g}",
                              index=", ".join(str(int(k)) for k in index), expected=expected[index] + 0.0,
                              got=g[index] + 0.0))
    return False


def _dict(r: Report, where: str, what: str, got: dict, expected: dict[str, np.ndarray],
          hints: dict[str, str] | None = None) -> bool:
    """A dict of arrays: one line for the shapes, one for the values, details for the first difference."""
    shapes = {k: _shape(got[k]) for k in expected}
    want = {k: v.shape for k, v in expected.items()}
    if not r.line(shapes == want, _("{case}: {what} shapes", case=where, what=what), want, shapes):
        return False
    bad = [k for k in expected if not _close(got[k], expected[k])]
    if not bad:
        return r.line(True, _("{case}: {what} values", case=where, what=what))
    k = bad[0]
    e, g = expected[k], np.asarray(got[k], dtype=float)
    hint = (hints or {}).get(k, "")
    label = _("{case}: {what} values ({keys} differ)", case=where, what=what, keys=", ".join(bad))
    if e.size <= 12:
        return r.line(False, label, e, g, hint)
    r.line(False, label, hint=hint)
    index = next(zip(*np.nonzero(~np.isclose(g, e, rtol=RTOL, atol=ATOL)), strict=True))
    r.say("         " + _("{key}[{index}]: expected {expected:.6g}, got {got:.6g}", key=k,
                          index=", ".join(str(int(i)) for i in index), expected=e[index] + 0.0, got=g[index] + 0.0))
    return False


def _same(original: Any, after: Any) -> bool:
    """Equal values and shapes, through tuples and dicts."""
    if isinstance(original, np.ndarray):
        return isinstance(after, np.ndarray) and original.shape == after.shape and np.array_equal(original, after)
    if isinstance(original, tuple | list):
        return isinstance(after, tuple | list) and len(original) == len(after) and all(
            _same(a, b) for a, b in zip(original, after, strict=True))
    if isinstance(original, dict):
        return isinstance(after, dict) and original.keys() == after.keys() and all(
            _same(original[k], after[k]) for k in original)
    return original == after


def _crash_hint(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, ValueError) and ("broadcast" in text or "shapes" in text or "matmul" in text):
        return _("two arrays of incompatible shapes met: write the shape of every array next to the line that "
                 "fails, as the docstring gives them.")
    if isinstance(exc, KeyError):
        return _("the dictionaries use the keys \"W1\", \"b1\", \"W2\" and \"b2\" (and \"stride\", \"pad\", \"f\").")
    if isinstance(exc, IndexError):
        return _("an index runs past the end of an array: check the labels y are used as column indices.")
    return ""


def _call(r: Report, fn: Callable, run: Callable[[], Any], case: Case) -> tuple[bool, Any]:
    """Run one case; report a crash as one failed line."""
    try:
        with np.errstate(all="ignore"):  # overflow shows up as a failed "finite" line, not a warning
            return True, run()
    except NotImplementedError:
        r.line(False, _("{function} is not implemented yet (it raises NotImplementedError)", function=fn.__name__))
        r.result.status = MISSING
    except Exception as exc:  # any crash becomes a readable line, not a traceback wall
        r.line(False, _("{case}: {function} raised {error}: {message}", case=case.title, function=fn.__name__,
                        error=type(exc).__name__, message=str(exc)[:200]),
               hint=_crash_hint(exc))
    return False, None


def _tuple(r: Report, case: Case, out: Any, size: int, what: str) -> bool:
    """``what`` names the returned values, such as ``(Z, cache)``."""
    return r.line(isinstance(out, tuple) and len(out) == size, _("{case}: returns {values}", case=case.title,
                                                                   values=what),
                  _("a tuple of {size}", size=size), type(out).__name__)


# ---------------------------------------------------------------------------
# Checking one case, function by function
# ---------------------------------------------------------------------------

HINTS = {
    "relu_all": N_("dZ equals dA everywhere: the gradient must be 0 wherever Z <= 0, since the ReLU output does "
                   "not change there."),
    "relu_kink": N_("Only the entries where Z is exactly 0 differ: this course takes the ReLU's slope at 0 to be "
                    "0, so the gradient passes only where Z > 0."),
    "averaged": N_("{part} looks divided by the batch size m: the layer's gradients are summed over the examples; the "
                   "loss already divided by m, and that factor is inside dZ."),
    "db_shape": N_("Keep db shaped like b, (1, n_out): sum with axis=0 and keepdims=True."),
    "finite": N_("Some values are inf or nan: subtract each row's largest logit before calling np.exp. It changes "
                 "nothing mathematically, and np.exp then never overflows."),
    "mean_dz": N_("dZ looks m times too large: the loss is a mean over the m examples, so its gradient is "
                  "(softmax - one_hot) / m."),
    "mean_loss": N_("The loss looks m times too large: return the mean over the examples, not the sum."),
    "loss_type": N_("Return the loss as a single number (a Python float, or a 0-d array), not an array of losses."),
    "conv_size": N_("Check the output size: n_H = (n_H_prev - f + 2 * pad) // stride + 1; take every stride-th "
                    "window of sliding_window_view, starting at the first one."),
    "conv_values": N_("Compare the axes: sliding_window_view puts the window's (f, f) axes last, after the "
                      "channels, so windows[i, h, w, k, u, v] meets W[u, v, k, c]."),
    "model": N_("Check the order: conv (stride 1, pad 1), ReLU, max-pool (f 2, stride 2), flatten with "
                "reshape(m, -1), dense; each layer's output feeds the next one."),
    "keys": N_("Return a dictionary with exactly the keys \"W1\", \"b1\", \"W2\" and \"b2\"."),
    "no_momentum": N_("The parameters moved by learning_rate * grads: they must move by learning_rate times the "
                      "new velocity."),
    "old_velocity": N_("The parameters moved by the old velocity: update the velocity first, then use the new one."),
    "ema": N_("This notebook's velocity adds the gradient itself (v = beta * v + grads), not (1 - beta) times it."),
    "train": N_("Follow the stated recipe exactly: params = init_params(seed), rng = np.random.default_rng(seed), "
                "velocities of zeros; each epoch order = rng.permutation(m) and batches order[k:k + batch_size] "
                "in turn (the last one may be smaller), each followed by one sgd_momentum_update."),
}


def _check_relu_forward(r: Report, key: str, case: Case, args: tuple, out: Any) -> None:
    if not _tuple(r, case, out, 2, "(A, cache)"):
        return
    _array(r, case.title, "A", out[0], _expected(f"{key}/out"))
    r.line(_same(args[0], out[1]), _("{case}: cache is Z", case=case.title), hint=_("Return Z itself as the cache."))


def _check_relu_backward(r: Report, key: str, case: Case, args: tuple, out: Any) -> None:
    expected = _expected(f"{key}/dZ")
    hint = ""
    if isinstance(out, np.ndarray) and out.shape == expected.shape and not _close(out, expected):
        dA, Z = args
        if np.array_equal(out, dA):
            hint = _(HINTS["relu_all"])
        elif np.all((Z == 0) | np.isclose(out, expected)):
            hint = _(HINTS["relu_kink"])
    _array(r, case.title, "dZ", out, expected, hint)


def _check_dense_forward(r: Report, key: str, case: Case, args: tuple, out: Any) -> None:
    if not _tuple(r, case, out, 2, "(Z, cache)"):
        return
    _array(r, case.title, "Z", out[0], _expected(f"{key}/out"))
    r.line(_same(args, out[1]), _("{case}: cache is (A_prev, W, b)", case=case.title),
           hint=_("Return the inputs, unchanged, as the cache: (A_prev, W, b)."))


def _check_dense_backward(r: Report, key: str, case: Case, args: tuple, out: Any) -> None:
    if not _tuple(r, case, out, 3, "(dA_prev, dW, db)"):
        return
    m = args[0].shape[0]
    for part, got in zip(("dA_prev", "dW", "db"), out, strict=True):
        expected = _expected(f"{key}/{part}")
        hint = ""
        if part != "dA_prev" and _close(np.asarray(got, dtype=float).reshape(-1) * m, expected.reshape(-1)):
            hint = _(HINTS["averaged"], part=part)
        elif part == "db" and np.shape(got) == expected.shape[1:]:
            hint = _(HINTS["db_shape"])
        _array(r, case.title, part, got, expected, hint)


def _check_softmax(r: Report, key: str, case: Case, args: tuple, out: Any) -> None:
    if not _tuple(r, case, out, 2, "(loss, dZ)"):
        return
    loss, dZ = out
    m = args[0].shape[0]
    expected_loss, expected_dz = _expected(f"{key}/loss"), _expected(f"{key}/dZ")
    finite = bool(np.all(np.isfinite(np.asarray(loss, dtype=float)))) and bool(
        np.all(np.isfinite(np.asarray(dZ, dtype=float))))
    if key.endswith("/2") or not finite:
        r.line(finite, _("{case}: loss and dZ are finite", case=case.title), hint=_(HINTS["finite"]))
    if not r.line(np.ndim(loss) == 0, _("{case}: the loss is a single number", case=case.title), _("a number"),
                  _("shape {shape}", shape=_shape(loss)), _(HINTS["loss_type"])):
        return
    value = float(loss)
    hint = _(HINTS["mean_loss"]) if m > 1 and abs(value - m * expected_loss) <= 1e-6 * (1 + abs(value)) else ""
    r.line(abs(value - expected_loss) <= ATOL + RTOL * abs(expected_loss), _("{case}: loss value", case=case.title),
           expected_loss, value, hint)
    hint = ""
    if m > 1 and _close(np.asarray(dZ, dtype=float) / m, expected_dz):
        hint = _(HINTS["mean_dz"])
    _array(r, case.title, "dZ", dZ, expected_dz, hint)


def _check_conv_fast(r: Report, name: str, case: Case, args: tuple, out: Any, loop: Callable) -> None:
    expected = loop(*case.build())
    if name == "conv_forward_fast":
        if not _tuple(r, case, out, 2, "(Z, cache)"):
            return
        hint = _(HINTS["conv_size"]) if np.shape(out[0]) != expected[0].shape else _(HINTS["conv_values"])
        _array(r, case.title, "Z", out[0], expected[0], hint, atol=1e-8)
        r.line(_same(tuple(case.build()), out[1]), _("{case}: cache is (A_prev, W, b, hparameters), unpadded",
                                                     case=case.title),
               hint=_("The cache must hold exactly the inputs you were given."))
        return
    if not _tuple(r, case, out, 3, "(dA_prev, dW, db)"):
        return
    for part, got, want in zip(("dA_prev", "dW", "db"), out, expected, strict=True):
        _array(r, case.title, part, got, want, atol=1e-8)


def _check_model_forward(r: Report, key: str, case: Case, args: tuple, out: Any) -> None:
    if not _tuple(r, case, out, 2, "(logits, caches)"):
        return
    _array(r, case.title, "logits", out[0], _expected(f"{key}/out"), _(HINTS["model"]))


def _grads_dict(r: Report, case: Case, grads: Any, params: dict) -> bool:
    if not r.line(isinstance(grads, dict) and set(grads) == set(PARAM_KEYS),
                  _("{case}: returns a dict with keys W1, b1, W2, b2", case=case.title), sorted(PARAM_KEYS),
                  sorted(grads) if isinstance(grads, dict) else type(grads).__name__, _(HINTS["keys"])):
        return False
    return True


def _check_model_backward(r: Report, key: str, case: Case, args: tuple, out: Any, helpers: dict) -> None:
    dlogits, X, params = case.build()
    if not _grads_dict(r, case, out, params):
        return
    if key.endswith("/1"):
        # Gradient check: the loss sum(logits * dlogits) has gradient dlogits with respect to the logits.
        model_forward = helpers["model_forward"]

        def loss() -> float:
            return float(np.sum(model_forward(X, params)[0] * dlogits))

        worst = max(relative_error(out[k], numerical_gradient(loss, params[k])) for k in PARAM_KEYS)
        r.line(worst < 1e-6, _("{case}: gradient check with numerical_gradient (largest relative error {error:.1e})",
                               case=case.title, error=worst),
               hint=_("A gradient disagrees with the forward pass; the values below show which."))
    _dict(r, case.title, _("gradients"), out, {k: _expected(f"{key}/{k}") for k in PARAM_KEYS})


def _check_sgd(r: Report, key: str, case: Case, args: tuple, out: Any) -> None:
    if not _tuple(r, case, out, 2, "(params, velocity)"):
        return
    params_in, grads, velocity_in, lr, beta = case.build()
    new_params, new_velocity = out
    for what, got in (("params", new_params), ("velocity", new_velocity)):
        if not r.line(isinstance(got, dict) and set(got) == set(PARAM_KEYS),
                      _("{case}: {what} has the keys W1, b1, W2, b2", case=case.title, what=what),
                      hint=_(HINTS["keys"])):
            return
    hints_v, hints_p = {}, {}
    for k in PARAM_KEYS:
        if _close(new_velocity[k], beta * velocity_in[k] + (1 - beta) * grads[k]):
            hints_v[k] = _(HINTS["ema"])
        if _close(new_params[k], params_in[k] - lr * grads[k]):
            hints_p[k] = _(HINTS["no_momentum"])
        elif np.any(velocity_in[k]) and _close(new_params[k], params_in[k] - lr * velocity_in[k]):
            hints_p[k] = _(HINTS["old_velocity"])
    _dict(r, case.title, "velocity", new_velocity, {k: _expected(f"{key}/velocity/{k}") for k in PARAM_KEYS},
          hints_v)
    _dict(r, case.title, "params", new_params, {k: _expected(f"{key}/params/{k}") for k in PARAM_KEYS}, hints_p)


def _check_train(r: Report, key: str, case: Case, args: tuple, out: Any, fn: Callable) -> None:
    if not r.line(isinstance(out, dict) and set(out) == set(PARAM_KEYS),
                  _("{case}: returns a dict with keys W1, b1, W2, b2", case=case.title), hint=_(HINTS["keys"])):
        return
    shapes = {k: np.shape(out[k]) for k in PARAM_KEYS}
    want = {"W1": (3, 3, 1, 8), "b1": (1, 1, 1, 8), "W2": (128, 10), "b2": (1, 10)}
    if not r.line(shapes == want, _("{case}: parameter shapes", case=case.title), want, shapes):
        return
    again = fn(*case.build(), **case.kwargs)
    r.line(isinstance(again, dict) and all(_same(np.asarray(out[k]), np.asarray(again.get(k))) for k in PARAM_KEYS),
           _("{case}: the same seed gives the same parameters", case=case.title),
           hint=_("Draw every random number from np.random.default_rng(seed) and init_params(seed)."))
    bad = [k for k in PARAM_KEYS if not _close(out[k], _expected(f"{key}/{k}"), 1e-5, 1e-8)]
    if bad:
        label = _("{case}: parameters equal those of the reference run ({keys} differ)", case=case.title,
                  keys=", ".join(bad))
    else:
        label = _("{case}: parameters equal those of the reference run", case=case.title)
    r.line(not bad, label, hint=_(HINTS["train"]))


def _check_case(r: Report, name: str, k: int, case: Case, fn: Callable, helpers: dict) -> None:
    args = case.build()
    ok, out = _call(r, fn, lambda: run_case(name, fn, case, args, helpers), case)
    if not ok:
        return
    try:
        _compare(r, name, f"{name}/{k}", case, fn, args, out, helpers)
    except Exception as exc:  # an output of an unexpected kind: say so instead of crashing the check
        r.line(False, _("{case}: the output could not be compared ({error}: {message})", case=case.title,
                        error=type(exc).__name__, message=str(exc)[:150]))
    if name not in ("sgd_momentum_update", "train") and not _same(case.build(), args):
        r.line(False, _("{case}: the inputs must be left unchanged (work on a copy)", case=case.title))


def _compare(r: Report, name: str, key: str, case: Case, fn: Callable, args: tuple, out: Any,
             helpers: dict) -> None:
    if name == "relu_forward":
        _check_relu_forward(r, key, case, args, out)
    elif name == "relu_backward":
        _check_relu_backward(r, key, case, args, out)
    elif name == "dense_forward":
        _check_dense_forward(r, key, case, args, out)
    elif name == "dense_backward":
        _check_dense_backward(r, key, case, args, out)
    elif name == "softmax_cross_entropy":
        _check_softmax(r, key, case, args, out)
    elif name in LIVE:
        _check_conv_fast(r, name, case, args, out, helpers[LIVE[name]])
    elif name == "model_forward":
        _check_model_forward(r, key, case, args, out)
    elif name == "model_backward":
        _check_model_backward(r, key, case, args, out, helpers)
    elif name == "sgd_momentum_update":
        _check_sgd(r, key, case, args, out)
    elif name == "train":
        _check_train(r, key, case, args, out, fn)


# ---------------------------------------------------------------------------
# Evaluating a function: dependencies first, then every case
# ---------------------------------------------------------------------------

def _version(fn: Any) -> tuple:
    code = getattr(fn, "__code__", None)
    if code is None:
        return (id(fn), "")
    return (id(fn), hashlib.sha1(code.co_code + repr(code.co_consts).encode() + repr(code.co_names).encode())
            .hexdigest())


def _key(name: str, fn: Callable) -> tuple:
    namespace = getattr(fn, "__globals__", {})
    return (name, _version(fn), *(_version(namespace.get(d)) for d in DEPENDS.get(name, ())))


#: Silent evaluations (dependencies, require_checks), by function and version.
_MEMO: dict[tuple, Result] = {}
#: The last result of each check_<function>, by function name: (key, result).
_LAST: dict[str, tuple[tuple, Result]] = {}


def _helpers(fn: Callable) -> dict[str, Callable]:
    from cnn_layers import conv_backward, conv_forward

    namespace = getattr(fn, "__globals__", {})
    return {"conv_forward": conv_forward, "conv_backward": conv_backward,
            "model_forward": namespace.get("model_forward")}


@contextlib.contextmanager
def _silenced():
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _raises_not_implemented(name: str, fn: Callable) -> bool:
    """Whether a function that cannot be checked yet is still the template (raises NotImplementedError)."""
    case = CASES[name]()[0]
    args = case.build()
    if name == "model_backward":
        args = (args[0], None)  # no caches: the helpers that would make them are not ready
    try:
        with _silenced(), np.errstate(all="ignore"):
            fn(*args, **case.kwargs)
    except NotImplementedError:
        return True
    except Exception:  # noqa: BLE001 - its helpers' bugs may well crash it
        return False
    return False


def evaluate(name: str, fn: Callable, echo: bool = False) -> Result:
    """Run the visible checks of ``name`` on ``fn`` and return what they found (printing if ``echo``)."""
    key = _key(name, fn)
    if not echo and key in _MEMO:
        return _MEMO[key]
    result = Result(name)
    r = Report(result, echo)
    namespace = getattr(fn, "__globals__", {})
    blockers = []
    for dep in DEPENDS.get(name, ()):
        helper = namespace.get(dep)
        if helper is None or evaluate(dep, helper).status != PASS:
            blockers.append(dep)
    if blockers:
        if _raises_not_implemented(name, fn):
            r.line(False, _("{function} is not implemented yet (it raises NotImplementedError)", function=name))
            result.status = MISSING
        else:
            result.status, result.blocked_by = BLOCKED, blockers
        r.close()
        _MEMO[key] = result
        return result
    helpers = _helpers(fn)
    for k, case in enumerate(CASES[name]()):
        result.cases.append(case.title)
        _check_case(r, name, k, case, fn, helpers)
        if result.status == MISSING:
            break
    r.close()
    _MEMO[key] = result
    return result


def _check(name: str, fn: Callable) -> Result:
    if name in LIVE:
        print(_("(expected values: {function} of cnn_layers.py, the first notebook's loop version)",
                function=LIVE[name]))
    result = evaluate(name, fn, echo=True)
    _LAST[name] = (_key(name, fn), result)
    return result


def check_relu_forward(relu_forward: Callable) -> None:
    _check("relu_forward", relu_forward)


def check_relu_backward(relu_backward: Callable) -> None:
    _check("relu_backward", relu_backward)


def check_dense_forward(dense_forward: Callable) -> None:
    _check("dense_forward", dense_forward)


def check_dense_backward(dense_backward: Callable) -> None:
    _check("dense_backward", dense_backward)


def check_softmax_cross_entropy(softmax_cross_entropy: Callable) -> None:
    _check("softmax_cross_entropy", softmax_cross_entropy)


def check_conv_forward_fast(conv_forward_fast: Callable) -> None:
    _check("conv_forward_fast", conv_forward_fast)


def check_conv_backward_fast(conv_backward_fast: Callable) -> None:
    _check("conv_backward_fast", conv_backward_fast)


def check_model_forward(model_forward: Callable) -> None:
    _check("model_forward", model_forward)


def check_model_backward(model_backward: Callable) -> None:
    _check("model_backward", model_backward)


def check_sgd_momentum_update(sgd_momentum_update: Callable) -> None:
    _check("sgd_momentum_update", sgd_momentum_update)


def check_train(train: Callable) -> None:
    _check("train", train)


#: A failure line's trailing detail, left out of require_checks' summary: "(3 of 12 entries differ)".
_DETAIL = re.compile(r" \([^()]*(differ|relative error)[^()]*\)$")

#: Set in the notebook's namespace by the hidden tests (cnngrader.incell.run_check) once they ran.
HIDDEN_TESTS_JUDGED = "_cnn_hidden_tests_judged"


def require_checks(fn: Callable) -> None:
    """For the test cells: raise (so Validate fails) when ``fn``'s last visible check failed or never ran."""
    name = getattr(fn, "__name__", _("this function"))
    if name not in CASES:
        raise AssertionError(_("{function} is not one of the graded functions", function=name))
    if getattr(fn, "__globals__", {}).get(HIDDEN_TESTS_JUDGED):
        # Autograding without the course's grader: this cell's hidden tests, which run first,
        # have already judged its one property; another property's failure must not cost it too.
        return
    if name not in _LAST:
        raise AssertionError(_("{function}: its visible check has not run yet: run check_{function}({function}) "
                               "first.", function=name))
    key, result = _LAST[name]
    if key != _key(name, fn):
        # The function (or one it calls) was redefined after its check ran: judge the current version.
        with _silenced():
            result = evaluate(name, fn)
    if result.status == MISSING:
        raise AssertionError(_("{function} is not implemented yet", function=name))
    if result.status == BLOCKED:
        print(_("{function} is not checked yet: it calls {helpers}, whose visible checks fail.", function=name,
                helpers=", ".join(result.blocked_by)))
        return
    if result.status == FAIL:
        failed = list(dict.fromkeys(_DETAIL.sub("", f) for f in result.failures))
        if len(failed) > 4:
            raise AssertionError(_("{function}: visible check failed: {failed} and more. The output of its check "
                                   "cell above shows what was expected and what came back.",
                                   function=name, failed="; ".join(failed[:4])))
        raise AssertionError(_("{function}: visible check failed: {failed}. The output of its check cell above "
                               "shows what was expected and what came back.", function=name, failed="; ".join(failed)))
    print(_("{function}: every visible check passed ({cases}).", function=name, cases="; ".join(result.cases)))


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

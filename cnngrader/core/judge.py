"""Compare a function's results with the hidden expectations.

The judge only ever sees decoded plain data (:mod:`cnngrader.core.codec`), never a
student object, so it runs in the trusted grader. Its messages name the failing
property and the case's input shapes and hyperparameters, and describe the
student's own result in a fixed vocabulary: no text the student's code
produced, and no number derived from a hidden expected value beyond a count
of differing entries or an order of magnitude.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnngrader.core.codec import Leaf, Opaque
from cnngrader.core.hidden_data import relative_error
from cnngrader.core.i18n import Msg, Translator, render
from cnngrader.core.record import Failure
from cnngrader.core.spec import Check

RTOL = 1e-4
#: Gradient checks pass below this relative error. The reference sits near
#: 1e-10 and float32 arithmetic near 1e-7; every bug in the mutant catalogue
#: sits above 1e-2.
GRAD_TOL = 1e-4


@dataclass
class Verdict:
    """A graded cell's outcome. ``messages`` are what the student reads; ``failures`` carry codes."""

    grade_id: str
    passed: bool
    messages: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    #: ``min_score`` checks: the share of the cell's points earned (None: all or nothing).
    fraction: float | None = None

    @property
    def message(self) -> str:
        return "\n".join(self.messages)

    def text(self, t: Translator | None = None) -> str:
        """The messages in the language of ``t`` (English without one)."""
        return "\n".join(str(render(m, t)) for m in self.messages)

    def translated_failures(self, t: Translator | None = None) -> list[Failure]:
        """The failures with their messages in the language of ``t``, as the record keeps them."""
        return [Failure(f.code, str(render(f.message, t)), f.case) for f in self.failures]

    def fail(self, check: Check, code: str, message: str, case: str = "") -> None:
        """Record one failed case: a message for the student, a code for the record."""
        self.passed = False
        self.messages.append(Msg("{function} - {prop}: {message}{case}", function=check.function,
                                 prop=Msg(check.prop, "spec"), message=message,
                                 case=Msg(" [case: {case}]", case=case) if case else ""))
        self.failures.append(Failure(code, message, case))


def failed(check: Check, code: str, message: str) -> Verdict:
    """A verdict that fails the whole cell for one reason (a placeholder, a grader that gave up)."""
    verdict = Verdict(check.grade_id, True)
    verdict.fail(check, code, message)
    return verdict


class Mismatch(Exception):
    """Raised inside a comparison with the student-facing reason and its failure code."""

    def __init__(self, message: str, code: str = "wrong_values"):
        super().__init__(message)
        self.message = message  # a Msg keeps its template for translation
        self.code = code


def _shape_text(shape: tuple[int, ...]) -> str:
    if len(shape) <= 8 and all(d <= 100_000 for d in shape):
        return str(tuple(shape))
    return Msg("(an unusually large shape)")


def _describe(value: Any) -> str:
    if isinstance(value, Leaf):
        if value.array.ndim == 0:
            return Msg("a {kind} {dtype}", kind=value.kind.replace("_", " "), dtype=str(value.array.dtype))
        return Msg("an array of shape {shape}", shape=_shape_text(value.array.shape))
    if isinstance(value, Opaque):
        return Msg("an object of type {type}", type=value.type_name)
    if isinstance(value, tuple | list):
        return Msg("a {type} of length {n}", type=type(value).__name__, n=len(value))
    return Msg("a {type}", type=type(value).__name__)


def _array(value: Any, what: str) -> np.ndarray:
    if isinstance(value, Leaf):
        return value.array
    if isinstance(value, bool | int | float) and not isinstance(value, bool):
        return np.asarray(value, dtype=float)
    raise Mismatch(Msg("{what} should be a NumPy array, got {got}", what=what, got=_describe(value)), "not_an_array")


def _numeric(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype.kind not in "biuf":
        raise Mismatch(Msg("{what} has dtype {dtype}, expected numbers", what=what, dtype=str(arr.dtype)), "not_numeric")
    return arr.astype(float)


def _same_shape(got: np.ndarray, exp: np.ndarray, what: str) -> None:
    if got.shape != exp.shape:
        raise Mismatch(Msg("{what} has the wrong shape: got {got}, expected {expected}", what=what,
                           got=_shape_text(got.shape), expected=str(tuple(exp.shape))), "wrong_shape")


def _keys(got: Any, exp: dict, what: str) -> dict:
    """A returned dictionary with exactly the expected keys (parameters, gradients)."""
    if not isinstance(got, dict):
        raise Mismatch(Msg("{what} should be a dict with keys {keys}, got {got}", what=what,
                           keys=", ".join(sorted(exp)), got=_describe(got)), "wrong_keys")
    if set(got) != set(exp):
        raise Mismatch(Msg("{what} should have the keys {keys}", what=what, keys=", ".join(sorted(exp))), "wrong_keys")
    return got


def _entries(got: Any, exp: Any, what: str) -> list[tuple[Any, Any, str]] | None:
    """The pairs to compare when the expectation is a dict or a tuple (None for a single array)."""
    if isinstance(exp, dict):
        got = _keys(got, exp, what)
        return [(got[key], exp[key], Msg("{what}[{key}]", what=what, key=repr(key))) for key in sorted(exp)]
    if isinstance(exp, tuple | list):
        if not isinstance(got, tuple | list) or len(got) != len(exp):
            raise Mismatch(Msg("{what} should be a tuple of {n}, got {got}", what=what, n=len(exp), got=_describe(got)),
                           "not_a_tuple")
        return [(g, e, Msg("{what}[{key}]", what=what, key=k)) for k, (g, e) in enumerate(zip(got, exp, strict=True))]
    return None


def _close(got: Any, exp: Any, what: str) -> None:
    parts = _entries(got, exp, what)
    if parts is not None:
        for g, e, w in parts:
            _close(g, e, w)
        return
    g = _array(got, what)
    e = _array(exp, "expected")
    _same_shape(g, e, what)
    g = _numeric(g, what)
    e = e.astype(float)
    if not np.all(np.isfinite(g)):
        raise Mismatch(Msg("{what} contains NaN or infinity", what=what), "not_finite")
    scale = max(1.0, float(np.max(np.abs(e)))) if e.size else 1.0
    if not np.allclose(g, e, rtol=RTOL, atol=RTOL * scale):
        wrong = int(np.sum(~np.isclose(g, e, rtol=RTOL, atol=RTOL * scale)))
        raise Mismatch(Msg("{what} has wrong values ({wrong} of {size} entries differ)", what=what, wrong=wrong,
                           size=g.size), "wrong_values")


def _grad(got: Any, exp: Any, what: str) -> None:
    g = _array(got, what)
    e = _array(exp, "expected")
    _same_shape(g, e, what)
    g = _numeric(g, what)
    if not np.all(np.isfinite(g)):
        raise Mismatch(Msg("{what} contains NaN or infinity", what=what), "not_finite")
    err = relative_error(g, e)
    if err > GRAD_TOL:
        # Only the order of magnitude: enough to tell a slip from a wrong formula.
        magnitude = math.floor(math.log10(err)) if err > 0 else -99
        raise Mismatch(Msg("gradient check on {what} failed (relative error about 1e{magnitude:+03d})", what=what,
                           magnitude=magnitude), "wrong_gradient")


def _item(value: Any, n: int, what: str) -> Any:
    if not isinstance(value, tuple | list) or len(value) <= n:
        raise Mismatch(Msg("{what}: the function should return a tuple, got {got}", what=what, got=_describe(value)),
                       "not_a_tuple")
    return value[n]


def _scalar_value(got: Any) -> float:
    if isinstance(got, bool):
        raise Mismatch(Msg("returned a bool, expected a number"), "not_a_number")
    if isinstance(got, int | float):
        return float(got)
    arr = _array(got, Msg("the result"))
    if arr.size != 1:
        raise Mismatch(Msg("the result should be a single number, got an array of shape {shape}",
                           shape=str(tuple(arr.shape))), "not_a_scalar")
    return float(_numeric(arr, Msg("the result")).reshape(-1)[0])


def _select(check: Check, value: Any, what: str = Msg("output")) -> Any:
    """The item of a returned tuple that the check compares (the whole result when ``output`` is unset)."""
    return value if not isinstance(check.output, int) else _item(value, check.output, what)


def _compare(check: Check, args: Any, got: Any, exp: Any, skip: frozenset[str] = frozenset()) -> None:
    kind, what = check.compare, Msg(check.what, "spec")
    if kind == "shape":
        _shapes(_select(check, got), _select(check, exp, "expected"), what)
    elif kind == "array":
        _close(_select(check, got), _select(check, exp, "expected"), what)
    elif kind in ("scalar", "scalar_strict"):
        value = _scalar_value(_select(check, got))
        expected = _scalar_value(_select(check, exp, "expected"))
        got = _select(check, got)
        if kind == "scalar_strict" and isinstance(got, Leaf) and got.array.ndim != 0:
            raise Mismatch(Msg("returned an array of shape {shape}; return a single number, for example with b.item()",
                               shape=str(tuple(got.array.shape))), "not_a_scalar")
        if not np.isfinite(value) or not np.isclose(value, expected, rtol=RTOL, atol=RTOL * max(1.0, abs(expected))):
            raise Mismatch(Msg("the value is wrong"), "wrong_values")
    elif kind == "holds_inputs":
        _holds_inputs(check, args, got)
    elif kind == "speedup":
        _speedup(check, got, exp)
    elif kind == "gradient":
        if check.output == "dict":
            got = _keys(got, {n: None for n in check.returns}, Msg("the result"))
        for k, name in enumerate(check.returns):
            if name not in check.gradients or name in skip:
                continue
            if check.output == "dict":
                value = got[name]
            else:
                value = got if len(check.returns) == 1 else _item(got, k, Msg("output"))
            _grad(value, exp[name], name)
    elif kind == "bool_array":
        arr = _array(_select(check, got), what)
        e = _array(_select(check, exp, "expected"), "expected")
        if arr.shape != e.shape:
            raise Mismatch(Msg("{what} should have shape {shape}, got {got}", what=what, shape=str(tuple(e.shape)),
                               got=_describe(got)), "wrong_shape")
        if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
            raise Mismatch(Msg("{what} should hold only True/False values", what=what), "not_boolean")
        if not np.array_equal(arr.astype(bool), e.astype(bool)):
            raise Mismatch(Msg("{what} is True in the wrong places", what=what), "wrong_values")
    else:  # pragma: no cover - the spec loader refuses unknown kinds
        raise ValueError(f"unknown check kind {kind}")


def _speedup(check: Check, got: Any, exp: Any) -> None:
    """Right on inputs nobody saw before, and at least ``min_ratio`` times faster than the course's loops."""
    _close(_select(check, got), _select(check, exp["expected"], "expected"), Msg(check.what, "spec"))
    if not exp.get("timed"):
        return
    timing = exp.get("timing")
    if not timing or timing["fast_seconds"] <= 0:
        raise Mismatch(Msg("could not be timed"), "not_graded")
    if timing.get("broken") or timing.get("calls") != check.repeats:
        raise Mismatch(Msg("the timed calls did not come back one result per input"), "timing_protocol")
    ratio = timing["loop_seconds"] / timing["fast_seconds"]
    if ratio < check.min_ratio:
        raise Mismatch(Msg("{ratio:.1f} times as fast as the loop version; this check needs {needed:g} times",
                           ratio=ratio, needed=check.min_ratio), "too_slow")


def _shapes(got: Any, exp: Any, what: str) -> None:
    parts = _entries(got, exp, what) if isinstance(exp, dict) else None
    if parts is not None:
        for g, e, w in parts:
            _shapes(g, e, w)
        return
    _same_shape(_array(got, what), _array(exp, "expected"), what)


def _holds_inputs(check: Check, args: Any, got: Any) -> None:
    """The selected output is a tuple holding the inputs the function was given (a cache)."""
    if check.output != 0:
        # Only the held value is judged here: the main output's values have cells of their own.
        _array(_item(got, 0, Msg("output")), Msg("the output"))
    held = _select(check, got)
    names = [n for n, _ in check.holds]
    if len(names) == 1 and not isinstance(args[check.holds[0][1]], tuple | list):
        held = (held,)  # a cache that is the one input itself (ReLU keeps Z)
    if not isinstance(held, tuple | list) or len(held) != len(names):
        raise Mismatch(Msg("{what} should be a tuple ({names}), got {got}", what=Msg(check.what, "spec"),
                           names=", ".join(names), got=_describe(held)), "wrong_cache")
    for (name, index), stored in zip(check.holds, held, strict=True):
        given = args[index]
        if isinstance(given, dict):
            if stored != given:
                raise Mismatch(Msg("{what} must hold the {name} dictionary you were given",
                                   what=Msg(check.what, "spec"), name=name), "wrong_cache")
            continue
        try:
            _close(stored, given, Msg("{what} {name}", what=Msg(check.what, "spec"), name=name))
        except Mismatch as exc:
            raise Mismatch(Msg("{what} must hold the input {name} you were given, unchanged ({why})",
                               what=Msg(check.what, "spec"), name=name, why=exc.message), "wrong_cache") from None


def scale_fraction(check: Check, score: float) -> float:
    """The share of the points a score earns on the check's scale (the highest step it reaches)."""
    return max((fraction for threshold, fraction in check.scale if score >= threshold), default=0.0)


def _judge_score(check: Check, verdict: Verdict, describe: str, value: Any, scorer: Callable[[Any], float]) -> None:
    score = float(scorer(value))
    if not math.isfinite(score):
        raise Mismatch(Msg("the result could not be scored"), "unreadable_result")
    fraction = scale_fraction(check, score)
    verdict.fraction = fraction if verdict.fraction is None else min(verdict.fraction, fraction)
    full = min((t for t, f in check.scale if f >= 1.0), default=None)
    if fraction >= 1.0:
        return
    target = Msg(" (full points from {full:.3f})", full=full) if full is not None else ""
    if fraction > 0:
        verdict.fail(check, "partial_score", Msg("scored {score:.3f}: {fraction:.0%} of the points{target}",
                                                 score=score, fraction=fraction, target=target), describe)
    else:
        verdict.fail(check, "below_threshold", Msg("scored {score:.3f}, below the lowest step of the scale{target}",
                                                   score=score, target=target), describe)


def _default_error(result: dict) -> tuple[str, str]:
    return "failed", "failed"


def judge(check: Check, items: list[tuple[str, Any, Any]], results: list[dict],
          describe_error: Callable[[dict], tuple[str, str]] = _default_error,
          skip: frozenset[str] = frozenset(), scorer: Callable[[Any], float] | None = None) -> Verdict:
    """Judge one check.

    ``items`` are ``(describe, args, expected)`` from the hidden data and
    ``results`` one dict per case: ``{"status": "ok", "value": ...}`` or
    ``{"status": "error", ...}``, which ``describe_error`` turns into a failure
    code and words.
    A missing result fails its case. ``skip`` names gradients that an earlier
    cell of the same function already charged, so one bug costs its points once.
    ``min_score`` checks score the result with ``scorer`` (trusted code of the
    assignment) and earn a share of the points on the check's scale.
    """
    verdict = Verdict(check.grade_id, True)
    for k, (describe, args, expected) in enumerate(items):
        result = results[k] if k < len(results) else {"status": "error", "error": "process",
                                                       "note": Msg("no result was produced")}
        try:
            if result.get("status") != "ok":
                code, message = describe_error(result)
                raise Mismatch(message, code)
            if check.compare == "min_score":
                if scorer is None:
                    raise Mismatch(Msg("the grader has no scorer for this check"), "grading_gave_up")
                _judge_score(check, verdict, describe, result.get("value"), scorer)
            else:
                _compare(check, args, result.get("value"), expected, skip)
        except Mismatch as exc:
            verdict.fail(check, exc.code, exc.message, describe)
        except Exception as exc:  # a malformed result must fail, never crash the grader
            verdict.fail(check, "unreadable_result", Msg("could not read the result ({error})",
                                                         error=type(exc).__name__), describe)
    if check.compare == "min_score" and any(f.code not in ("partial_score", "below_threshold")
                                            for f in verdict.failures):
        verdict.fraction = 0.0  # a case that could not be scored at all earns nothing
    return verdict


def _primary(check: Check, value: Any) -> list[np.ndarray] | None:
    """The arrays a function's main output consists of, or None when it has none to compare."""
    if isinstance(check.output, int):
        value = value[0] if isinstance(value, tuple | list) and value else None
    if isinstance(value, dict):
        parts = [_primary_leaf(value[k]) for k in sorted(value)]
        return None if not parts or any(p is None for p in parts) else parts  # type: ignore[return-value]
    if check.compare == "gradient" and len(check.returns) > 1:
        if not isinstance(value, tuple | list):
            return None
        parts = [_primary_leaf(v) for v in value]
        return None if any(p is None for p in parts) else parts  # type: ignore[return-value]
    leaf = _primary_leaf(value)
    return None if leaf is None else [leaf]


def _primary_leaf(value: Any) -> np.ndarray | None:
    if isinstance(value, Leaf):
        return value.array
    if isinstance(value, bool | int | float):
        return np.asarray(value, dtype=float)
    return None


def probe_failure(probe: Check, items: list[tuple[str, Any, Any]], results: list[dict]) -> str | None:
    """A reason when the function's output does not depend on its input values, else None.

    The probe is two calls with inputs of the same shapes and different
    values, whose expected outputs differ. A function that returns the same
    output for both (zeros of the right shape, a constant) is a placeholder:
    it earns none of its function's points. A correct solution, written any
    way at all, always passes this.
    """
    if len(items) != 2 or len(results) < 2:
        return None
    if any(r.get("status") != "ok" for r in results[:2]):
        return None
    got = [_primary(probe, r.get("value")) for r in results[:2]]
    exp = [_primary(probe, _as_result(probe, e)) for _, _, e in items]
    if got[0] is None or got[1] is None or exp[0] is None or exp[1] is None:
        return None
    same_got = all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(got[0], got[1], strict=False))
    same_exp = all(a.shape == b.shape and np.allclose(a, b) for a, b in zip(exp[0], exp[1], strict=False))
    if same_got and not same_exp:
        return Msg("the output does not depend on the input values (is it still a placeholder?)")
    return None


def _as_result(check: Check, expected: Any) -> Any:
    """Expected gradients are stored by name; line them up like the returned tuple."""
    if check.compare == "gradient" and isinstance(expected, dict) and check.output != "dict":
        values = tuple(expected[n] for n in check.returns)
        return values if len(values) > 1 else values[0]
    return expected

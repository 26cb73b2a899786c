"""The judge, one check kind at a time: what passes, and which failure code a wrong result gets."""

from __future__ import annotations

import numpy as np
import pytest

from cnngrader.core.codec import Leaf, Opaque
from cnngrader.core.judge import judge
from cnngrader.core.spec import Check
from cnngrader.sandbox.verdicts import _Context

#: Check fields of each kind as a spec would write them (the first notebook's uses).
KINDS = {
    "first_array": {"compare": "array", "output": 0},
    "first_shape": {"compare": "shape", "output": 0},
    "grad_single": {"compare": "gradient", "returns": ("dA_prev",), "gradients": ("dA_prev",)},
    "grad_dWdb": {"compare": "gradient", "returns": ("dA_prev", "dW", "db"), "gradients": ("dW", "db")},
    "pool_cache": {"compare": "holds_inputs", "output": 1, "what": "cache",
                   "holds": (("A_prev", 0), ("hparameters", 1))},
    "mask": {"compare": "bool_array", "what": "the mask"},
    "mask_shape": {"compare": "shape", "what": "the mask"},
}


def _check(kind: str) -> Check:
    fields = KINDS.get(kind, {"compare": kind})
    return Check("test_x", "f", 3, "a property", **fields)


def _leaf(a) -> Leaf:
    a = np.asarray(a)
    return Leaf(a, "ndarray")


def _verdict(kind: str, value, expected, args=()):
    return judge(_check(kind), [("x (2, 2)", args, expected)], [{"status": "ok", "value": value}])


A = np.arange(6.0).reshape(2, 3)


@pytest.mark.parametrize("kind, value, expected, code", [
    ("shape", _leaf(A), _leaf(A + 1), None),
    ("shape", _leaf(A.T), _leaf(A), "wrong_shape"),
    ("array", _leaf(A), _leaf(A), None),
    ("array", _leaf(A + 1), _leaf(A), "wrong_values"),
    ("array", _leaf(A * np.nan), _leaf(A), "not_finite"),
    ("array", _leaf(A.astype(str)), _leaf(A), "not_numeric"),
    ("array", Opaque("Thing"), _leaf(A), "not_an_array"),
    ("first_array", (_leaf(A), None), (_leaf(A), None), None),
    ("first_array", _leaf(A), (_leaf(A), None), "not_a_tuple"),
    ("first_shape", (_leaf(A.T), None), (_leaf(A), None), "wrong_shape"),
    ("scalar", 3.0, _leaf(3.0), None),
    ("scalar", 2.0, _leaf(3.0), "wrong_values"),
    ("scalar", True, _leaf(1.0), "not_a_number"),
    ("scalar", _leaf([1.0, 2.0]), _leaf(3.0), "not_a_scalar"),
    ("scalar", _leaf(np.ones((1, 1, 1))), _leaf(1.0), None),
    ("scalar_strict", _leaf(np.ones((1, 1, 1))), _leaf(1.0), "not_a_scalar"),
])
def test_value_kinds(kind, value, expected, code):
    """Each comparison kind passes a right result and names what is wrong with a wrong one."""
    verdict = _verdict(kind, value, expected)
    assert verdict.passed is (code is None)
    assert [f.code for f in verdict.failures] == ([] if code is None else [code])


def test_failure_carries_case_and_student_words():
    """A failure keeps the case apart from the message; the notebook line joins them."""
    verdict = _verdict("array", _leaf(A + 1), _leaf(A))
    (failure,) = verdict.failures
    assert failure.case == "x (2, 2)" and "6 of 6 entries differ" in failure.message
    assert verdict.messages == [f"f - a property: {failure.message} [case: x (2, 2)]"]


def test_gradient_kinds():
    """grad_single compares dA_prev by relative error; a wrong gradient is wrong_gradient."""
    exp = {"dA_prev": _leaf(A)}
    assert _verdict("grad_single", _leaf(A), exp).passed
    assert _verdict("grad_single", _leaf(-A), exp).failures[0].code == "wrong_gradient"
    both = {"dW": _leaf(A), "db": _leaf(A[:1])}
    assert _verdict("grad_dWdb", (None, _leaf(A), _leaf(A[:1])), both).passed
    assert _verdict("grad_dWdb", (None, _leaf(A), _leaf(A[:1] * 2)), both).failures[0].code == "wrong_gradient"


def test_cache_kinds():
    """A pooling cache must hold the input unchanged and the very hparameters dictionary."""
    hp = {"f": 2, "stride": 1}
    args = (_leaf(A), hp)
    assert _verdict("pool_cache", (_leaf(A), (_leaf(A), hp)), None, args).passed
    padded = (_leaf(A), (_leaf(np.pad(A, 1)), hp))
    assert _verdict("pool_cache", padded, None, args).failures[0].code == "wrong_cache"
    assert _verdict("pool_cache", (_leaf(A), (_leaf(A), {"f": 3})), None, args).failures[0].code == "wrong_cache"
    assert _verdict("pool_cache", (_leaf(A), "cache"), None, args).failures[0].code == "wrong_cache"


def test_mask_kinds():
    """A mask must have the window's shape, hold booleans, and be True only at the maximum."""
    x = np.array([[1.0, 5.0], [3.0, 2.0]])
    args = (_leaf(x),)
    right = x == x.max()
    assert _verdict("mask", _leaf(right), _leaf(right), args).passed
    assert _verdict("mask", _leaf(~right), _leaf(right), args).failures[0].code == "wrong_values"
    assert _verdict("mask", _leaf(x), _leaf(right), args).failures[0].code == "not_boolean"
    assert _verdict("mask_shape", _leaf(right.ravel()), _leaf(right), args).failures[0].code == "wrong_shape"


def test_errors_are_described_with_codes():
    """A failed call gets the code and words describe_error chooses; a missing result is not_graded."""
    check = _check("array")
    items = [("c1", (), _leaf(A)), ("c2", (), _leaf(A))]
    describe = _Context("f", [], []).describe_error
    verdict = judge(check, items, [{"status": "error", "error": "IndexError"}], describe)
    assert [f.code for f in verdict.failures] == ["raised_IndexError", "not_graded"]
    assert verdict.failures[1].message == "no result was produced"
    for error, code in [("NotImplementedError", "not_implemented"), ("MemoryError", "memory_limit"),
                        ("SomeClassOfMine", "raised_own_exception"), ("not_defined", "not_defined")]:
        assert describe({"status": "error", "error": error})[0] == code


def test_a_malformed_result_fails_without_crashing():
    """A result the judge cannot even inspect costs the case, with code unreadable_result."""
    class Weird:
        def __getattr__(self, name):
            raise RuntimeError("no")

    verdict = judge(_check("array"), [("c", (), _leaf(A))], [Weird()])
    assert [f.code for f in verdict.failures] == ["unreadable_result"]


def test_dicts_and_tuples_are_compared_entry_by_entry():
    """Parameters come back as dicts, gradients as tuples: every entry is compared, keys must match."""
    exp = {"W": _leaf(A), "b": _leaf(A[:1])}
    assert _verdict("array", {"W": _leaf(A), "b": _leaf(A[:1])}, exp).passed
    assert _verdict("array", {"W": _leaf(A), "b": _leaf(A[:1] + 1)}, exp).failures[0].code == "wrong_values"
    assert _verdict("array", {"W": _leaf(A)}, exp).failures[0].code == "wrong_keys"
    assert _verdict("array", (_leaf(A), _leaf(A)), (_leaf(A), _leaf(A))).passed
    assert _verdict("array", (_leaf(A),), (_leaf(A), _leaf(A))).failures[0].code == "not_a_tuple"


def test_named_gradients_in_a_dict():
    """A gradient check with output = "dict" reads each gradient by its name."""
    check = Check("test_x", "f", 3, "p", compare="gradient", output="dict", returns=("W1", "b1"))
    exp = {"W1": _leaf(A), "b1": _leaf(A[:1])}
    ok = judge(check, [("c", (), exp)], [{"status": "ok", "value": {"W1": _leaf(A), "b1": _leaf(A[:1])}}])
    bad = judge(check, [("c", (), exp)], [{"status": "ok", "value": {"W1": _leaf(A), "b1": _leaf(-A[:1])}}])
    assert ok.passed and [f.code for f in bad.failures] == ["wrong_gradient"]


def test_a_cache_that_is_the_input_itself():
    """ReLU caches Z itself, not a tuple: one held input is compared directly."""
    check = Check("test_x", "f", 2, "p", compare="holds_inputs", output=1, what="cache", holds=(("Z", 0),))
    args = (_leaf(A),)
    good = judge(check, [("c", args, None)], [{"status": "ok", "value": (_leaf(A), _leaf(A))}])
    bad = judge(check, [("c", args, None)], [{"status": "ok", "value": (_leaf(A), _leaf(np.maximum(A, 3)))}])
    assert good.passed and bad.failures[0].code == "wrong_cache"


def test_score_scale_gives_the_highest_step_reached():
    """min_score: the share of points is the highest step of the scale the score reaches."""
    from cnngrader.core.judge import scale_fraction

    check = Check("test_x", "f", 9, "p", compare="min_score", scorer="s", scale=((0.95, 1.0), (0.9, 0.5)))
    assert [scale_fraction(check, s) for s in (0.97, 0.95, 0.93, 0.5)] == [1.0, 1.0, 0.5, 0.0]
    verdict = judge(check, [("c", (), None)], [{"status": "ok", "value": 0.5}], scorer=lambda v: 0.92)
    assert verdict.fraction == 0.5 and verdict.failures[0].code == "partial_score"

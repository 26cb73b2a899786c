"""The hidden checks: one check per graded test cell.

Each :class:`Check` names the graded function, the property it tests (the
words a student sees when it fails), the points of its test cell, and the
inputs it uses. None of these inputs appear in the visible checks: the
published cases are all square, use a single stride per pass and pool to a
1x1 output, so every hidden case differs in shape, stride or padding.

Inputs come from ``np.random.default_rng(seed).standard_normal``; continuous
random values make tied maxima in a pooling window a probability-zero event,
and :func:`build_cases` asserts that no window has a tie anyway.

The expected outputs are not here. ``hidden_data`` computes them from the
reference solutions (and, for the backward passes, by central differences)
and stores them instructor-side in HDF5.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Functions a check swaps in from the reference while it runs, so a bug in a
#: helper only costs points in the helper itself (credit isolation).
HELPERS: dict[str, tuple[str, ...]] = {
    "conv_forward": ("zero_pad", "conv_single_step"),
    "conv_backward": ("zero_pad",),
    "pool_backward": ("create_mask_from_window", "distribute_value"),
}

#: Forward passes that raise while a backward pass is graded: a backward pass
#: must be backpropagation, not central differences of the student's own forward pass.
BLOCKED: dict[str, tuple[str, ...]] = {
    "conv_backward": ("conv_forward", "pool_forward"),
    "pool_backward": ("pool_forward", "conv_forward"),
}


@dataclass(frozen=True)
class Case:
    """One call of the graded function.

    ``args`` holds NumPy arrays and plain Python values; ``describe`` is what a
    failure message says about the input (shapes and hyperparameters only).
    """

    args: tuple
    describe: str


@dataclass(frozen=True)
class Check:
    grade_id: str
    function: str
    points: int
    prop: str
    #: How results are compared, see :mod:`cnngrader.judge`.
    kind: str
    cases: tuple[Case, ...] = field(default=())


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _randn(seed: int, *shape: int) -> np.ndarray:
    return _rng(seed).standard_normal(shape)


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(str(d) for d in a.shape) + ")"


def _zero_pad(seed: int, shape: tuple[int, ...], pad: int) -> Case:
    X = _randn(seed, *shape)
    return Case((X, pad), f"X {_shape(X)}, pad={pad}")


def _css(seed: int, f: int, n_c: int) -> Case:
    rng = _rng(seed)
    a = rng.standard_normal((f, f, n_c))
    W = rng.standard_normal((f, f, n_c))
    b = rng.standard_normal((1, 1, 1))
    return Case((a, W, b), f"a_slice_prev {_shape(a)}")


def _conv(seed: int, a_shape: tuple[int, ...], f: int, n_c: int, stride: int, pad: int,
          bias_scale: float = 1.0) -> Case:
    rng = _rng(seed)
    A = rng.standard_normal(a_shape)
    W = rng.standard_normal((f, f, a_shape[-1], n_c))
    b = rng.standard_normal((1, 1, 1, n_c)) * bias_scale
    hp = {"stride": stride, "pad": pad}
    return Case((A, W, b, hp), f"A_prev {_shape(A)}, W {_shape(W)}, stride={stride}, pad={pad}")


def _pool(seed: int, a_shape: tuple[int, ...], f: int, stride: int, mode: str) -> Case:
    A = _randn(seed, *a_shape)
    hp = {"f": f, "stride": stride}
    return Case((A, hp, mode), f"A_prev {_shape(A)}, f={f}, stride={stride}, mode={mode!r}")


def conv_output_shape(a_shape: tuple[int, ...], f: int, n_c: int, stride: int, pad: int) -> tuple[int, ...]:
    m, h, w, _ = a_shape
    return (m, (h - f + 2 * pad) // stride + 1, (w - f + 2 * pad) // stride + 1, n_c)


def pool_output_shape(a_shape: tuple[int, ...], f: int, stride: int) -> tuple[int, ...]:
    m, h, w, c = a_shape
    return (m, (h - f) // stride + 1, (w - f) // stride + 1, c)


def _conv_back(seed: int, a_shape: tuple[int, ...], f: int, n_c: int, stride: int, pad: int) -> Case:
    fwd = _conv(seed, a_shape, f, n_c, stride, pad)
    A, W, b, hp = fwd.args
    dZ = _randn(seed + 1000, *conv_output_shape(a_shape, f, n_c, stride, pad))
    return Case((dZ, (A, W, b, hp)), fwd.describe)


def _pool_back(seed: int, a_shape: tuple[int, ...], f: int, stride: int, mode: str) -> Case:
    fwd = _pool(seed, a_shape, f, stride, mode)
    A, hp, _ = fwd.args
    dA = _randn(seed + 1000, *pool_output_shape(a_shape, f, stride))
    return Case((dA, (A, hp), mode), fwd.describe)


def _window(seed: int, shape: tuple[int, int]) -> Case:
    # Shift the values negative so that a mask of the minimum, or of the
    # largest absolute value, differs from the mask of the maximum.
    x = _randn(seed, *shape) - 1.0
    return Case((x,), f"x {_shape(x)}")


def _spread(dz: float, shape: tuple[int, int]) -> Case:
    return Case((dz, shape), f"dz={dz}, shape={shape}")


def build_checks() -> tuple[Check, ...]:
    """Every hidden check, in notebook order. Points sum to 100."""
    C = Check
    return (
        # zero_pad: 6
        C("test_zero_pad_shape", "zero_pad", 2, "output shape (pad height and width only)", "shape",
          (_zero_pad(11, (2, 3, 5, 4), 3), _zero_pad(12, (1, 4, 2, 1), 1))),
        C("test_zero_pad_values", "zero_pad", 2, "zeros on the border, the input unchanged inside", "array",
          (_zero_pad(13, (3, 2, 4, 2), 2),)),
        C("test_zero_pad_pad0", "zero_pad", 2, "pad = 0", "array",
          (_zero_pad(14, (2, 3, 3, 3), 0),)),
        # conv_single_step: 6
        C("test_conv_single_step_value", "conv_single_step", 3, "value of sum(a_slice_prev * W) + b",
          "scalar_value", (_css(21, 3, 2), _css(22, 2, 5), _css(23, 1, 1))),
        C("test_conv_single_step_scalar", "conv_single_step", 3,
          "returns a scalar (float or 0-d array), not an array of shape (1, 1, 1)", "scalar_type",
          (_css(24, 5, 3),)),
        # conv_forward: 22
        C("test_conv_forward_shape", "conv_forward", 4, "output shape", "first_shape",
          (_conv(31, (2, 7, 5, 3), 3, 4, 2, 1), _conv(32, (1, 6, 8, 2), 2, 3, 3, 0),
           _conv(33, (2, 5, 5, 1), 4, 2, 1, 2))),
        # The stride and pad cells use one filter and no bias, so a bug with filters or
        # biases costs only the cell that tests them; the stride cases use pad > 0.
        C("test_conv_forward_stride", "conv_forward", 5, "stride > 1", "first_array",
          (_conv(34, (2, 7, 6, 3), 3, 1, 2, 1, bias_scale=0.0), _conv(35, (1, 9, 8, 2), 2, 1, 3, 1, bias_scale=0.0))),
        C("test_conv_forward_pad", "conv_forward", 5, "pad = 0 and pad > 0", "first_array",
          (_conv(36, (2, 5, 6, 2), 3, 1, 1, 0, bias_scale=0.0), _conv(37, (1, 4, 5, 3), 2, 1, 1, 2, bias_scale=0.0),
           _conv(38, (2, 3, 4, 1), 1, 1, 1, 1, bias_scale=0.0))),
        C("test_conv_forward_channels", "conv_forward", 4,
          "several examples, filters and biases (each filter uses its own W and b)", "first_array",
          (_conv(39, (3, 4, 4, 4), 2, 5, 1, 1, bias_scale=5.0),)),
        C("test_conv_forward_cache", "conv_forward", 4, "cache must hold the unpadded input and the parameters",
          "conv_cache",
          (_conv(40, (2, 5, 4, 2), 3, 2, 1, 2),)),
        # pool_forward: 16
        # Max and average use stride 1, so a stride bug costs only the stride cell,
        # which in turn uses max pooling only.
        C("test_pool_forward_max", "pool_forward", 4, "max pooling", "first_array",
          (_pool(41, (2, 5, 4, 3), 2, 1, "max"), _pool(42, (1, 6, 5, 2), 3, 1, "max"))),
        C("test_pool_forward_average", "pool_forward", 4, "average pooling", "first_array",
          (_pool(43, (2, 5, 4, 3), 2, 1, "average"), _pool(44, (1, 6, 5, 2), 3, 1, "average"))),
        C("test_pool_forward_stride", "pool_forward", 4, "stride > 1 and overlapping windows (stride < f)",
          "first_array",
          (_pool(45, (2, 7, 5, 2), 3, 2, "max"), _pool(46, (2, 6, 8, 3), 2, 2, "max"),
           _pool(47, (1, 8, 7, 1), 2, 3, "max"))),
        C("test_pool_forward_cache", "pool_forward", 4, "cache must hold the input and the parameters", "pool_cache",
          (_pool(48, (2, 5, 7, 3), 2, 1, "max"),)),
        # conv_backward: 22
        C("test_conv_backward_dA", "conv_backward", 6, "dA_prev", "grad_dA",
          (_conv_back(51, (2, 5, 4, 3), 3, 2, 1, 1),)),
        C("test_conv_backward_dW_db", "conv_backward", 6, "dW and db, summed over every example", "grad_dWdb",
          (_conv_back(52, (3, 4, 5, 2), 2, 3, 1, 1),)),
        C("test_conv_backward_stride", "conv_backward", 5, "stride > 1", "grad_all",
          (_conv_back(53, (2, 7, 6, 2), 3, 2, 2, 1), _conv_back(54, (1, 8, 7, 1), 2, 2, 3, 1))),
        C("test_conv_backward_pad0", "conv_backward", 5, "pad = 0", "grad_all",
          (_conv_back(55, (2, 5, 5, 2), 2, 3, 1, 0),)),
        # create_mask_from_window: 5
        C("test_create_mask_values", "create_mask_from_window", 3, "True exactly at the maximum", "mask",
          (_window(61, (3, 3)), _window(62, (2, 2)), _window(63, (4, 4)))),
        C("test_create_mask_shape", "create_mask_from_window", 2, "mask has the window's shape", "mask_shape",
          (_window(64, (4, 4)), _window(65, (1, 1)))),
        # distribute_value: 5
        C("test_distribute_value_values", "distribute_value", 3, "each cell gets dz / (n_H * n_W)", "array",
          (_spread(3.0, (3, 2)), _spread(-1.5, (4, 4)), _spread(2.0, (2, 3)))),
        C("test_distribute_value_shape", "distribute_value", 2, "output shape", "shape",
          (_spread(1.0, (2, 5)), _spread(4.0, (1, 1)))),
        # pool_backward: 18
        C("test_pool_backward_max", "pool_backward", 5, "max pooling", "grad_single",
          (_pool_back(71, (2, 4, 6, 2), 2, 2, "max"),)),
        C("test_pool_backward_average", "pool_backward", 5, "average pooling", "grad_single",
          (_pool_back(72, (2, 6, 4, 2), 3, 3, "average"), _pool_back(73, (1, 4, 4, 2), 2, 2, "average"))),
        C("test_pool_backward_overlap", "pool_backward", 4, "overlapping windows (stride < f)", "grad_single",
          (_pool_back(74, (2, 5, 5, 2), 3, 1, "max"), _pool_back(75, (2, 5, 5, 2), 3, 1, "average"))),
        # Max pooling with windows that do not overlap: a "=" for "+=" bug costs only the
        # overlap cell, and a bug in the average branch only the average cell.
        C("test_pool_backward_stride", "pool_backward", 4, "stride > 1", "grad_single",
          (_pool_back(76, (1, 7, 7, 2), 3, 3, "max"), _pool_back(77, (1, 7, 8, 2), 2, 3, "max"),
           _pool_back(78, (2, 6, 8, 1), 2, 3, "max"))),
    )


def build_probes() -> dict[str, Check]:
    """One probe per function: two calls on inputs of the same shapes with different values.

    A function whose main output is the same for both (a placeholder that
    returns zeros of the right shape, say) earns none of its points; see
    :func:`cnngrader.judge.probe_failure`. Probes carry no points of their own.
    """
    C = Check
    return {c.function: c for c in (
        C("probe_zero_pad", "zero_pad", 0, "depends on its input", "array",
          (_zero_pad(81, (2, 3, 4, 2), 1), _zero_pad(82, (2, 3, 4, 2), 1))),
        C("probe_conv_single_step", "conv_single_step", 0, "depends on its input", "scalar_value",
          (_css(83, 3, 2), _css(84, 3, 2))),
        C("probe_conv_forward", "conv_forward", 0, "depends on its input", "first_array",
          (_conv(85, (2, 5, 5, 2), 3, 2, 1, 1), _conv(86, (2, 5, 5, 2), 3, 2, 1, 1))),
        C("probe_pool_forward", "pool_forward", 0, "depends on its input", "first_array",
          (_pool(87, (2, 5, 5, 2), 2, 1, "max"), _pool(88, (2, 5, 5, 2), 2, 1, "max"))),
        C("probe_conv_backward", "conv_backward", 0, "depends on its input", "grad_all",
          (_conv_back(89, (1, 4, 4, 2), 2, 2, 1, 1), _conv_back(90, (1, 4, 4, 2), 2, 2, 1, 1))),
        C("probe_create_mask_from_window", "create_mask_from_window", 0, "depends on its input", "mask",
          (_window(91, (3, 3)), _window(92, (3, 3)))),
        C("probe_distribute_value", "distribute_value", 0, "depends on its input", "array",
          (_spread(2.0, (2, 3)), _spread(-3.0, (2, 3)))),
        C("probe_pool_backward", "pool_backward", 0, "depends on its input", "grad_single",
          (_pool_back(93, (1, 4, 4, 2), 2, 2, "max"), _pool_back(94, (1, 4, 4, 2), 2, 2, "max"))),
    )}


_CHECKS: tuple[Check, ...] | None = None
_PROBES: dict[str, Check] | None = None


def probes() -> dict[str, Check]:
    """The dependence probe of each graded function, by function name."""
    global _PROBES
    if _PROBES is None:
        _PROBES = build_probes()
    return _PROBES


def checks() -> tuple[Check, ...]:
    global _CHECKS
    if _CHECKS is None:
        _CHECKS = build_checks()
    return _CHECKS


def by_grade_id() -> dict[str, Check]:
    return {c.grade_id: c for c in checks()}


def checks_for(function: str) -> list[Check]:
    return [c for c in checks() if c.function == function]


def has_tied_window(A: np.ndarray, f: int, stride: int) -> bool:
    """True when some pooling window holds its maximum twice."""
    m, h, w, c = A.shape
    for vs in range(0, h - f + 1, stride):
        for hs in range(0, w - f + 1, stride):
            win = A[:, vs:vs + f, hs:hs + f, :].reshape(m, f * f, c)
            top = win.max(axis=1, keepdims=True)
            if ((win == top).sum(axis=1) > 1).any():
                return True
    return False


def function_points() -> dict[str, int]:
    """Points of each graded function, in notebook order."""
    points: dict[str, int] = {}
    for check in checks():
        points[check.function] = points.get(check.function, 0) + check.points
    return points


def total_points() -> int:
    return sum(c.points for c in checks())


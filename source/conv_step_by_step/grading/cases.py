"""Input makers for the hidden checks of "Convolutional Neural Networks, step by step".

``spec.toml`` names a maker and its arguments for every case, for example
``{make = "conv", seed = 31, a_shape = [2, 7, 5, 3], f = 3, n_c = 4, stride = 2, pad = 1}``.
Inputs come from ``np.random.default_rng(seed).standard_normal``: continuous
random values make tied maxima in a pooling window a probability-zero event,
and :func:`make_pool_backward` refuses a max-pooling input with a tie anyway.
"""

from __future__ import annotations

import numpy as np

from cnngrader.core.spec import Case, GradientSetup


def _randn(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(str(d) for d in a.shape) + ")"


def conv_output_shape(a_shape: tuple[int, ...], f: int, n_c: int, stride: int, pad: int) -> tuple[int, ...]:
    m, h, w, _ = a_shape
    return (m, (h - f + 2 * pad) // stride + 1, (w - f + 2 * pad) // stride + 1, n_c)


def pool_output_shape(a_shape: tuple[int, ...], f: int, stride: int) -> tuple[int, ...]:
    m, h, w, c = a_shape
    return (m, (h - f) // stride + 1, (w - f) // stride + 1, c)


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


def make_zero_pad(seed: int, shape: tuple[int, ...], pad: int) -> Case:
    X = _randn(seed, *shape)
    return Case((X, pad), f"X {_shape(X)}, pad={pad}")


def make_single_step(seed: int, f: int, n_c: int) -> Case:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((f, f, n_c))
    W = rng.standard_normal((f, f, n_c))
    b = rng.standard_normal((1, 1, 1))
    return Case((a, W, b), f"a_slice_prev {_shape(a)}")


def make_conv(seed: int, a_shape: tuple[int, ...], f: int, n_c: int, stride: int, pad: int,
              bias_scale: float = 1.0) -> Case:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal(a_shape)
    W = rng.standard_normal((f, f, a_shape[-1], n_c))
    b = rng.standard_normal((1, 1, 1, n_c)) * bias_scale
    hp = {"stride": stride, "pad": pad}
    return Case((A, W, b, hp), f"A_prev {_shape(A)}, W {_shape(W)}, stride={stride}, pad={pad}")


def make_pool(seed: int, a_shape: tuple[int, ...], f: int, stride: int, mode: str) -> Case:
    A = _randn(seed, *a_shape)
    hp = {"f": f, "stride": stride}
    return Case((A, hp, mode), f"A_prev {_shape(A)}, f={f}, stride={stride}, mode={mode!r}")


def make_conv_backward(seed: int, a_shape: tuple[int, ...], f: int, n_c: int, stride: int, pad: int) -> Case:
    fwd = make_conv(seed, a_shape, f, n_c, stride, pad)
    A, W, b, hp = fwd.args
    dZ = _randn(seed + 1000, *conv_output_shape(a_shape, f, n_c, stride, pad))
    setup = GradientSetup((A, W, b, hp), dZ, {"dA_prev": 0, "dW": 1, "db": 2})
    return Case((dZ, (A, W, b, hp)), fwd.describe, setup)


def make_pool_backward(seed: int, a_shape: tuple[int, ...], f: int, stride: int, mode: str) -> Case:
    fwd = make_pool(seed, a_shape, f, stride, mode)
    A, hp, _ = fwd.args
    if mode == "max" and has_tied_window(A, f, stride):
        raise AssertionError(f"tied maximum in a hidden pooling input: {fwd.describe}")
    dA = _randn(seed + 1000, *pool_output_shape(a_shape, f, stride))
    setup = GradientSetup((A, hp), dA, {"dA_prev": 0}, {"mode": mode})
    return Case((dA, (A, hp), mode), fwd.describe, setup)


def make_window(seed: int, shape: tuple[int, int]) -> Case:
    # Shift the values negative so that a mask of the minimum, or of the
    # largest absolute value, differs from the mask of the maximum.
    x = _randn(seed, *shape) - 1.0
    return Case((x,), f"x {_shape(x)}")


def make_spread(dz: float, shape: tuple[int, int]) -> Case:
    return Case((dz, shape), f"dz={dz}, shape={shape}")

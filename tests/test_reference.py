"""The reference solutions in the source notebook reproduce every published value."""

from __future__ import annotations

import numpy as np
import pytest

from cnngrader.core.reference import load_reference


@pytest.fixture(scope="module")
def ref():
    return load_reference()


def test_zero_pad_published(ref):
    np.random.seed(1)
    x = np.random.randn(4, 3, 3, 2)
    x_pad = ref["zero_pad"](x, 2)
    assert x_pad.shape == (4, 7, 7, 2)
    np.testing.assert_allclose(x[1, 1], [[0.90085595, -0.68372786], [-0.12289023, -0.93576943],
                                         [-0.26788808, 0.53035547]], atol=1e-8)
    assert not x_pad[1, 1].any()


def test_conv_single_step_published(ref):
    np.random.seed(1)
    a, W, b = np.random.randn(4, 4, 3), np.random.randn(4, 4, 3), np.random.randn(1, 1, 1)
    Z = ref["conv_single_step"](a, W, b)
    assert np.ndim(Z) == 0
    assert Z == pytest.approx(-6.99908945068, abs=1e-10)


@pytest.fixture(scope="module")
def conv(ref):
    np.random.seed(1)
    A_prev = np.random.randn(10, 4, 4, 3)
    W = np.random.randn(2, 2, 3, 8)
    b = np.random.randn(1, 1, 1, 8)
    Z, cache = ref["conv_forward"](A_prev, W, b, {"pad": 2, "stride": 2})
    return A_prev, Z, cache


def test_conv_forward_published(conv):
    A_prev, Z, cache = conv
    assert Z.shape == (10, 4, 4, 8)
    assert np.mean(Z) == pytest.approx(0.0489952035289, abs=1e-12)
    np.testing.assert_allclose(Z[3, 2, 1], [-0.61490741, -6.7439236, -2.55153897, 1.75698377, 3.56208902,
                                            0.53036437, 5.18531798, 8.75898442], atol=1e-8)
    np.testing.assert_allclose(cache[0][1][2][3], [-0.20075807, 0.18656139, 0.41005165], atol=1e-8)
    assert cache[0] is A_prev


def test_conv_backward_published(ref, conv):
    _, Z, cache = conv
    dA, dW, db = ref["conv_backward"](Z, cache)
    assert np.mean(dA) == pytest.approx(1.45243777754, abs=1e-10)
    assert np.mean(dW) == pytest.approx(1.72699145831, abs=1e-10)
    assert np.mean(db) == pytest.approx(7.83923256462, abs=1e-10)


@pytest.mark.parametrize("mode, expected", [
    ("max", [[[[1.74481176, 0.86540763, 1.13376944]]], [[[1.13162939, 1.51981682, 2.18557541]]]]),
    ("average", [[[[0.02105773, -0.20328806, -0.40389855]]], [[[-0.22154621, 0.51716526, 0.48155844]]]]),
])
def test_pool_forward_published(ref, mode, expected):
    np.random.seed(1)
    A_prev = np.random.randn(2, 4, 4, 3)
    A, cache = ref["pool_forward"](A_prev, {"stride": 2, "f": 3}, mode=mode)
    np.testing.assert_allclose(A, expected, atol=1e-8)
    assert cache[0] is A_prev


def test_create_mask_published(ref):
    np.random.seed(1)
    x = np.random.randn(2, 3)
    assert ref["create_mask_from_window"](x).tolist() == [[True, False, False], [False, False, False]]


def test_distribute_value_published(ref):
    np.testing.assert_array_equal(ref["distribute_value"](2, (2, 2)), [[0.5, 0.5], [0.5, 0.5]])


@pytest.mark.parametrize("mode, expected", [
    ("max", [[0, 0], [5.05844394, -1.68282702], [0, 0]]),
    ("average", [[0.08485462, 0.2787552], [1.26461098, -0.25749373], [1.17975636, -0.53624893]]),
])
def test_pool_backward_published(ref, mode, expected):
    np.random.seed(1)
    A_prev = np.random.randn(5, 5, 3, 2)
    _, cache = ref["pool_forward"](A_prev, {"stride": 1, "f": 2})
    dA = np.random.randn(5, 4, 2, 2)
    assert np.mean(dA) == pytest.approx(0.145713902729, abs=1e-11)
    np.testing.assert_allclose(ref["pool_backward"](dA, cache, mode=mode)[1, 1], expected, atol=1e-8)


def test_reference_backward_matches_numeric_gradients():
    """Building the hidden data re-checks both backward passes against central differences."""
    from cnngrader.core import hidden_data, spec

    ref = load_reference()
    assignment = spec.load()
    graded = [c for c in assignment.checks if c.expect == "numeric_gradient"]
    assert {c.function for c in graded} == {"conv_backward", "pool_backward"}
    for check in graded:
        for case in check.cases:
            grads = hidden_data.expected_for(assignment, ref, check, case)  # raises if they disagree
            assert all(np.all(np.isfinite(g)) for g in grads.values())

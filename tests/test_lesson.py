"""The lesson text says what the code does: every formula with a code form is computed and checked.

Each display formula of the source notebook is registered below with a
function that computes it *literally* (index arrays and ``np.einsum`` over a
small non-square case, never by calling the reference) and compares the
result with the reference solution. A formula added to or changed in the
notebook without a matching check makes :func:`test_every_display_formula_is_checked`
fail. Inline formulas and code snippets in the prose are pinned the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import nbformat
import numpy as np
import pytest

from cnngrader.core import paths, spec
from cnngrader.core.reference import load_reference

checks_data = spec.load().module("checks_data")


@pytest.fixture(scope="module")
def ref() -> dict[str, Callable]:
    return load_reference()


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(paths.source_notebook(), as_version=4)


@pytest.fixture(scope="module")
def md(notebook) -> dict[str, str]:
    return {c.id: c.source for c in notebook.cells if c.cell_type == "markdown"}


def _display_formulas(text: str) -> list[str]:
    return [" ".join(f.split()) for f in re.findall(r"\$\$(.+?)\$\$", text, flags=re.S)]


def _snippets(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


# ---------------------------------------------------------------------------
# Literal computations, written from the formulas' indices.

#: Small cases: non-square, several examples and channels, with and without overlap.
CONV_CASES = [
    {"shape": (2, 5, 4, 3), "f": 3, "n_C": 2, "stride": 1, "pad": 1},
    {"shape": (2, 6, 5, 2), "f": 2, "n_C": 3, "stride": 2, "pad": 1},
    {"shape": (3, 7, 6, 2), "f": 3, "n_C": 2, "stride": 2, "pad": 0},
    {"shape": (1, 5, 7, 1), "f": 3, "n_C": 2, "stride": 3, "pad": 2},
]


def _conv_case(case: dict, seed: int = 0):
    rng = np.random.RandomState(seed)
    A = rng.randn(*case["shape"])
    W = rng.randn(case["f"], case["f"], case["shape"][3], case["n_C"])
    b = rng.randn(1, 1, 1, case["n_C"])
    return A, W, b, {"stride": case["stride"], "pad": case["pad"]}


def _out_size(n: int, f: int, p: int, s: int) -> int:
    # n_H = floor((n_H_prev - f + 2p) / s) + 1
    return int(np.floor((n - f + 2 * p) / s)) + 1


def _window_index(n_H: int, n_W: int, f: int, s: int):
    """Index arrays H*s+U and W*s+V, broadcast to shape (n_H, n_W, f, f)."""
    h, w, u, v = np.ix_(np.arange(n_H), np.arange(n_W), np.arange(f), np.arange(f))
    return h * s + u, w * s + v


def _patches(A_pad: np.ndarray, n_H: int, n_W: int, f: int, s: int) -> np.ndarray:
    """P[i, h, w, u, v, k] = A_pad[i, h*s+u, w*s+v, k], shape (m, n_H, n_W, f, f, n_C_prev)."""
    rows, cols = _window_index(n_H, n_W, f, s)
    return A_pad[:, rows, cols, :]


def _sizes(A: np.ndarray, W: np.ndarray, hp: dict) -> tuple[int, int]:
    f = W.shape[0]
    return (_out_size(A.shape[1], f, hp["pad"], hp["stride"]), _out_size(A.shape[2], f, hp["pad"], hp["stride"]))


def _pad(A: np.ndarray, p: int) -> np.ndarray:
    return np.pad(A, ((0, 0), (p, p), (p, p), (0, 0)))


def literal_Z(A, W, b, hp):
    n_H, n_W = _sizes(A, W, hp)
    P = _patches(_pad(A, hp["pad"]), n_H, n_W, W.shape[0], hp["stride"])
    return np.einsum("ihwuvk,uvkc->ihwc", P, W) + b.reshape(-1)


def literal_dA(A, W, dZ, hp):
    f, s, p = W.shape[0], hp["stride"], hp["pad"]
    n_H, n_W = dZ.shape[1:3]
    dA_pad = np.zeros(_pad(A, p).shape)
    rows, cols = _window_index(n_H, n_W, f, s)
    # dA_pad[i, h*s+u, w*s+v, k] += sum_c W[u, v, k, c] dZ[i, h, w, c], for every (h, w).
    contribution = np.einsum("uvkc,ihwc->ihwuvk", W, dZ)
    np.add.at(dA_pad, (slice(None), rows, cols, slice(None)), contribution)
    return dA_pad[:, p:p + A.shape[1], p:p + A.shape[2], :]


def literal_dW(A, W, dZ, hp):
    n_H, n_W = dZ.shape[1:3]
    P = _patches(_pad(A, hp["pad"]), n_H, n_W, W.shape[0], hp["stride"])
    return np.einsum("ihwuvk,ihwc->uvkc", P, dZ)


def literal_db(dZ):
    return np.einsum("ihwc->c", dZ).reshape(1, 1, 1, -1)


def _backward_case(ref, case: dict):
    A, W, b, hp = _conv_case(case)
    Z, cache = ref["conv_forward"](A, W, b, hp)
    dZ = np.random.RandomState(1).randn(*Z.shape)
    return A, W, b, hp, dZ, ref["conv_backward"](dZ, cache)


def check_Z(ref):
    for case in CONV_CASES:
        A, W, b, hp = _conv_case(case)
        np.testing.assert_allclose(literal_Z(A, W, b, hp), ref["conv_forward"](A, W, b, hp)[0], atol=1e-12)


def check_output_size(ref):
    for n_H_prev, n_W_prev in ((5, 4), (7, 7), (8, 5)):
        for f in (1, 2, 3):
            for s in (1, 2, 3):
                for p in (0, 1, 2):
                    A = np.zeros((1, n_H_prev, n_W_prev, 1))
                    Z, _ = ref["conv_forward"](A, np.zeros((f, f, 1, 2)), np.zeros((1, 1, 1, 2)), {"stride": s, "pad": p})
                    assert Z.shape == (1, _out_size(n_H_prev, f, p, s), _out_size(n_W_prev, f, p, s), 2)


def check_pool_output_size(ref):
    for n_H_prev, n_W_prev in ((5, 4), (7, 7), (8, 5)):
        for f in (1, 2, 3):
            for s in (1, 2, 3):
                A = np.zeros((2, n_H_prev, n_W_prev, 3))
                out, _ = ref["pool_forward"](A, {"f": f, "stride": s})
                assert out.shape == (2, _out_size(n_H_prev, f, 0, s), _out_size(n_W_prev, f, 0, s), 3)


def check_chain_rule(ref):
    """dJ/dx = sum dZ * dZ/dx: with J = sum(Z * G), the backward pass of G is J's gradient."""
    A, W, b, hp = _conv_case({"shape": (1, 4, 3, 2), "f": 2, "n_C": 2, "stride": 1, "pad": 1})
    Z, cache = ref["conv_forward"](A, W, b, hp)
    G = np.random.RandomState(3).randn(*Z.shape)
    dA, dW, db = ref["conv_backward"](G, cache)
    # Z is linear in each of A, W and b, so dZ/dx is the coefficient of x: the
    # difference quotient with step 1 is exact up to rounding.
    for x, grad in ((A, dA), (W, dW), (b, db)):
        for index in np.ndindex(x.shape):
            base = x[index]
            x[index] = base + 1.0
            J_plus = np.sum(ref["conv_forward"](A, W, b, hp)[0] * G)
            x[index] = base
            J = np.sum(ref["conv_forward"](A, W, b, hp)[0] * G)
            assert J_plus - J == pytest.approx(grad[index], abs=1e-9)


def check_dA(ref):
    for case in CONV_CASES:
        A, W, _, hp, dZ, (dA, _, _) = _backward_case(ref, case)
        np.testing.assert_allclose(literal_dA(A, W, dZ, hp), dA, atol=1e-12)


def check_dW(ref):
    for case in CONV_CASES:
        A, W, _, hp, dZ, (_, dW, _) = _backward_case(ref, case)
        np.testing.assert_allclose(literal_dW(A, W, dZ, hp), dW, atol=1e-12)


def check_db(ref):
    for case in CONV_CASES:
        *_, dZ, (_, _, db) = _backward_case(ref, case)
        assert db.shape == (1, 1, 1, dZ.shape[3])
        np.testing.assert_allclose(literal_db(dZ), db, atol=1e-12)


def check_average(ref):
    """a = mean of the window, so every cell of the window receives dz / (f_H f_W)."""
    for dz, shape in ((2.0, (2, 2)), (-1.5, (2, 3)), (0.7, (3, 1))):
        f_H, f_W = shape
        np.testing.assert_allclose(ref["distribute_value"](dz, shape), np.full(shape, dz / (f_H * f_W)), atol=1e-15)
        window = np.random.RandomState(4).randn(*shape)
        nudged = window.copy()
        nudged[0, 0] += 1.0
        # The mean is linear, so a step of 1 changes it by exactly 1/(f_H f_W).
        assert np.mean(nudged) - np.mean(window) == pytest.approx(1 / (f_H * f_W), abs=1e-12)


#: Every display formula of the notebook, normalised to single spaces, with its check.
FORMULAS: dict[str, Callable] = {
    r"n_H = \left\lfloor \frac{n_{H_{prev}} - f + 2p}{s} \right\rfloor + 1, \qquad "
    r"n_W = \left\lfloor \frac{n_{W_{prev}} - f + 2p}{s} \right\rfloor + 1,": check_output_size,
    r"Z[i, h, w, c] = \sum_{u=0}^{f-1} \sum_{v=0}^{f-1} \sum_{k=0}^{n_{C_{prev}}-1} "
    r"A_{pad}[i,\, hs+u,\, ws+v,\, k]\; W[u, v, k, c] + b[c].": check_Z,
    r"n_H = \left\lfloor \frac{n_{H_{prev}} - f}{s} \right\rfloor + 1, \qquad "
    r"n_W = \left\lfloor \frac{n_{W_{prev}} - f}{s} \right\rfloor + 1, \qquad n_C = n_{C_{prev}}.": check_pool_output_size,
    r"\frac{\partial J}{\partial x} = \sum_{i, h, w, c} \frac{\partial J}{\partial Z[i, h, w, c]}\; "
    r"\frac{\partial Z[i, h, w, c]}{\partial x} = \sum_{i, h, w, c} dZ[i, h, w, c]\; "
    r"\frac{\partial Z[i, h, w, c]}{\partial x}.": check_chain_rule,
    r"dA_{pad}[i,\, hs+u,\, ws+v,\, k] \mathrel{+}= \sum_{c=0}^{n_C-1} W[u, v, k, c]\; dZ[i, h, w, c] "
    r"\qquad \text{for every output position } (h, w),": check_dA,
    r"dW[u, v, k, c] = \sum_{i=0}^{m-1} \sum_{h=0}^{n_H-1} \sum_{w=0}^{n_W-1} "
    r"A_{pad}[i,\, hs+u,\, ws+v,\, k]\; dZ[i, h, w, c].": check_dW,
    r"db[c] = \sum_{i=0}^{m-1} \sum_{h=0}^{n_H-1} \sum_{w=0}^{n_W-1} dZ[i, h, w, c],": check_db,
    r"\frac{dz}{f_H \times f_W}.": check_average,
}


def test_every_display_formula_is_checked(notebook):
    found = [f for c in notebook.cells if c.cell_type == "markdown" for f in _display_formulas(c.source)]
    assert set(found) == set(FORMULAS), "a formula changed or was added; give it a check in FORMULAS"


@pytest.mark.parametrize("formula", list(FORMULAS), ids=[f.__name__ for f in FORMULAS.values()])
def test_formula_matches_reference(ref, formula):
    FORMULAS[formula](ref)


# ---------------------------------------------------------------------------
# Inline formulas and claims in the prose.


def test_same_padding_keeps_the_size(ref, md):
    assert r"$p = \frac{f - 1}{2}$" in md["md-zero-pad"]
    assert r"$n_H = n_{H_{prev}} - f + 2p + 1 = n_{H_{prev}}$" in md["md-zero-pad"]
    for f in (1, 3, 5):
        p = (f - 1) // 2
        for n_H_prev, n_W_prev in ((5, 4), (6, 9)):
            assert _out_size(n_H_prev, f, p, 1) == n_H_prev - f + 2 * p + 1 == n_H_prev
            A = np.random.RandomState(f).randn(1, n_H_prev, n_W_prev, 2)
            Z, _ = ref["conv_forward"](A, np.ones((f, f, 2, 1)), np.zeros((1, 1, 1, 1)), {"stride": 1, "pad": p})
            assert Z.shape[1:3] == (n_H_prev, n_W_prev)


def _rotated(W: np.ndarray) -> np.ndarray:
    """The filter turned by 180 degrees, input and output channels swapped: shape (f, f, n_C, n_C_prev)."""
    return W[::-1, ::-1, :, :].transpose(0, 1, 3, 2)


def test_full_convolution_statement(ref, md):
    """For stride 1, dA_pad is dZ padded by f - 1, cross-correlated with the rotated filter."""
    text = " ".join(md["md-conv-backward-dA"].split())
    assert "padding $dZ$ with $f - 1$ zeros on each side and cross-correlating it with the filter rotated by 180" in text
    assert '**"full" convolution**' in text
    for case in CONV_CASES:
        if case["stride"] != 1:
            continue
        A, W, _, hp, dZ, (dA, _, _) = _backward_case(ref, case)
        f, p = W.shape[0], hp["pad"]
        full = literal_Z(dZ, _rotated(W), np.zeros(W.shape[2]), {"stride": 1, "pad": f - 1})
        assert full.shape == _pad(A, p).shape
        np.testing.assert_allclose(full[:, p:p + A.shape[1], p:p + A.shape[2], :], dA, atol=1e-12)


def test_forward_is_a_cross_correlation(ref, md):
    """The filter is applied as it is: flipping it changes the result (so 'not flipped' is a real claim)."""
    assert "**cross-correlation**" in md["md-conv-forward"]
    A, W, b, hp = _conv_case(CONV_CASES[0])
    Z = ref["conv_forward"](A, W, b, hp)[0]
    i, h, w, c = 1, 2, 1, 1
    s = hp["stride"]
    window = _pad(A, hp["pad"])[i, h * s:h * s + W.shape[0], w * s:w * s + W.shape[1], :]
    assert Z[i, h, w, c] == pytest.approx(np.sum(window * W[:, :, :, c]) + b[0, 0, 0, c])
    assert Z[i, h, w, c] != pytest.approx(np.sum(window * W[::-1, ::-1, :, c]) + b[0, 0, 0, c])


def test_window_corners(ref, md):
    text = md["md-conv-forward"]
    for pinned in ("`vert_start = h * stride`, `vert_end = vert_start + f`",
                   "`horiz_start = w * stride`, `horiz_end = horiz_start + f`"):
        assert pinned in text
    A, W, b, hp = _conv_case(CONV_CASES[1])
    Z = ref["conv_forward"](A, W, b, hp)[0]
    A_pad, f, stride = _pad(A, hp["pad"]), W.shape[0], hp["stride"]
    for h, w in np.ndindex(Z.shape[1:3]):
        vert_start = h * stride
        vert_end = vert_start + f
        horiz_start = w * stride
        horiz_end = horiz_start + f
        window = A_pad[0, vert_start:vert_end, horiz_start:horiz_end, :]
        assert Z[0, h, w, 0] == pytest.approx(np.sum(window * W[:, :, :, 0]) + b[0, 0, 0, 0])


def test_np_pad_example_prints_what_it_says(md):
    (snippet,) = _snippets(md["md-zero-pad"])
    code = "\n".join(line for line in snippet.splitlines() if not line.startswith("#"))
    result = eval(code.split("\n", 2)[-1].strip(), {"np": np, "a": np.array([[1, 2], [3, 4]])})
    expected = [[0, 0, 0, 0], [1, 2, 0, 0], [3, 4, 0, 0], [0, 0, 0, 0]]
    assert re.search(r"# \[\[0, 0, 0, 0\],\n# +\[1, 2, 0, 0\],\n# +\[3, 4, 0, 0\],\n# +\[0, 0, 0, 0\]\]", snippet)
    np.testing.assert_array_equal(result, expected)


#: The loop around the three code lines of section 7, as Exercise 5 describes it.
BACKWARD_LOOP = """
(m, n_H_prev, n_W_prev, n_C_prev), (f, _, _, n_C) = A_prev.shape, W.shape
stride, pad = hparameters["stride"], hparameters["pad"]
n_H, n_W = dZ.shape[1:3]
dA_prev, dW, db = np.zeros(A_prev.shape), np.zeros(W.shape), np.zeros(b.shape)
A_prev_pad = np.pad(A_prev, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
dA_prev_pad = np.pad(dA_prev, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
for i in range(m):
    a_prev_pad, da_prev_pad = A_prev_pad[i], dA_prev_pad[i]
    for h in range(n_H):
        for w in range(n_W):
            for c in range(n_C):
                vert_start, horiz_start = h * stride, w * stride
                vert_end, horiz_end = vert_start + f, horiz_start + f
                a_slice = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :]
{body}
    dA_prev[i] = da_prev_pad[pad:pad + n_H_prev, pad:pad + n_W_prev, :]
"""


def test_backward_code_lines_compute_the_gradients(ref, md):
    lines = [_snippets(md[cell])[0].strip() for cell in ("md-conv-backward-dA", "md-conv-backward-dW",
                                                         "md-conv-backward-db")]
    assert all("\n" not in line for line in lines)
    body = "\n".join(" " * 16 + line for line in lines)
    for case in CONV_CASES:
        A, W, b, hp, dZ, expected = _backward_case(ref, case)
        ns = {"np": np, "A_prev": A, "W": W, "b": b, "hparameters": hp, "dZ": dZ}
        exec(BACKWARD_LOOP.format(body=body), ns)
        for name, want in zip(("dA_prev", "dW", "db"), expected, strict=True):
            np.testing.assert_allclose(ns[name], want, atol=1e-12, err_msg=name)


def test_negative_index_trap_is_real(md):
    text = md["md-conv-backward"]
    assert "`x[0:-0]`, which is `x[0:0]`: an empty array" in text
    x = np.arange(5)
    pad = 0
    assert x[pad:-pad].size == 0
    assert x[pad:pad + 5].size == 5


def test_precedence_warning_is_real(md):
    text = md["md-distribute"]
    assert "`dz / f_H * f_W` is evaluated as `(dz / f_H) * f_W`" in text
    dz, f_H, f_W = 2.0, 2, 3
    assert dz / f_H * f_W == (dz / f_H) * f_W != dz / (f_H * f_W)
    assert "a 2 by 2 array filled with 0.5" in " ".join(text.split())
    np.testing.assert_array_equal(np.full((2, 2), 2.0 / (2 * 2)), 0.5)


def test_numpy_bias_warning_is_real(md):
    """float() of a (1, 1, 1) array raises TypeError, assigning it into one element raises ValueError."""
    assert "`float(b)` on a `(1, 1, 1)` array raises a `TypeError`" in md["md-conv-single-step"]
    b = np.ones((1, 1, 1))
    with pytest.raises(TypeError):
        float(b)
    with pytest.raises(ValueError):
        np.zeros(2)[0] = b
    assert isinstance(b.item(), float)


def test_mask_ties(ref, md):
    """A mask built by comparison marks every copy of a tied maximum; the graded inputs have no ties."""
    assert "marks every copy" in md["md-mask"]
    np.testing.assert_array_equal(ref["create_mask_from_window"](np.array([[1.0, 3.0], [3.0, 0.0]])),
                                  [[False, True], [True, False]])


@pytest.mark.parametrize("mode", ["max", "average"])
def test_invalid_mode_raises(ref, mode):
    A = np.random.RandomState(0).randn(1, 4, 4, 1)
    out, cache = ref["pool_forward"](A, {"f": 2, "stride": 2}, mode=mode)
    with pytest.raises(ValueError):
        ref["pool_forward"](A, {"f": 2, "stride": 2}, mode="median")
    with pytest.raises(ValueError):
        ref["pool_backward"](out, cache, mode="median")


@pytest.mark.parametrize("cell", ["gradient-check-conv", "gradient-check-pool"])
def test_gradient_check_cells_agree_with_the_reference(ref, notebook, cell, capsys):
    """Run with the reference, the ungraded cells print errors below the 1e-7 the text calls agreement."""
    module = checks_data.load_checks()
    source = next(c.source for c in notebook.cells if c.id == cell)
    ns = {"np": np, **ref, "numerical_gradient": module.numerical_gradient, "relative_error": module.relative_error}
    exec(source, ns)
    errors = [float(e) for e in re.findall(r"relative error (\S+)", capsys.readouterr().out)]
    assert len(errors) == (3 if cell.endswith("conv") else 2)
    assert max(errors) < 1e-7
    assert "10^{-7}" in next(c.source for c in notebook.cells if c.id == "md-gradient-check-conv")


# ---------------------------------------------------------------------------
# Structure: headings, points, notation.

HEADING = re.compile(r"^(#+) Exercise (\d+) - `(\w+)` \((\d+) points\)$", flags=re.M)


def test_exercise_headings_show_their_points(md):
    headings = [m for text in md.values() for m in HEADING.finditer(text)]
    points = spec.load().function_points()
    assert [m.group(3) for m in headings] == list(points) == list(spec.load().function_names)
    assert [int(m.group(2)) for m in headings] == list(range(1, len(points) + 1))
    assert {m.group(1) for m in headings} == {"####"}, "exercise headings must share one level"
    for m in headings:
        assert int(m.group(4)) == points[m.group(3)], m.group(0)
    assert sum(points.values()) == 100
    assert "The eight exercises are worth 100 points" in md["md-intro"]
    backward = ("conv_backward", "create_mask_from_window", "distribute_value", "pool_backward")
    assert sum(points[f] for f in backward) == 50
    assert "Exercises 5 to 8, are worth 50 of the 100 points" in md["md-backprop-intro"]


def test_every_exercise_heading_is_recognised(md):
    """No exercise heading escapes the pattern above (another level or wording)."""
    loose = [line for text in md.values() for line in text.splitlines() if re.match(r"#+ Exercise", line)]
    assert len(loose) == len(spec.load().function_names)
    assert all(HEADING.match(line) for line in loose)


def test_sections_are_numbered_in_order(md):
    numbers = [int(m) for text in md.values() for m in re.findall(r"^## (\d+) - ", text, flags=re.M)]
    assert numbers == list(range(1, len(numbers) + 1))
    sub = [m for text in md.values() for m in re.findall(r"^### (\d+\.\d+) ", text, flags=re.M)]
    assert sub == ["7.1", "7.2", "7.3", "8.1", "8.2", "8.3"]


def test_outline_matches_exercise_order(md):
    listed = re.findall(r"^\d+\. `(\w+)`", md["md-outline"], flags=re.M)
    assert listed == list(spec.load().function_names)


def test_no_unused_notation_and_nothing_optional(md):
    text = "\n".join(md.values())
    assert "optional" not in text.lower()
    for unused in ("[l]", "^{[l]}", "^{(i)}", "(i)}"):
        assert unused not in text
    # Window sizes are f_H and f_W, never the layer's n_H and n_W.
    assert "n_H, n_W)" not in md["md-distribute"] and "(f_H, f_W)" in md["md-distribute"]

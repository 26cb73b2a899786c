"""Input makers for the hidden checks of "Train a CNN from your own layers".

``spec.toml`` names a maker and its arguments for every case. Random inputs
come from ``np.random.default_rng(seed)``; the training case reads the
released training split, the one the notebook trains on.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from cnngrader.core.spec import Case, Computed, GradientSetup

#: The released data file, beside the notebook.
DATA = Path(__file__).resolve().parents[1] / "data" / "digits.h5"
PARAMS = ("W1", "b1", "W2", "b2")


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(str(d) for d in a.shape) + ")"


def make_relu(seed: int, shape: tuple[int, ...], zeros: int = 0) -> Case:
    """Standard normal values, with ``zeros`` entries set to exactly 0 (ReLU's kink)."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal(shape)
    Z.reshape(-1)[rng.choice(Z.size, size=zeros, replace=False)] = 0.0
    return Case((Z,), f"Z {_shape(Z)}" + (f" with {zeros} exact zeros" if zeros else ""))


def make_relu_backward(seed: int, shape: tuple[int, ...], zeros: int = 0) -> Case:
    Z = make_relu(seed, shape, zeros).args[0]
    dA = np.random.default_rng(seed + 1000).standard_normal(shape)
    return Case((dA, Z), f"dA and Z {_shape(Z)}" + (f", {zeros} exact zeros in Z" if zeros else ""))


def make_dense(seed: int, m: int, n_in: int, n_out: int) -> Case:
    rng = np.random.default_rng(seed)
    A, W, b = rng.standard_normal((m, n_in)), rng.standard_normal((n_in, n_out)), rng.standard_normal((1, n_out))
    return Case((A, W, b), f"A_prev {_shape(A)}, W {_shape(W)}")


def make_dense_backward(seed: int, m: int, n_in: int, n_out: int) -> Case:
    A, W, b = make_dense(seed, m, n_in, n_out).args
    dZ = np.random.default_rng(seed + 1000).standard_normal((m, n_out))
    setup = GradientSetup((A, W, b), dZ, {"dA_prev": 0, "dW": 1, "db": 2})
    return Case((dZ, (A, W, b)), f"dZ {_shape(dZ)}, W {_shape(W)}", setup)


def make_logits(seed: int, m: int, k: int, scale: float = 1.0) -> Case:
    """Logits of ``scale`` times standard normals, and labels covering several classes."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((m, k)) * scale
    y = rng.integers(0, k, m)
    setup = GradientSetup((Z, y), 1.0, {"dZ": 0}, output=0)
    return Case((Z, y), f"Z {_shape(Z)}" + (f", logits of size about {scale:g}" if scale != 1 else ""), setup)


def make_conv(seed: int, a_shape: tuple[int, ...], f: int, n_c: int, stride: int, pad: int) -> Case:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal(a_shape)
    W = rng.standard_normal((f, f, a_shape[-1], n_c))
    b = rng.standard_normal((1, 1, 1, n_c))
    hp = {"stride": stride, "pad": pad}
    return Case((A, W, b, hp), f"A_prev {_shape(A)}, W {_shape(W)}, stride={stride}, pad={pad}")


def conv_output_shape(a_shape: tuple[int, ...], f: int, n_c: int, stride: int, pad: int) -> tuple[int, ...]:
    m, h, w, _ = a_shape
    return (m, (h - f + 2 * pad) // stride + 1, (w - f + 2 * pad) // stride + 1, n_c)


def make_conv_backward(seed: int, a_shape: tuple[int, ...], f: int, n_c: int, stride: int, pad: int) -> Case:
    fwd = make_conv(seed, a_shape, f, n_c, stride, pad)
    A, W, b, hp = fwd.args
    dZ = np.random.default_rng(seed + 1000).standard_normal(conv_output_shape(a_shape, f, n_c, stride, pad))
    setup = GradientSetup((A, W, b, hp), dZ, {"dA_prev": 0, "dW": 1, "db": 2})
    return Case((dZ, (A, W, b, hp)), fwd.describe, setup)


def _params(rng: np.random.Generator, size: int, filters: int, classes: int) -> dict[str, np.ndarray]:
    features = (size // 2) * (size // 2) * filters
    return {"W1": rng.standard_normal((3, 3, 1, filters)) * 0.5, "b1": rng.standard_normal((1, 1, 1, filters)) * 0.1,
            "W2": rng.standard_normal((features, classes)) * 0.3, "b2": rng.standard_normal((1, classes)) * 0.1}


def make_model(seed: int, m: int, size: int, filters: int, classes: int) -> Case:
    """Random images (no blank windows, so max-pooling has no ties) and random parameters."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, size, size, 1))
    params = _params(rng, size, filters, classes)
    return Case((X, params), f"X {_shape(X)}, {filters} filters, {classes} classes")


def make_model_backward(seed: int, m: int, size: int, filters: int, classes: int) -> Case:
    """dlogits and the caches of the reference model_forward (the contract fixes their layout)."""
    X, params = make_model(seed, m, size, filters, classes).args
    dlogits = np.random.default_rng(seed + 1000).standard_normal((m, classes))
    caches = Computed("model_forward", (X, params), 1)
    setup = GradientSetup((X, params), dlogits, {k: (1, k) for k in PARAMS}, output=0)
    return Case((dlogits, caches), f"X {_shape(X)}, {filters} filters, {classes} classes", setup)


def make_momentum(seed: int, size: int, filters: int, classes: int, learning_rate: float, beta: float) -> Case:
    rng = np.random.default_rng(seed)
    params, grads, velocity = (_params(rng, size, filters, classes) for _ in range(3))
    return Case((params, grads, velocity, learning_rate, beta), f"learning_rate={learning_rate}, beta={beta}")


def make_training(seed: int, examples: int = 0, epochs: int = 0) -> Case:
    """The released training split (its first ``examples`` images when given), train's seed and epochs."""
    with h5py.File(DATA, "r") as h5:
        X, y = h5["train/X"][()].astype(np.float64), h5["train/y"][()].astype(np.int64)
    if examples:
        X, y = X[:examples], y[:examples]
    args = (X, y, seed) + ((epochs,) if epochs else ())
    return Case(args, f"X_train {_shape(X)}, seed={seed}" + (f", epochs={epochs}" if epochs else ""))

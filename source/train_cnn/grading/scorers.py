"""Trusted scorer of "Train a CNN from your own layers": test accuracy of the parameters train returned.

It runs in the grader, never in the sandbox, on the decoded result: plain
arrays, no student object. The forward pass is the reference one, so a bug
in the student's own layers costs the points of those layers, not these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from cnngrader.core.judge import Mismatch
from cnngrader.core.reference import load_reference

#: The network's parameters and their shapes for the 8x8 digits (init_params in the notebook).
SHAPES = {"W1": (3, 3, 1, 8), "b1": (1, 1, 1, 8), "W2": (128, 10), "b2": (1, 10)}


def parameters(value: Any) -> dict[str, np.ndarray]:
    """The returned dict as float arrays of the right shapes, or a Mismatch that says what is wrong."""
    if not isinstance(value, dict) or set(value) != set(SHAPES):
        raise Mismatch("train should return the dict of parameters W1, b1, W2, b2", "wrong_keys")
    out = {}
    for key, shape in SHAPES.items():
        arr = getattr(value[key], "array", None)
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
            raise Mismatch(f"params[{key!r}] should be an array of numbers", "not_an_array")
        if arr.shape != shape:
            raise Mismatch(f"params[{key!r}] has shape {arr.shape}, expected {shape}", "wrong_shape")
        if not np.all(np.isfinite(arr)):
            raise Mismatch(f"params[{key!r}] contains NaN or infinity", "not_finite")
        out[key] = arr.astype(np.float64)
    return out


def test_accuracy(value: Any, data: Path, assignment: Any) -> float:
    """Share of the held-out test images the returned parameters classify correctly."""
    params = parameters(value)
    with h5py.File(data, "r") as h5:
        X, y = h5["test/X"][()].astype(np.float64), h5["test/y"][()]
    logits, _ = load_reference(assignment.notebook)["model_forward"](X, params)
    return float(np.mean(np.argmax(logits, axis=1) == y))

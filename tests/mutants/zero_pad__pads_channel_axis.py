"""Pads the channel axis as well: pad width (pad, pad) on the last axis instead of (0, 0)."""
import numpy as np


def zero_pad(X, pad):
    X_pad = np.pad(X, ((0, 0), (pad, pad), (pad, pad), (pad, pad)), mode="constant", constant_values=(0, 0))
    return X_pad

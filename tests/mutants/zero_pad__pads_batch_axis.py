"""Pads the batch axis as well: pad width (pad, pad) on axis 0 instead of (0, 0)."""
import numpy as np


def zero_pad(X, pad):
    X_pad = np.pad(X, ((pad, pad), (pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=(0, 0))
    return X_pad

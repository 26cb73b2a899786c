"""Pads only after the data (0, pad) instead of on both sides (pad, pad)."""
import numpy as np


def zero_pad(X, pad):
    X_pad = np.pad(X, ((0, 0), (0, pad), (0, pad), (0, 0)), mode="constant", constant_values=(0, 0))
    return X_pad

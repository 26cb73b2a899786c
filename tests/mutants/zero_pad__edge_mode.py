"""Uses mode='edge' (repeats border values) instead of constant zero padding."""
import numpy as np


def zero_pad(X, pad):
    X_pad = np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    return X_pad

"""Pads with the value pad instead of zeros (constant_values=pad, confused with the pad width)."""
import numpy as np


def zero_pad(X, pad):
    X_pad = np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=pad)
    return X_pad

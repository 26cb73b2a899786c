"""Pads only the height axis; the width axis gets (0, 0)."""
import numpy as np


def zero_pad(X, pad):
    X_pad = np.pad(X, ((0, 0), (pad, pad), (0, 0), (0, 0)), mode="constant", constant_values=(0, 0))
    return X_pad

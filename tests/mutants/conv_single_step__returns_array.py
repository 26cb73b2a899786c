"""Returns a (1, 1, 1) array instead of a scalar: np.sum(a * W) + b without extracting b's value."""
import numpy as np


def conv_single_step(a_slice_prev, W, b):
    s = a_slice_prev * W
    Z = np.sum(s)
    Z = Z + b
    return Z

"""Uses np.dot (matrix product) instead of the elementwise product before summing."""
import numpy as np


def conv_single_step(a_slice_prev, W, b):
    s = np.dot(a_slice_prev, W)
    Z = np.sum(s)
    Z = Z + b[0, 0, 0]
    return Z

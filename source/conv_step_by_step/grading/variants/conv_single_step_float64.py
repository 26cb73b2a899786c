"""conv_single_step returning an np.float64 computed with a full einsum contraction."""
import numpy as np


def conv_single_step(a_slice_prev, W, b):
    total = np.einsum("ijk,ijk->", a_slice_prev, W) + np.ravel(b)[0]
    return np.float64(total)

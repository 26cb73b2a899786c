"""conv_single_step returning a 0-d numpy array (tensordot over all three axes plus the squeezed bias)."""
import numpy as np


def conv_single_step(a_slice_prev, W, b):
    Z = np.tensordot(a_slice_prev, W, axes=3) + np.squeeze(b)
    return np.array(Z, dtype=float)

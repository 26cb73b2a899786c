"""conv_single_step returning a plain Python float built from np.vdot (flattened dot product) and the bias value."""
import numpy as np


def conv_single_step(a_slice_prev, W, b):
    return float(np.vdot(a_slice_prev, W)) + float(np.asarray(b).reshape(-1)[0])

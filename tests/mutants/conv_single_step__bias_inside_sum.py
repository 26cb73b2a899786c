"""Bias added to every element before summing: np.sum(a * W + b) counts b f*f*n_C times."""
import numpy as np


def conv_single_step(a_slice_prev, W, b):
    s = a_slice_prev * W + b
    Z = np.sum(s)
    return Z

"""Compares with the largest absolute value np.max(np.abs(x)), missing negative windows."""
import numpy as np


def create_mask_from_window(x):
    mask = (x == np.max(np.abs(x)))
    return mask

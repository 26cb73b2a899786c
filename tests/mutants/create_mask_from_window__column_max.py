"""Compares with np.max(x, axis=0), marking the maximum of every column."""
import numpy as np


def create_mask_from_window(x):
    mask = (x == np.max(x, axis=0))
    return mask

"""Marks the minimum instead of the maximum: x == np.min(x)."""
import numpy as np


def create_mask_from_window(x):
    mask = (x == np.min(x))
    return mask

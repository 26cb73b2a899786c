"""Returns x * (x == max): the max value itself instead of True at the max."""
import numpy as np


def create_mask_from_window(x):
    mask = x * (x == np.max(x))
    return mask

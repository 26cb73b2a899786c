"""Returns the flat argmax index np.argmax(x) instead of a boolean mask."""
import numpy as np


def create_mask_from_window(x):
    mask = np.argmax(x)
    return mask

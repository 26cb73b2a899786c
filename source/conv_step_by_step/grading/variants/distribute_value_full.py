"""distribute_value using np.full with the averaged value."""
import numpy as np


def distribute_value(dz, shape):
    n_H, n_W = shape
    return np.full((n_H, n_W), dz / (n_H * n_W), dtype=float)

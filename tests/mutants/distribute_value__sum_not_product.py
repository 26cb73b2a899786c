"""Divides by n_H + n_W instead of n_H * n_W (coincides for 2x2)."""
import numpy as np


def distribute_value(dz, shape):
    (n_H, n_W) = shape
    average = dz / (n_H + n_W)
    a = np.ones(shape) * average
    return a

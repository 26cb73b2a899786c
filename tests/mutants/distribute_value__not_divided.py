"""Not divided at all: every entry gets the full dz."""
import numpy as np


def distribute_value(dz, shape):
    (n_H, n_W) = shape
    average = dz
    a = np.ones(shape) * average
    return a

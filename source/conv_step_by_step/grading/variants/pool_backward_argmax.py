"""pool_backward that locates the max inline with np.argmax/np.unravel_index and routes the gradient to that single cell."""
import numpy as np


def pool_backward(dA, cache, mode="max"):
    A_prev, hparameters = cache
    f = hparameters["f"]
    stride = hparameters["stride"]
    m, n_H, n_W, n_C = dA.shape
    dA_prev = np.zeros(A_prev.shape)
    for i in range(m):
        for c in range(n_C):
            for h in range(n_H):
                top = h * stride
                for w in range(n_W):
                    left = w * stride
                    g = dA[i, h, w, c]
                    if mode == "max":
                        window = A_prev[i, top:top + f, left:left + f, c]
                        r, q = np.unravel_index(np.argmax(window), window.shape)
                        dA_prev[i, top + r, left + q, c] += g
                    elif mode == "average":
                        dA_prev[i, top:top + f, left:left + f, c] += g / (f * f)
    return dA_prev

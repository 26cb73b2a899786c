"""pool_backward looping only over output positions: the max mask is computed for the whole batch and all channels at once."""
import numpy as np


def pool_backward(dA, cache, mode="max"):
    A_prev, hparameters = cache
    f = hparameters["f"]
    stride = hparameters["stride"]
    _, n_H, n_W, _ = dA.shape
    dA_prev = np.zeros(A_prev.shape)
    for h in range(n_H):
        for w in range(n_W):
            rs = slice(h * stride, h * stride + f)
            cs = slice(w * stride, w * stride + f)
            g = dA[:, h, w, :][:, None, None, :]                     # (m, 1, 1, n_C)
            if mode == "max":
                block = A_prev[:, rs, cs, :]
                mask = block == block.max(axis=(1, 2), keepdims=True)
                dA_prev[:, rs, cs, :] += mask * g
            elif mode == "average":
                dA_prev[:, rs, cs, :] += np.broadcast_to(g / (f * f), (g.shape[0], f, f, g.shape[3]))
    return dA_prev

"""Vectorised conv_backward: dW by einsum over sliding windows, db by a sum, dA_prev by loops over output positions only."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def conv_backward(dZ, cache):
    A_prev, W, b, hparameters = cache
    stride = hparameters["stride"]
    pad = hparameters["pad"]
    f = W.shape[0]
    m, n_H, n_W, n_C = dZ.shape
    _, n_H_prev, n_W_prev, _ = A_prev.shape

    A_pad = np.pad(A_prev, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    windows = sliding_window_view(A_pad, (f, f), axis=(1, 2))[:, ::stride, ::stride][:, :n_H, :n_W]
    dW = np.einsum("ihwcpq,ihwn->pqcn", windows, dZ, optimize=True)
    db = dZ.sum(axis=(0, 1, 2)).reshape(1, 1, 1, n_C)

    dA_pad = np.zeros(A_pad.shape)
    for h in range(n_H):
        for w in range(n_W):
            # (m, n_C) x (f, f, n_C_prev, n_C) -> (m, f, f, n_C_prev)
            dA_pad[:, h * stride:h * stride + f, w * stride:w * stride + f, :] += np.einsum("in,pqcn->ipqc", dZ[:, h, w, :], W)
    dA_prev = dA_pad[:, pad:pad + n_H_prev, pad:pad + n_W_prev, :].copy()
    return dA_prev, dW, db

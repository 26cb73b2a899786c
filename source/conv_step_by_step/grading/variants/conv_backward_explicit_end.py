"""conv_backward vectorised over the batch, padded gradient buffer from np.zeros, un-padding with explicit end indices (size - pad)."""
# ruff: noqa: F821
import numpy as np


def conv_backward(dZ, cache):
    A_prev, W, b, hparameters = cache
    stride = hparameters["stride"]
    pad = hparameters["pad"]
    f, _, n_C_prev, n_C = W.shape
    m, n_H, n_W, _ = dZ.shape
    A_pad = zero_pad(A_prev, pad)
    H_pad, W_pad = A_pad.shape[1], A_pad.shape[2]
    dA_pad = np.zeros((m, H_pad, W_pad, n_C_prev))
    dW = np.zeros((f, f, n_C_prev, n_C))
    db = np.zeros((1, 1, 1, n_C))
    for c in range(n_C):
        for h in range(n_H):
            for w in range(n_W):
                rows = slice(h * stride, h * stride + f)
                cols = slice(w * stride, w * stride + f)
                g = dZ[:, h, w, c]                                   # (m,)
                dA_pad[:, rows, cols, :] += g[:, None, None, None] * W[None, :, :, :, c]
                dW[:, :, :, c] += np.tensordot(g, A_pad[:, rows, cols, :], axes=(0, 0))
        db[0, 0, 0, c] = np.sum(dZ[..., c])
    dA_prev = dA_pad[:, pad:H_pad - pad, pad:W_pad - pad, :]
    return dA_prev, dW, db

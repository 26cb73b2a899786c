"""Fast convolutions by im2col and tensordot, and a backward pass that scatters with np.add.at."""

import numpy as np


def _columns(A_pad, f, stride, n_H, n_W):
    rows = stride * np.arange(n_H)[:, None] + np.arange(f)[None, :]
    cols = stride * np.arange(n_W)[:, None] + np.arange(f)[None, :]
    # (m, n_H, f, n_W, f, n_C_prev) -> (m, n_H, n_W, f, f, n_C_prev)
    return A_pad[:, rows[:, :, None, None], cols[None, None, :, :], :].transpose(0, 1, 3, 2, 4, 5)


def conv_forward_fast(A_prev, W, b, hparameters):
    stride, pad = hparameters["stride"], hparameters["pad"]
    m, n_H_prev, n_W_prev, _ = A_prev.shape
    f = W.shape[0]
    n_H = (n_H_prev - f + 2 * pad) // stride + 1
    n_W = (n_W_prev - f + 2 * pad) // stride + 1
    A_pad = np.pad(A_prev, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    Z = np.tensordot(_columns(A_pad, f, stride, n_H, n_W), W, axes=([3, 4, 5], [0, 1, 2])) + b
    return Z, (A_prev, W, b, hparameters)


def conv_backward_fast(dZ, cache):
    A_prev, W, b, hparameters = cache
    stride, pad = hparameters["stride"], hparameters["pad"]
    m, n_H, n_W, n_C = dZ.shape
    f = W.shape[0]
    A_pad = np.pad(A_prev, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    windows = _columns(A_pad, f, stride, n_H, n_W)
    dW = np.tensordot(windows, dZ, axes=([0, 1, 2], [0, 1, 2]))
    db = dZ.sum(axis=(0, 1, 2)).reshape(1, 1, 1, n_C)
    contributions = np.tensordot(dZ, W, axes=([3], [3]))  # (m, n_H, n_W, f, f, n_C_prev)
    rows = stride * np.arange(n_H)[:, None] + np.arange(f)[None, :]
    cols = stride * np.arange(n_W)[:, None] + np.arange(f)[None, :]
    dA_pad = np.zeros_like(A_pad, dtype=float)
    np.add.at(dA_pad, (slice(None), rows[:, None, :, None], cols[None, :, None, :], slice(None)), contributions)
    return dA_pad[:, pad:pad + A_prev.shape[1], pad:pad + A_prev.shape[2], :], dW, db

"""Loop order changed: channel outermost, then batch, then rows and columns, for conv_forward, pool_forward and pool_backward."""
# ruff: noqa: F821
import numpy as np


def conv_forward(A_prev, W, b, hparameters):
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f = W.shape[0]
    n_C = W.shape[3]
    stride, pad = hparameters["stride"], hparameters["pad"]
    n_H = (n_H_prev + 2 * pad - f) // stride + 1
    n_W = (n_W_prev + 2 * pad - f) // stride + 1
    A_pad = zero_pad(A_prev, pad)
    Z = np.zeros((m, n_H, n_W, n_C))
    for c in range(n_C):
        kernel = W[..., c]
        bias = b[..., c]
        for i in range(m):
            for h in range(n_H):
                r = h * stride
                for w in range(n_W):
                    k = w * stride
                    Z[i, h, w, c] = conv_single_step(A_pad[i, r:r + f, k:k + f, :], kernel, bias)
    return Z, (A_prev, W, b, hparameters)


def pool_forward(A_prev, hparameters, mode="max"):
    m, n_H_prev, n_W_prev, n_C = A_prev.shape
    f, stride = hparameters["f"], hparameters["stride"]
    n_H = (n_H_prev - f) // stride + 1
    n_W = (n_W_prev - f) // stride + 1
    reduce = {"max": np.max, "average": np.mean}.get(mode)
    A = np.zeros((m, n_H, n_W, n_C))
    if reduce is None:
        return A, (A_prev, hparameters)
    for c in range(n_C):
        for i in range(m):
            for h in range(n_H):
                for w in range(n_W):
                    A[i, h, w, c] = reduce(A_prev[i, h * stride:h * stride + f, w * stride:w * stride + f, c])
    return A, (A_prev, hparameters)


def pool_backward(dA, cache, mode="max"):
    A_prev, hparameters = cache
    f, stride = hparameters["f"], hparameters["stride"]
    m, n_H, n_W, n_C = dA.shape
    dA_prev = np.zeros(A_prev.shape)
    for c in range(n_C):
        for i in range(m):
            for h in range(n_H):
                r = h * stride
                for w in range(n_W):
                    k = w * stride
                    if mode == "max":
                        window = A_prev[i, r:r + f, k:k + f, c]
                        dA_prev[i, r:r + f, k:k + f, c] += create_mask_from_window(window) * dA[i, h, w, c]
                    elif mode == "average":
                        dA_prev[i, r:r + f, k:k + f, c] += distribute_value(dA[i, h, w, c], (f, f))
    return dA_prev

"""Loops written as while loops advancing the window corner by the stride, for conv_forward, pool_forward, conv_backward and pool_backward."""
# ruff: noqa: F821
import numpy as np


def conv_forward(A_prev, W, b, hparameters):
    m, n_H_prev, n_W_prev, _ = A_prev.shape
    f, _, _, n_C = W.shape
    stride = hparameters["stride"]
    pad = hparameters["pad"]
    n_H = (n_H_prev - f + 2 * pad) // stride + 1
    n_W = (n_W_prev - f + 2 * pad) // stride + 1
    A_pad = zero_pad(A_prev, pad)
    Z = np.zeros((m, n_H, n_W, n_C))
    i = 0
    while i < m:
        h, top = 0, 0
        while h < n_H:
            w, left = 0, 0
            while w < n_W:
                window = A_pad[i, top:top + f, left:left + f, :]
                c = 0
                while c < n_C:
                    Z[i, h, w, c] = conv_single_step(window, W[:, :, :, c], b[:, :, :, c])
                    c += 1
                w += 1
                left += stride
            h += 1
            top += stride
        i += 1
    return Z, (A_prev, W, b, hparameters)


def pool_forward(A_prev, hparameters, mode="max"):
    m, n_H_prev, n_W_prev, n_C = A_prev.shape
    f = hparameters["f"]
    stride = hparameters["stride"]
    n_H = (n_H_prev - f) // stride + 1
    n_W = (n_W_prev - f) // stride + 1
    A = np.zeros((m, n_H, n_W, n_C))
    h, top = 0, 0
    while h < n_H:
        w, left = 0, 0
        while w < n_W:
            block = A_prev[:, top:top + f, left:left + f, :]
            if mode == "max":
                A[:, h, w, :] = block.max(axis=(1, 2))
            elif mode == "average":
                A[:, h, w, :] = block.mean(axis=(1, 2))
            w += 1
            left += stride
        h += 1
        top += stride
    return A, (A_prev, hparameters)


def conv_backward(dZ, cache):
    A_prev, W, b, hparameters = cache
    stride = hparameters["stride"]
    pad = hparameters["pad"]
    f = W.shape[0]
    m, n_H, n_W, n_C = dZ.shape
    _, n_H_prev, n_W_prev, _ = A_prev.shape
    A_pad = zero_pad(A_prev, pad)
    dA_pad = np.zeros(A_pad.shape)
    dW = np.zeros(W.shape)
    db = np.zeros(b.shape)
    i = 0
    while i < m:
        h = 0
        while h < n_H:
            top = h * stride
            w = 0
            while w < n_W:
                left = w * stride
                c = 0
                while c < n_C:
                    g = dZ[i, h, w, c]
                    dA_pad[i, top:top + f, left:left + f, :] += g * W[:, :, :, c]
                    dW[:, :, :, c] += g * A_pad[i, top:top + f, left:left + f, :]
                    db[0, 0, 0, c] += g
                    c += 1
                w += 1
            h += 1
        i += 1
    dA_prev = dA_pad[:, pad:pad + n_H_prev, pad:pad + n_W_prev, :].copy()
    return dA_prev, dW, db


def pool_backward(dA, cache, mode="max"):
    A_prev, hparameters = cache
    f = hparameters["f"]
    stride = hparameters["stride"]
    m, n_H, n_W, n_C = dA.shape
    dA_prev = np.zeros(A_prev.shape)
    i = 0
    while i < m:
        h = 0
        while h < n_H:
            w = 0
            while w < n_W:
                c = 0
                while c < n_C:
                    vs, hs = h * stride, w * stride
                    if mode == "max":
                        mask = create_mask_from_window(A_prev[i, vs:vs + f, hs:hs + f, c])
                        dA_prev[i, vs:vs + f, hs:hs + f, c] += mask * dA[i, h, w, c]
                    elif mode == "average":
                        dA_prev[i, vs:vs + f, hs:hs + f, c] += distribute_value(dA[i, h, w, c], (f, f))
                    c += 1
                w += 1
            h += 1
        i += 1
    return dA_prev

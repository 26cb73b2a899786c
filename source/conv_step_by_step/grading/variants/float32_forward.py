"""conv_forward and pool_forward computing in float32: inputs are cast to float32 internally and float32 outputs are returned."""
import numpy as np


def conv_forward(A_prev, W, b, hparameters):
    A32 = np.asarray(A_prev, dtype=np.float32)
    W32 = np.asarray(W, dtype=np.float32)
    b32 = np.asarray(b, dtype=np.float32).reshape(-1)
    stride = hparameters["stride"]
    pad = hparameters["pad"]
    m, n_H_prev, n_W_prev, n_C_prev = A32.shape
    f, _, _, n_C = W32.shape
    n_H = (n_H_prev - f + 2 * pad) // stride + 1
    n_W = (n_W_prev - f + 2 * pad) // stride + 1
    A_pad = np.zeros((m, n_H_prev + 2 * pad, n_W_prev + 2 * pad, n_C_prev), dtype=np.float32)
    A_pad[:, pad:pad + n_H_prev, pad:pad + n_W_prev, :] = A32
    W_flat = W32.reshape(-1, n_C)
    Z = np.zeros((m, n_H, n_W, n_C), dtype=np.float32)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                patch = A_pad[i, h * stride:h * stride + f, w * stride:w * stride + f, :].reshape(-1)
                Z[i, h, w, :] = patch @ W_flat + b32
    return Z, (A_prev, W, b, hparameters)


def pool_forward(A_prev, hparameters, mode="max"):
    A32 = np.asarray(A_prev, dtype=np.float32)
    f = hparameters["f"]
    stride = hparameters["stride"]
    m, n_H_prev, n_W_prev, n_C = A32.shape
    n_H = (n_H_prev - f) // stride + 1
    n_W = (n_W_prev - f) // stride + 1
    A = np.zeros((m, n_H, n_W, n_C), dtype=np.float32)
    for h in range(n_H):
        for w in range(n_W):
            block = A32[:, h * stride:h * stride + f, w * stride:w * stride + f, :]
            if mode == "max":
                A[:, h, w, :] = block.max(axis=(1, 2))
            elif mode == "average":
                A[:, h, w, :] = block.mean(axis=(1, 2), dtype=np.float32)
    return A, (A_prev, hparameters)

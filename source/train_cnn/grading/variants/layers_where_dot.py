"""ReLU, dense and softmax written with np.where, np.dot and an explicit log-sum-exp."""

import numpy as np


def relu_forward(Z):
    A = np.where(Z > 0, Z, 0.0)
    return A, Z


def relu_backward(dA, cache):
    return np.where(cache > 0, dA, 0.0)


def dense_forward(A_prev, W, b):
    return np.dot(A_prev, W) + b, (A_prev, W, b)


def dense_backward(dZ, cache):
    A_prev, W, b = cache
    return np.dot(dZ, W.T), np.einsum("mi,mo->io", A_prev, dZ), dZ.sum(axis=0).reshape(1, -1)


def softmax_cross_entropy(Z, y):
    m = Z.shape[0]
    top = Z.max(axis=1, keepdims=True)
    log_sum = top + np.log(np.exp(Z - top).sum(axis=1, keepdims=True))
    probabilities = np.exp(Z - log_sum)
    loss = float(np.mean(log_sum[:, 0] - Z[np.arange(m), y]))
    one_hot = np.zeros_like(Z)
    one_hot[np.arange(m), y] = 1.0
    return loss, (probabilities - one_hot) / m

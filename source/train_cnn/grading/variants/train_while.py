"""A training loop written with while loops and an explicit batch start, same random draws."""

import numpy as np


def train(X, y, seed, epochs=6, batch_size=32, learning_rate=0.1, beta=0.9):
    params = init_params(seed)  # noqa: F821 - given by the notebook
    velocity = {key: np.zeros_like(value) for key, value in params.items()}
    rng = np.random.default_rng(seed)
    m = X.shape[0]
    epoch = 0
    while epoch < epochs:
        order = rng.permutation(m)
        start = 0
        while start < m:
            batch = order[start:min(start + batch_size, m)]
            logits, caches = model_forward(X[batch], params)  # noqa: F821
            _, dlogits = softmax_cross_entropy(logits, y[batch])  # noqa: F821
            grads = model_backward(dlogits, caches)  # noqa: F821
            params, velocity = sgd_momentum_update(params, grads, velocity, learning_rate, beta)  # noqa: F821
            start += batch_size
        epoch += 1
    return params

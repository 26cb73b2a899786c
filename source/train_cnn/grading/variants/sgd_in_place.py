"""Momentum SGD that updates the given dictionaries in place, as the notebook allows."""


def sgd_momentum_update(params, grads, velocity, learning_rate, beta):
    for key in params:
        velocity[key] *= beta
        velocity[key] += grads[key]
        params[key] -= learning_rate * velocity[key]
    return params, velocity

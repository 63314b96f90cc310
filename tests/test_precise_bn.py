"""Recomputed BN statistics against a network whose population statistics are known in closed form."""

import keras
import numpy as np
import pytest

from bn_study import precise_bn


def _identity_net(features: int, eps: float = 1e-3) -> keras.Model:
    """x -> identity Dense -> BN1 -> identity Dense -> BN2: BN1 sees x itself; BN2 sees each batch normalised by its own statistics."""
    inputs = keras.Input((features,))
    x = inputs
    for i in (1, 2):
        x = keras.layers.Dense(features, use_bias=False, kernel_initializer="identity", name=f"dense{i}_linear")(x)
        x = keras.layers.BatchNormalization(epsilon=eps, center=False, scale=False, name=f"dense{i}_bn")(x)
    return keras.Model(inputs, x)


def test_recomputed_statistics_are_the_known_population_ones():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(500, 3)) * [1.0, 2.0, 0.5] + [3.0, -1.0, 0.0]).astype("float32")
    model = _identity_net(3)
    before = [v.numpy().copy() for v in model.non_trainable_variables]
    stats = precise_bn.recompute(model, x, batch_size=50, batches=10)

    # BN1: the data's own mean and (biased) variance, exactly, since 10 batches of 50 partition the 500 rows.
    np.testing.assert_allclose(stats["dense1_bn"][0], x.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats["dense1_bn"][1], x.var(0), rtol=1e-4)
    # BN2: every batch normalised by its own statistics, so mean 0 and variance mean_b var_b / (var_b + eps).
    batches = x.reshape(10, 50, 3)
    var_b = batches.var(1)
    np.testing.assert_allclose(stats["dense2_bn"][0], 0.0, atol=1e-5)
    np.testing.assert_allclose(stats["dense2_bn"][1], (var_b / (var_b + 1e-3)).mean(0), rtol=1e-4)
    # Measuring changed nothing in the model.
    for a, b in zip(before, model.non_trainable_variables):
        np.testing.assert_array_equal(a, b.numpy())


def test_applied_statistics_hold_inside_the_block_only():
    model = _identity_net(2)
    x = np.array([[1.0, 2.0], [3.0, 6.0]], "float32")
    stats = {"dense1_bn": (np.array([2.0, 4.0]), np.array([1.0, 4.0])), "dense2_bn": (np.zeros(2), np.ones(2))}
    with precise_bn.applied(model, stats):
        out = model(x, training=False).numpy()
    np.testing.assert_allclose(out, (x - [2.0, 4.0]) / np.sqrt(np.array([1.0, 4.0]) + 1e-3) / np.sqrt(1 + 1e-3), rtol=1e-5)
    np.testing.assert_array_equal(model.get_layer("dense1_bn").moving_mean.numpy(), [0.0, 0.0])  # back to Keras's initial values


def test_too_few_examples_are_refused():
    with pytest.raises(ValueError, match="need 100 examples, got 60"):
        precise_bn.recompute(_identity_net(2), np.zeros((60, 2), "float32"), batch_size=50, batches=2)

"""Model builders as a user would write them (model._target_=tests.builders.<name>): one keeps the contract,
the others each break one rule of it."""

import keras
from keras import layers

from bn_study.models import blocks


def wide_then_narrow(cfg, input_shape, n_classes, seed):
    """A user's MLP from the shared block helper: 64 then 32 units, whatever model.hidden says."""
    seeds = blocks.layer_seeds(seed)
    inputs = keras.Input(shape=input_shape)
    x = blocks.flat(inputs)
    for i, units in enumerate((64, 32), start=1):
        x = blocks.block(x, layers.Dense, f"dense{i}", cfg, next(seeds), units=units)
    return keras.Model(inputs, blocks.head(x, cfg, n_classes, next(seeds)))


def unnamed(cfg, input_shape, n_classes, seed):
    """Plain Keras with Keras's own layer names: no probe can find its nonlinearity."""
    inputs = keras.Input(shape=input_shape)
    x = layers.Dense(16, activation="relu")(layers.Flatten()(inputs))
    return keras.Model(inputs, layers.Dense(n_classes, name="logits")(x))


def always_after(cfg, input_shape, n_classes, seed):
    """Puts BN after the nonlinearity whatever model.bn says."""
    inputs = keras.Input(shape=input_shape)
    x = layers.Dense(16, name="dense1_linear")(layers.Flatten()(inputs))
    x = layers.BatchNormalization(name="dense1_bn")(layers.Activation("relu", name="dense1_act")(x))
    return keras.Model(inputs, layers.Dense(n_classes, name="logits")(x))


not_a_function = 3


def negative_moving_variance(cfg, input_shape, n_classes, seed):
    """Keeps the contract, but its BN layers start with a moving variance of -1: finite in training (batch
    statistics), NaN at inference (the moving ones)."""
    model = wide_then_narrow(cfg, input_shape, n_classes, seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.moving_variance.assign(-keras.ops.ones_like(layer.moving_variance))
    return model


def raises(cfg, input_shape, n_classes, seed):
    """A builder with a bug in it."""
    raise ValueError(f"no such layer size: {cfg.hidden}")

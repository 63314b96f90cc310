"""The registered model builders, one per architecture, each reading top to bottom like its paper's diagram.

A builder is `build(cfg: ModelConfig, input_shape: tuple, n_classes: int, seed: int) -> keras.Model`: `model=<name>`
picks a registered one (config.BUILDERS), `model._target_=pkg.module.fn` a user's own. What a builder must
name, and how BN placement must look, is the contract in `contract` (and README "Your own model builder").
Whether a config fits its data (image shapes, class count) is checked before building, in `shapes`.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from bn_study.config import BN, ModelConfig
from bn_study.models import blocks, contract
from bn_study.models.lstm import FixedPermutation, NormLSTM


def mlp(cfg: ModelConfig, input_shape: tuple, n_classes: int, seed: int) -> keras.Model:
    """The paper's Figure 1 network: [input BN] -> flatten -> dense blocks (model.hidden, or model.depth of them) -> logits."""
    seeds = blocks.layer_seeds(seed)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = blocks.flat(blocks.input_bn(inputs, cfg))
    for i, units in enumerate(cfg.dense_units(), start=1):
        x = blocks.block(x, layers.Dense, f"dense{i}", cfg, next(seeds), units=units)
    return keras.Model(inputs, blocks.head(x, cfg, n_classes, next(seeds)), name=f"{cfg.name}_bn-{cfg.bn.value}")


def cnn(cfg: ModelConfig, input_shape: tuple, n_classes: int, seed: int) -> keras.Model:
    """The Keras blog's CNN: [input BN] -> conv blocks (model.conv) with 2x2 max-pooling between them
    -> flatten -> dense blocks (model.hidden) -> logits."""
    seeds = blocks.layer_seeds(seed)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = blocks.input_bn(inputs, cfg)
    for i, filters in enumerate(cfg.conv, start=1):
        if i > 1:
            x = layers.MaxPooling2D(name=f"conv{i}_pool")(x)
        x = blocks.block(x, layers.Conv2D, f"conv{i}", cfg, next(seeds), filters=filters, kernel_size=cfg.kernel_size)
    x = blocks.flat(x)
    for i, units in enumerate(cfg.dense_units(), start=1):
        x = blocks.block(x, layers.Dense, f"dense{i}", cfg, next(seeds), units=units)
    return keras.Model(inputs, blocks.head(x, cfg, n_classes, next(seeds)), name=f"{cfg.name}_bn-{cfg.bn.value}")


# One pixel order for every permuted run (model.permute), whatever its seed: the task is fixed, not drawn per run.
PERMUTATION_SEED = 0


def lstm(cfg: ModelConfig, input_shape: tuple, n_classes: int, seed: int) -> keras.Model:
    """Sequential MNIST read row by row (Cooijmans et al. 2016 read pixel by pixel): each image row is one time
    step (28 steps of 28 pixels), with model.permute the pixels first put in one fixed random order -> an LSTM of
    model.hidden[0] units, normalised inside its cell as model.bn and model.norm say (lstm.NormLSTM) -> its
    last hidden state -> logits."""
    seeds = blocks.layer_seeds(seed)
    inputs = keras.Input(shape=input_shape, name="inputs")
    rows, width = input_shape[0], math.prod(input_shape[1:])
    x = layers.Reshape((rows * width,), name="pixels")(inputs)
    if cfg.permute:
        x = FixedPermutation(PERMUTATION_SEED, name="permuted")(x)
    x = layers.Reshape((rows, width), name="rows")(x)
    x = NormLSTM(
        cfg.hidden[0],
        norm=None if cfg.bn is BN.none else cfg.norm.value,
        gamma=cfg.recurrent_gamma,
        momentum=cfg.bn_momentum,
        kernel_initializer=blocks.initializer(cfg, next(seeds)),
        recurrent_initializer=keras.initializers.Orthogonal(seed=next(seeds)),
        name="lstm1",
    )(x)
    return keras.Model(inputs, blocks.head(x, cfg, n_classes, next(seeds)), name=f"{cfg.name}_bn-{cfg.bn.value}")


def build(cfg: ModelConfig, input_shape: tuple, n_classes: int, seed: int) -> keras.Model:
    """The model of `cfg`, from its builder (registered or the user's), checked against the contract."""
    make = contract.builder(cfg)
    try:
        model = make(cfg, input_shape, n_classes, seed)
    except Exception as err:
        if cfg._target_ is None:
            raise  # a registered builder's failure is bn-study's bug: its traceback is wanted
        raise contract.raised(cfg, err) from None
    contract.check(model, cfg, n_classes)
    return model

"""One functional-API builder for every network in the studies.

    input -> [input BN] -> [conv block -> maxpool]* conv block -> flatten -> [dense block]* -> output

A block is `linear -> act` with BN placed per `model.bn`:
    none:   linear(+bias) -> act
    before: linear(no bias) -> BN -> act        (the paper: BN's beta makes the bias redundant)
    after:  linear(+bias) -> act -> BN
followed by dropout when `model.dropout > 0` (or, with `model.dropout_before_bn`, dropout just before BN). Layers are named `{kind}{i}_{role}` (dense3_act,
conv1_bn, ...) so probes can find "the nonlinearity of hidden block 3" in any arm. The output is a
Dense of one logit per class (softmax) or a single logit (sigmoid, two classes), and with `model.output_bn`
the Keras blog's Dense(no bias) -> BN before the softmax.

Whether a config fits its data (image shapes, class count) is checked before building, in `shapes`.

Weights are initialised from per-layer seeds derived from the run seed only, so the BN and no-BN
arms of a paired comparison start from the same kernels: BN-before only drops the biases (zeros).
"""

from __future__ import annotations

import keras
from keras import layers

from .config import BN, ModelConfig, Norm, Output

OUTPUT = "logits"


def _initializer(cfg: ModelConfig, seed: int, output: bool = False):
    if output and cfg.output_init is not None:
        return keras.initializers.get({"class_name": cfg.output_init.value, "config": {"seed": seed}})
    if cfg.init_std is None:
        return keras.initializers.get({"class_name": cfg.kernel_init.value, "config": {"seed": seed}})
    return keras.initializers.RandomNormal(mean=0.0, stddev=cfg.init_std, seed=seed)


def _input_bn(x, cfg: ModelConfig):
    """BN on the raw inputs: one mean and variance per feature (each pixel its own), or a single scalar for
    all features. Keras's BN normalises its last axis, so the inputs are laid out as (features,) or
    (features, 1) around it and given back their shape."""
    shape = tuple(x.shape[1:])
    x = layers.Reshape((-1,) if cfg.input_bn is Norm.feature else (-1, 1), name="input_bn_flat")(x)
    x = layers.BatchNormalization(momentum=cfg.bn_momentum, renorm=cfg.bn_renorm, name="input_bn")(x)
    return layers.Reshape(shape, name="input_bn_unflat")(x)


def _output(x, cfg: ModelConfig, n_classes: int, seed: int):
    units = 1 if cfg.output is Output.sigmoid else n_classes
    x = layers.Dense(units, use_bias=not cfg.output_bn, kernel_initializer=_initializer(cfg, seed, output=True), name=f"{OUTPUT}_linear" if cfg.output_bn else OUTPUT)(x)
    if cfg.output_bn:
        x = layers.BatchNormalization(momentum=cfg.bn_momentum, renorm=cfg.bn_renorm, name=OUTPUT)(x)
    return x


def _block(x, linear_cls, name: str, cfg: ModelConfig, seed: int, **linear_kwargs):
    dropout = cfg.dropout > 0
    early = dropout and cfg.dropout_before_bn

    def bn(x):
        if early:
            x = layers.Dropout(cfg.dropout, seed=seed, name=f"{name}_dropout")(x)
        return layers.BatchNormalization(momentum=cfg.bn_momentum, renorm=cfg.bn_renorm, name=f"{name}_bn")(x)

    x = linear_cls(
        use_bias=cfg.bn is not BN.before,
        kernel_initializer=_initializer(cfg, seed),
        kernel_regularizer=keras.regularizers.L2(cfg.l2) if cfg.l2 else None,
        name=f"{name}_linear",
        **linear_kwargs,
    )(x)
    if cfg.bn is BN.before:
        x = bn(x)
    x = layers.Activation(cfg.activation.value, name=f"{name}_act")(x)
    if cfg.bn is BN.after:
        x = bn(x)
    if dropout and not early:
        x = layers.Dropout(cfg.dropout, seed=seed, name=f"{name}_dropout")(x)
    return x


def build(cfg: ModelConfig, input_shape: tuple, n_classes: int, seed: int) -> keras.Model:
    layer_seed = iter(range(seed * 1000, seed * 1000 + 1000))

    inputs = keras.Input(shape=input_shape, name="inputs")
    x = inputs if cfg.input_bn is Norm.none else _input_bn(inputs, cfg)
    for i, filters in enumerate(cfg.conv, start=1):
        if i > 1:
            x = layers.MaxPooling2D(name=f"conv{i}_pool")(x)
        x = _block(x, layers.Conv2D, f"conv{i}", cfg, next(layer_seed), filters=filters, kernel_size=cfg.kernel_size)
    if len(x.shape) > 2:
        x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(cfg.hidden, start=1):
        x = _block(x, layers.Dense, f"dense{i}", cfg, next(layer_seed), units=units)
    outputs = _output(x, cfg, n_classes, next(layer_seed))
    return keras.Model(inputs, outputs, name=f"{cfg.name}_bn-{cfg.bn.value}")


def nonlinearities(model: keras.Model) -> list[keras.layers.Layer]:
    """The hidden blocks' activation layers, input to output."""
    return [layer for layer in model.layers if layer.name.endswith("_act")]

"""The small pieces every builder is made of, and the layer names that are the model contract.

A hidden block is `linear -> act` with BN placed per `model.bn`:
    none:   linear(+bias) -> act
    before: linear(no bias) -> BN -> act        (the paper: BN's beta makes the bias redundant)
    after:  linear(+bias) -> act -> BN
followed by dropout when `model.dropout > 0` (or, with `model.dropout_before_bn`, dropout just before BN).

BN is the block's normalisation layer: BatchNormalization unless `model.norm` picks Batch Renormalization,
LayerNormalization or GroupNormalization, placed the same way.

The names are what probes and studies find a network by, in any builder (`contract` checks them):
`{block}_linear`, `{block}_bn` (the block's normalisation layer, whichever `model.norm` is: the name is
older than the choice), `{block}_act` (block = dense3, conv1, ...: the hidden nonlinearities, input to
output, are the layers named *_act), and the output layer `logits`.
"""

from __future__ import annotations

import keras
from keras import layers

from bn_study.config import BN, LAYER_SEEDS, ModelConfig, Norm, Normalizer, Output

OUTPUT = "logits"
ACT, BN_LAYER, LINEAR = "_act", "_bn", "_linear"


def initializer(cfg: ModelConfig, seed: int, output: bool = False):
    if output and cfg.output_init is not None:
        return keras.initializers.get({"class_name": cfg.output_init.value, "config": {"seed": seed}})
    if cfg.init_std is None:
        return keras.initializers.get({"class_name": cfg.kernel_init.value, "config": {"seed": seed}})
    return keras.initializers.RandomNormal(mean=0.0, stddev=cfg.init_std, seed=seed)


def layer_seeds(seed: int):
    """Per-layer init seeds from the run seed only, in build order: so the BN and no-BN arms of a paired
    comparison start from the same kernels (BN-before only drops the biases, which are zeros)."""
    return iter(range(seed * LAYER_SEEDS, (seed + 1) * LAYER_SEEDS))


def batch_norm(cfg: ModelConfig, name: str) -> layers.Layer:
    return layers.BatchNormalization(
        momentum=cfg.bn_momentum, renorm=cfg.bn_renorm or cfg.norm is Normalizer.batch_renorm, name=name
    )


# The Keras classes a block's normalisation layer may be, per model.norm (layer norm of a conv block is a
# one-group GroupNormalization, below).
NORM_LAYERS = {
    Normalizer.batch: (layers.BatchNormalization,),
    Normalizer.batch_renorm: (layers.BatchNormalization,),
    Normalizer.layer: (layers.LayerNormalization, layers.GroupNormalization),
    Normalizer.group: (layers.GroupNormalization,),
}


def normalizer(cfg: ModelConfig, name: str, conv: bool) -> layers.Layer:
    """A block's normalisation layer, as model.norm picks it; epsilon is BN's for all, so they differ only in
    what they normalise over. Layer norm of a conv block normalises each example over its whole feature map
    with a gain and bias per channel: GroupNormalization with one group, as Wu & He (2018) define it (Keras's
    LayerNormalization over (H, W, C) would learn a gain per element)."""
    if cfg.norm is Normalizer.layer:
        return (
            layers.GroupNormalization(groups=1, epsilon=1e-3, name=name)
            if conv
            else layers.LayerNormalization(epsilon=1e-3, name=name)
        )
    if cfg.norm is Normalizer.group:
        return layers.GroupNormalization(groups=cfg.norm_groups, epsilon=1e-3, name=name)
    return batch_norm(cfg, name)


def input_bn(x, cfg: ModelConfig):
    """BN on the raw inputs (model.input_bn): one mean and variance per feature (each pixel its own), or a
    single scalar for all features. Keras's BN normalises its last axis, so the inputs are laid out as
    (features,) or (features, 1) around it and given back their shape."""
    if cfg.input_bn is Norm.none:
        return x
    shape = tuple(x.shape[1:])
    x = layers.Reshape((-1,) if cfg.input_bn is Norm.feature else (-1, 1), name="input_bn_flat")(x)
    x = batch_norm(cfg, "input_bn")(x)
    return layers.Reshape(shape, name="input_bn_unflat")(x)


def block(x, linear_cls, name: str, cfg: ModelConfig, seed: int, **linear_kwargs):
    """One hidden block `name`: linear -> [BN] -> act -> [BN] -> [dropout], as the module docstring draws it."""
    dropout = cfg.dropout > 0
    early = dropout and cfg.dropout_before_bn

    def bn(x):
        if early:
            x = layers.Dropout(cfg.dropout, seed=seed, name=f"{name}_dropout")(x)
        return normalizer(cfg, f"{name}{BN_LAYER}", conv=len(x.shape) > 2)(x)

    x = linear_cls(
        use_bias=cfg.bn is not BN.before,
        kernel_initializer=initializer(cfg, seed),
        kernel_regularizer=keras.regularizers.L2(cfg.l2) if cfg.l2 else None,
        name=f"{name}{LINEAR}",
        **linear_kwargs,
    )(x)
    if cfg.bn is BN.before:
        x = bn(x)
    x = layers.Activation(cfg.activation.value, name=f"{name}{ACT}")(x)
    if cfg.bn is BN.after:
        x = bn(x)
    if dropout and not early:
        x = layers.Dropout(cfg.dropout, seed=seed, name=f"{name}_dropout")(x)
    return x


def batch_norm_layers(model: keras.Model) -> list[layers.BatchNormalization]:
    """Every BatchNormalization layer of the model (input, hidden and output ones), input to output."""
    return [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]


def nonlinearities(model: keras.Model) -> list[layers.Layer]:
    """The hidden blocks' activation layers, input to output (the layers named *_act)."""
    return [layer for layer in model.layers if layer.name.endswith(ACT)]


def flat(x):
    return layers.Flatten(name="flatten")(x) if len(x.shape) > 2 else x


def head(x, cfg: ModelConfig, n_classes: int, seed: int):
    """The output layer `logits`: one logit per class (softmax), or a single logit (sigmoid, two classes);
    with `model.output_bn` the Keras blog's Dense(no bias) -> BN before the softmax."""
    units = 1 if cfg.output is Output.sigmoid else n_classes
    x = layers.Dense(
        units,
        use_bias=not cfg.output_bn,
        kernel_initializer=initializer(cfg, seed, output=True),
        name=f"{OUTPUT}{LINEAR}" if cfg.output_bn else OUTPUT,
    )(x)
    return batch_norm(cfg, OUTPUT)(x) if cfg.output_bn else x

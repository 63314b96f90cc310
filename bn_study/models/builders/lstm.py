"""model=lstm: sequential MNIST read row by row (Cooijmans et al. 2016 read pixel by pixel): each image row is one
time step (28 steps of 28 pixels), with model.permute the pixels first put in one fixed random order -> an LSTM of
model.hidden[0] units, normalised inside its cell as model.bn and model.norm say (lstm_cell.NormLSTM) -> its last
hidden state -> logits. The feed-forward options are refused rather than ignored."""

from __future__ import annotations

import math

from bn_study.config import BN, Activation, ModelConfig, Norm, Normalizer, RunConfig
from bn_study.data.datasets import Spec
from bn_study.models.builder import Builder, needs_images, require

# One pixel order for every permuted run (model.permute), whatever its seed: the task is fixed, not drawn per run.
PERMUTATION_SEED = 0


def build(cfg: ModelConfig, input_shape: tuple, n_classes: int, seed: int):
    # TensorFlow, when a model is built: the registry loads without it
    import keras

    from bn_study.models import blocks
    from bn_study.models.lstm_cell import FixedPermutation, NormLSTM

    layers = keras.layers
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


def rules(run: RunConfig) -> None:
    m = run.model
    require(
        m.depth is None and len(m.hidden) == 1,
        "model.hidden",
        m.hidden,
        "one width for model=lstm (the LSTM's units), with model.depth null",
    )
    require(
        m.bn in (BN.none, BN.before),
        "model.bn",
        m.bn.value,
        "none or before for model=lstm (before: normalised inside the cell, as Cooijmans et al. 2016)",
    )
    require(m.norm in (Normalizer.batch, Normalizer.layer), "model.norm", m.norm.value, "batch or layer for model=lstm")
    require(
        m.activation is Activation.tanh, "model.activation", m.activation.value, "tanh for model=lstm (the cell's own)"
    )
    for key, value, default in (
        ("model.input_bn", m.input_bn, Norm.none),
        ("model.output_bn", m.output_bn, False),
        ("model.dropout", m.dropout, 0.0),
        ("model.dropout_before_bn", m.dropout_before_bn, False),
        ("model.bn_renorm", m.bn_renorm, False),
        ("model.l2", m.l2, 0.0),
    ):
        require(
            value == default,
            key,
            getattr(value, "value", value),
            f"{getattr(default, 'value', default)} for model=lstm (a feed-forward block's option)",
        )
    require(
        not run.trainer.precise_bn or (m.bn is BN.before and m.norm is Normalizer.batch),
        "trainer.precise_bn",
        run.trainer.precise_bn,
        "0 for model=lstm unless model.bn=before and model.norm=batch (a BN-LSTM: there are no batch statistics to "
        "recompute)",
    )


def fits(run: RunConfig, spec: Spec) -> None:
    needs_images(run, spec, "model=lstm (one row per time step)")


# XLA took 15-26 s to compile the 28 unrolled steps against 2-7 s, for a gain of at most 20% a step.
BUILDER = Builder("lstm", build, options=("permute", "recurrent_gamma"), rules=rules, fits=fits, xla_on_cpu=False)

"""model=mlp: the paper's Figure 1 network, [input BN] -> flatten -> dense blocks (model.hidden, or model.depth of
them) -> logits."""

from __future__ import annotations

from bn_study.config import ModelConfig
from bn_study.models.builder import Builder, block_acts, block_fits, block_rules


def build(cfg: ModelConfig, input_shape: tuple, n_classes: int, seed: int):
    # TensorFlow, when a model is built: the registry loads without it
    import keras

    from bn_study.models import blocks

    seeds = blocks.layer_seeds(seed)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = blocks.flat(blocks.input_bn(inputs, cfg))
    for i, units in enumerate(cfg.dense_units(), start=1):
        x = blocks.block(x, keras.layers.Dense, f"dense{i}", cfg, next(seeds), units=units)
    return keras.Model(inputs, blocks.head(x, cfg, n_classes, next(seeds)), name=f"{cfg.name}_bn-{cfg.bn.value}")


BUILDER = Builder("mlp", build, acts=block_acts, rules=block_rules, fits=block_fits)

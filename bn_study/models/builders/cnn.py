"""model=cnn: the Keras blog's CNN, [input BN] -> conv blocks (model.conv) with 2x2 max-pooling between them ->
flatten -> dense blocks (model.hidden) -> logits."""

from __future__ import annotations

from bn_study.config import ConfigError, ModelConfig, RunConfig
from bn_study.data.datasets import Spec
from bn_study.models.builder import Builder, block_acts, block_fits, block_rules, needs_images, require


def build(cfg: ModelConfig, input_shape: tuple, n_classes: int, seed: int):
    # TensorFlow, when a model is built: the registry loads without it
    import keras

    from bn_study.models import blocks

    layers = keras.layers
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


def rules(run: RunConfig) -> None:
    require(bool(run.model.conv), "model.conv", run.model.conv, "a non-empty list of filters for model=cnn")
    block_rules(run)


def fits(run: RunConfig, spec: Spec) -> None:
    """Each conv block is a 'valid' convolution (side - kernel + 1), with a 2x2 max-pooling (side // 2) between
    consecutive blocks: the last one must still get an input at least the kernel's size."""
    filters, kernel = list(run.model.conv), run.model.kernel_size
    needs_images(run, spec, f"model.conv={filters}")
    side = spec.input_shape[:2]
    h, w = side
    for i in range(1, len(filters) + 1):
        if i > 1:
            h, w = h // 2, w // 2
        if min(h, w) < kernel:
            raise ConfigError(
                f"model.conv={filters}: conv block {i} gets a {h}x{w} input from data={run.data.name} ({side[0]}x{side[1]}), "
                f"smaller than model.kernel_size={kernel}; use fewer blocks or a smaller kernel"
            )
        h, w = h - kernel + 1, w - kernel + 1
    block_fits(run, spec)


# XLA's CPU convolutions measured 12x slower than TensorFlow's own (152 vs 12.9 ms per Keras-blog CNN step).
BUILDER = Builder(
    "cnn", build, options=("conv", "kernel_size"), acts=block_acts, rules=rules, fits=fits, xla_on_cpu=False
)

"""Does a config's network fit its data, and its probe the network? For the registered builders this is
worked out from the dataset's shape (`data.SPECS`, or the arrays a run actually loaded), never by building a
model, so that a sweep can check every job before its first one starts, without TensorFlow. A user's own
builder (model._target_) is unknown to that arithmetic: its model is built once and checked against the
contract (`contract`) instead.

The arithmetic mirrors `models.cnn`: a conv block is a 'valid' convolution (side - kernel + 1), and a
2x2 max-pooling (side // 2) sits between consecutive blocks.
"""

from __future__ import annotations

from bn_study.config import BN, ConfigError, Normalizer, Output, RunConfig
from bn_study.data.datasets import Spec, n_val


def check(run: RunConfig, spec: Spec) -> None:
    """Raise ConfigError (one line naming the key) if `run` cannot train on data shaped like `spec`."""
    m, data = run.model, run.data.name.value
    if m.conv and m._target_ is None and len(spec.input_shape) != 3:
        raise ConfigError(
            f"model.conv={list(m.conv)} needs image data (H, W, C); this dataset's inputs have shape {spec.input_shape}"
        )
    if m.name == "lstm" and m._target_ is None and len(spec.input_shape) != 3:
        raise ConfigError(
            f"model=lstm needs image data (H, W, C), one row per time step; data={data}'s inputs have shape {spec.input_shape}"
        )
    if m.conv and m._target_ is None:
        _check_conv(list(m.conv), m.kernel_size, spec.input_shape[:2], data)
    if m.bn is not BN.none and m.norm is Normalizer.group and m._target_ is None:
        widths = [*m.conv, *m.dense_units()]
        uneven = [w for w in widths if w % m.norm_groups]
        if uneven:
            raise ConfigError(
                f"model.norm_groups={m.norm_groups}: must divide every block's width (here {widths}); {uneven[0]} does not split into "
                f"{m.norm_groups} equal groups"
            )
    if m.output is Output.sigmoid and spec.n_classes != 2:
        raise ConfigError(
            f"model.output=sigmoid: needs a two-class dataset; this one has {spec.n_classes} classes (use model.output=softmax)"
        )
    n_train = spec.n_train - n_val(spec.n_train, run.data.val_fraction)
    if run.trainer.batch_size > n_train:
        raise ConfigError(
            f"trainer.batch_size={run.trainer.batch_size}: must be at most the training split's {n_train:,} examples (data={data})"
        )
    for key, batches in (
        ("trainer.precise_bn", run.trainer.precise_bn),
        ("probe.precise_batches", run.probe.precise_batches),
    ):
        if batches * run.trainer.batch_size > n_train:
            raise ConfigError(
                f"{key}={batches}: {batches} batches of trainer.batch_size={run.trainer.batch_size} need {batches * run.trainer.batch_size:,} "
                f"training examples; the training split has {n_train:,} (data={data}); use at most {n_train // run.trainer.batch_size}"
            )
    if run.probe.enabled and m._target_ is None:
        _check_probe(run)


def _check_conv(filters: list[int], kernel: int, side: tuple, data: str) -> None:
    h, w = side
    for i in range(1, len(filters) + 1):
        if i > 1:
            h, w = h // 2, w // 2
        if min(h, w) < kernel:
            raise ConfigError(
                f"model.conv={filters}: conv block {i} gets a {h}x{w} input from data={data} ({side[0]}x{side[1]}), smaller than "
                f"model.kernel_size={kernel}; use fewer blocks or a smaller kernel"
            )
        h, w = h - kernel + 1, w - kernel + 1


def _check_probe(run: RunConfig) -> None:
    m = run.model
    _probe_fits(
        [
            *((f"conv{i}_act", f) for i, f in enumerate(m.conv, 1)),
            *((f"dense{i}_act", u) for i, u in enumerate(m.dense_units(), 1)),
        ],
        run.probe,
    )


def check_probe(model, p) -> None:
    """probe.layer and probe.unit against a built model's nonlinearities (a user's builder)."""
    # imports TensorFlow: only for a user's builder, which the arithmetic cannot follow
    from bn_study.models.blocks import nonlinearities

    if p.enabled:
        _probe_fits([(act.name, act.output.shape[-1]) for act in nonlinearities(model)], p)


def _probe_fits(acts: list[tuple[str, int]], p) -> None:
    """`acts`: the hidden nonlinearities' (name, units), input to output."""
    if not -len(acts) <= p.layer < len(acts):
        raise ConfigError(
            f"probe.layer={p.layer}: the model has {len(acts)} hidden nonlinearities (use -{len(acts)}..{len(acts) - 1})"
        )
    name, units = acts[p.layer]
    if not 0 <= p.unit < units:
        raise ConfigError(f"probe.unit={p.unit}: {name} has {units} units (use 0..{units - 1})")

"""What a registered builder declares beside its build function (`Builder`), and the rules the feed-forward builders
share. Imports no TensorFlow: a sweep checks every job against these before its first run starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from bn_study.config import BN, LAYER_SEEDS, ConfigError, ModelConfig, Normalizer, RunConfig
from bn_study.config.validation import require
from bn_study.data.datasets import Spec


def _nothing(*_) -> None:
    return None


@dataclass(frozen=True)
class Builder:
    """A registered model builder: model=<name> picks it (conf/model/<name>.yaml holds its defaults)."""

    name: str
    # (cfg: ModelConfig, input_shape, n_classes, seed) -> keras.Model, keeping the contract (models.contract).
    build: Callable
    # ModelConfig fields only this builder reads: every other registered builder refuses them off their default.
    options: tuple[str, ...] = ()
    # Its hidden nonlinearities `{block}_act` as (name, units), input to output, worked out from the config
    # without building (the probes read them); None: it has none (a recurrent cell keeps its own inside).
    acts: Optional[Callable[[ModelConfig], list[tuple[str, int]]]] = None
    # Its own refusals (ConfigError, one line naming the key) of a config it cannot build or would silently ignore.
    rules: Callable[[RunConfig], None] = _nothing
    # Whether the config's network fits the dataset's inputs (ConfigError otherwise).
    fits: Callable[[RunConfig, Spec], None] = _nothing
    # XLA pays on a CPU-only host (config.TrainerConfig.xla): it slows convolutions and long unrolled cells there.
    xla_on_cpu: bool = True


def block_acts(m: ModelConfig) -> list[tuple[str, int]]:
    """The feed-forward blocks' nonlinearities (models.blocks names them): conv blocks, then dense ones."""
    return [
        *((f"conv{i}_act", f) for i, f in enumerate(m.conv, 1)),
        *((f"dense{i}_act", u) for i, u in enumerate(m.dense_units(), 1)),
    ]


def block_rules(run: RunConfig) -> None:
    """A feed-forward network initialises each block from a seed of its own (blocks.layer_seeds)."""
    m = run.model
    require(
        len(m.conv) + len(m.dense_units()) < LAYER_SEEDS,
        "model.depth" if m.depth else "model.hidden",
        m.depth or m.hidden,
        f"at most {LAYER_SEEDS - 1 - len(m.conv)} dense blocks beside {len(m.conv)} conv blocks (a run initialises at "
        f"most {LAYER_SEEDS} layers, one seed each, the output layer included)",
    )


def block_fits(run: RunConfig, spec: Spec) -> None:
    """Group normalisation splits every block's width into model.norm_groups equal groups."""
    m = run.model
    if m.bn is BN.none or m.norm is not Normalizer.group:
        return
    widths = [units for _, units in block_acts(m)]
    uneven = [w for w in widths if w % m.norm_groups]
    if uneven:
        raise ConfigError(
            f"model.norm_groups={m.norm_groups}: must divide every block's width (here {widths}); {uneven[0]} does not "
            f"split into {m.norm_groups} equal groups"
        )


def needs_images(run: RunConfig, spec: Spec, why: str) -> None:
    if len(spec.input_shape) != 3:
        raise ConfigError(
            f"{why} needs image data (H, W, C); data={run.data.name}'s inputs have shape {spec.input_shape}"
        )

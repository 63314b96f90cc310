"""Numeric ranges and cross-field rules that hold for every dataset, builder and probe (`validate`): bad input as
`ConfigError`, one line naming the key and what it allows. What one dataset, builder or probe refuses is its registry
entry's to say (bn_study.run.preflight.validated checks both)."""

from __future__ import annotations

import math
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bn_study.config.schema import BN, Norm, Normalizer, OptimizerName, RunConfig


class ConfigError(ValueError):
    """Bad user input; the message is one line naming the key and what it allows."""


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value}: must be {allowed}")


# Bounds that catch typos before they cost anything: a seed Keras and numpy accept, a run length short of
# a typo's 1e12 steps (the paper's longest run is 50,000; ten million is hours even at 1 ms a step), and a
# study name that fits in a path.
MAX_SEED = 2**32 - 1
MAX_STEPS = 10_000_000
MAX_STUDY_NAME = 64
# Each run seed has this many layer init seeds (blocks.layer_seeds: seed s draws s*1000 .. s*1000+999, so two runs
# never share one); the deepest network takes one per block plus one for its output layer.
LAYER_SEEDS = 1000
MAX_DEPTH = LAYER_SEEDS - 1


def check_study_name(name: str) -> None:
    """A study name becomes a folder name: results/<study>/."""
    require(
        name.replace("_", "").replace("-", "").isalnum() and len(name) <= MAX_STUDY_NAME,
        "study",
        name,
        f"letters, digits, '_' or '-', at most {MAX_STUDY_NAME} characters",
    )


def keys_of(path: str = "") -> list[str]:
    """The keys a (dotted) node of the schema allows; [] for a leaf or an unknown path."""
    node = OmegaConf.select(OmegaConf.structured(RunConfig), path) if path else OmegaConf.structured(RunConfig)
    return list(node.keys()) if isinstance(node, DictConfig) else []


def unknown_key(key: str) -> ConfigError:
    parent = key.rpartition(".")[0]
    allowed = keys_of(parent)
    where = parent or "the top level"
    return ConfigError(f"{key}: unknown key; {where} has: {', '.join(allowed)}" if allowed else f"{key}: unknown key")


def _refuse_unknown_keys(cfg: DictConfig, schema: DictConfig, prefix: str = "") -> None:
    """Every key of a composed config must be in the schema: a `+key=value` override can add one that
    OmegaConf's own merge lets through inside a typed node, and the run would silently ignore it."""
    for key in cfg.keys():
        path = f"{prefix}{key}"
        if key not in schema:
            raise unknown_key(path)
        child, expected = cfg._get_node(key), schema._get_node(key)
        if isinstance(expected, DictConfig) and OmegaConf.get_type(expected) is dict:
            continue  # a Dict[str, Any] (callbacks): any key is the user's own name
        if isinstance(child, DictConfig) and isinstance(expected, DictConfig) and not child._is_none():
            _refuse_unknown_keys(child, expected, f"{path}.")


# The model computes in float32, where anything larger than this is inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _refuse_non_finite(node: Any, prefix: str = "") -> None:
    """inf or nan in any number (a learning rate, an init std, an L2 factor) trains a run that can only diverge;
    so does a number float32 cannot hold (optimizer.lr=1e39 is inf to the model)."""
    for f in fields(node):
        value, key = getattr(node, f.name), f"{prefix}{f.name}"
        if is_dataclass(value):
            _refuse_non_finite(value, f"{key}.")
        for v in value if isinstance(value, list) else [value]:
            require(
                not isinstance(v, float) or (math.isfinite(v) and abs(v) <= FLOAT32_MAX),
                key,
                value,
                f"a finite number, at most {FLOAT32_MAX:.4g} in magnitude (the model computes in float32)",
            )


# The final numbers a run may return to a searching sweeper (run.json's `final`, validation only).
OBJECTIVES = ("val_accuracy", "val_loss")


def validate(cfg: DictConfig | RunConfig) -> RunConfig:
    """Return the typed config, or raise ConfigError on the first value out of range. The rules every config keeps
    only: what a dataset, builder or probe refuses is its registry entry's to say, and a run or a plan is checked by
    bn_study.run.preflight.validated, which calls this first."""
    if isinstance(cfg, DictConfig):
        if "hydra" in cfg:
            cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
        schema = OmegaConf.structured(RunConfig)
        _refuse_unknown_keys(cfg, schema)
        run = OmegaConf.to_object(OmegaConf.merge(schema, cfg))
    else:
        run = cfg
    _refuse_non_finite(run)
    m, o, t, p = run.model, run.optimizer, run.trainer, run.probe
    require(
        m._target_ is None or all(p.isidentifier() for p in m._target_.split(".")) and "." in m._target_,
        "model._target_",
        m._target_,
        "a dotted path to a builder function, pkg.module.build",
    )
    require(
        run.objective in OBJECTIVES,
        "objective",
        run.objective,
        f"one of {', '.join(OBJECTIVES)} (a search selects on validation, never on the test split)",
    )
    require(bool(m.hidden) or bool(m.conv), "model.hidden", m.hidden, "non-empty when model.conv is empty")
    for key, sizes in (("model.hidden", m.hidden), ("model.conv", m.conv)):
        require(all(s >= 1 for s in sizes), key, sizes, "a list of positive sizes")
    require(
        m.depth is None or 1 <= m.depth <= MAX_DEPTH,
        "model.depth",
        m.depth,
        f"an integer in [1, {MAX_DEPTH}], or null for model.hidden as it is",
    )
    require(
        m.depth is None or bool(m.hidden),
        "model.hidden",
        m.hidden,
        "one width at least when model.depth is set (model.depth blocks of model.hidden[0] units)",
    )
    require(m.kernel_size >= 1, "model.kernel_size", m.kernel_size, "an integer >= 1")
    require(
        not m.bn_renorm or m.bn is not BN.none or m.input_bn is not Norm.none,
        "model.bn_renorm",
        m.bn_renorm,
        "false when there is no BN layer (model.bn=none)",
    )
    require(
        not m.dropout_before_bn or m.bn is not BN.none,
        "model.dropout_before_bn",
        m.dropout_before_bn,
        "false when model.bn=none",
    )
    require(0.0 <= m.dropout < 1.0, "model.dropout", m.dropout, "in [0, 1)")
    require(m.init_std is None or m.init_std > 0, "model.init_std", m.init_std, "> 0, or null for model.kernel_init")
    require(not m.output_bn or m.bn is not BN.none, "model.output_bn", m.output_bn, "false when model.bn=none")
    require(0.0 <= run.data.val_fraction < 0.5, "data.val_fraction", run.data.val_fraction, "in [0, 0.5)")
    require(
        run.data.train_size >= 0,
        "data.train_size",
        run.data.train_size,
        "an integer >= 0 (0: the whole training split)",
    )
    require(
        run.data.path is None or Path(run.data.path).exists(), "data.path", run.data.path, "an existing file or folder"
    )
    require(run.data.standardize_epsilon >= 0, "data.standardize_epsilon", run.data.standardize_epsilon, ">= 0")
    require(o.lr > 0, "optimizer.lr", o.lr, "> 0")
    require(o.decay_every >= 0, "optimizer.decay_every", o.decay_every, "an integer >= 0 (0: constant lr)")
    require(0 < o.decay_rate <= 1, "optimizer.decay_rate", o.decay_rate, "in (0, 1]")
    require(m.l2 >= 0, "model.l2", m.l2, ">= 0")
    require(0.0 <= o.momentum < 1.0, "optimizer.momentum", o.momentum, "in [0, 1)")
    require(
        o.name is not OptimizerName.adam or o.momentum == 0,
        "optimizer.momentum",
        o.momentum,
        "0 with optimizer=adam (Adam has its own betas)",
    )
    require(1 <= t.steps <= MAX_STEPS, "trainer.steps", t.steps, f"an integer in [1, {MAX_STEPS:,}]")
    require(t.batch_size >= 1, "trainer.batch_size", t.batch_size, "an integer >= 1")
    require(t.eval_every >= 1, "trainer.eval_every", t.eval_every, "an integer >= 1")
    require(t.eval_batch_size >= 1, "trainer.eval_batch_size", t.eval_batch_size, "an integer >= 1")
    require(t.eval_subset >= 0, "trainer.eval_subset", t.eval_subset, "an integer >= 0 (0: every evaluation whole)")
    require(
        list(t.subset_splits) in (["test"], ["val"], ["test", "val"]),
        "trainer.subset_splits",
        list(t.subset_splits),
        "one of [test], [val], [test,val] (the evaluated splits)",
    )
    require(
        t.eval_subset or list(t.subset_splits) == ["test", "val"],
        "trainer.subset_splits",
        list(t.subset_splits),
        "[test,val] (unset) while trainer.eval_subset is 0: it says which splits eval_subset cuts",
    )
    require(
        not t.eval_subset or not run.callbacks,
        "trainer.eval_subset",
        t.eval_subset,
        "0 with callbacks (a callback may end the run at an evaluation measured on the subset)",
    )
    require(0.0 <= m.bn_momentum < 1.0, "model.bn_momentum", m.bn_momentum, "in [0, 1)")
    per_example = m.bn is not BN.none and m.norm in (Normalizer.layer, Normalizer.group)
    require(
        not per_example or m.bn_momentum == 0.99,
        "model.bn_momentum",
        m.bn_momentum,
        f"0.99 (unset) with model.norm={m.norm.value}: layer and group normalisation keep no moving averages",
    )
    require(
        not per_example or not m.output_bn,
        "model.output_bn",
        m.output_bn,
        f"false with model.norm={m.norm.value} (the Keras blog's output layer is BN)",
    )
    require(
        not m.bn_renorm or m.norm is Normalizer.batch,
        "model.bn_renorm",
        m.bn_renorm,
        f"false with model.norm={m.norm.value} (model.bn_renorm=true is model.norm=batch_renorm's older spelling)",
    )
    require(m.norm_groups >= 1, "model.norm_groups", m.norm_groups, "an integer >= 1")
    require(m.recurrent_gamma > 0, "model.recurrent_gamma", m.recurrent_gamma, "> 0")
    require(p.examples >= 1, "probe.examples", p.examples, "an integer >= 1")
    require(
        run.checkpoint.every_seconds >= 0,
        "checkpoint.every_seconds",
        run.checkpoint.every_seconds,
        ">= 0 (0: a checkpoint at every evaluation)",
    )
    require(p.precise_batches >= 0, "probe.precise_batches", p.precise_batches, "an integer >= 0 (0: not measured)")
    require(
        not p.precise_batches or p.bn_modes or p.precise,
        "probe.precise_batches",
        p.precise_batches,
        "0 unless probe.bn_modes=true or probe.precise=true (it adds a BN mode)",
    )
    require(
        not p.precise or p.precise_batches > 0,
        "probe.precise",
        p.precise,
        "false unless probe.precise_batches > 0 (the batches it recomputes BN's statistics over)",
    )
    require(t.precise_bn >= 0, "trainer.precise_bn", t.precise_bn, "an integer >= 0 (0: BN's moving averages)")
    require(
        not t.precise_bn or not p.bn_modes,
        "trainer.precise_bn",
        t.precise_bn,
        "0 with probe.bn_modes=true (the probe compares BN's moving averages, which precise BN replaces; measure it with probe.precise_batches)",
    )
    require(p.batch >= 2, "probe.batch", p.batch, "an integer >= 2")
    require(
        bool(p.landscape_steps) and all(s > 0 for s in p.landscape_steps),
        "probe.landscape_steps",
        p.landscape_steps,
        "a non-empty list of positive multiples of lr",
    )
    require(all(0 <= q <= 100 for q in p.percentiles), "probe.percentiles", p.percentiles, "values in [0, 100]")
    require(0 <= run.seed <= MAX_SEED, "seed", run.seed, f"an integer in [0, {MAX_SEED}] (2**32 - 1)")
    check_study_name(run.study)
    return run

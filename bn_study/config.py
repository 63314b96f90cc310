"""The run's schema: typed dataclasses that Hydra composes the YAML groups onto.

A typo in a key or a value outside an Enum is refused by OmegaConf while the config is composed;
numeric ranges and cross-field rules are checked by `validate`. Both surface as `ConfigError`, whose
message is one line naming the key and what it allows.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf


class DataName(Enum):
    mnist = "mnist"
    mnist5k = "mnist5k"
    fashion_mnist = "fashion_mnist"
    cifar10 = "cifar10"
    digits = "digits"
    circles = "circles"


class BN(Enum):
    none = "none"
    before = "before"  # BN between the linear map and the nonlinearity, as in the paper
    after = "after"  # BN after the nonlinearity, the tutorials' alternative


class Normalizer(Enum):
    """The normalisation layer `model.bn` places in each block (Keras's own layers)."""

    batch = "batch"  # BatchNormalization: each feature over the batch; moving averages at inference
    batch_renorm = "batch_renorm"  # the same with Batch Renormalization's corrections (Ioffe 2017)
    layer = "layer"  # LayerNormalization: each example over its own features; the same in training and at inference
    group = "group"  # GroupNormalization: each example over each of model.norm_groups groups of its channels


class Activation(Enum):
    sigmoid = "sigmoid"
    tanh = "tanh"
    relu = "relu"
    elu = "elu"
    selu = "selu"
    gelu = "gelu"
    swish = "swish"
    softplus = "softplus"
    linear = "linear"


class Norm(Enum):
    """How inputs are normalised: not at all, per feature (each pixel its own mean and variance), or by one
    scalar mean and variance over all features."""

    none = "none"
    feature = "feature"
    scalar = "scalar"


class Output(Enum):
    softmax = "softmax"  # one logit per class, softmax cross-entropy
    sigmoid = "sigmoid"  # two classes only: one logit, binary cross-entropy (the circles tutorial's head)


class KernelInit(Enum):
    glorot_uniform = "glorot_uniform"
    glorot_normal = "glorot_normal"
    he_uniform = "he_uniform"
    he_normal = "he_normal"
    lecun_normal = "lecun_normal"


class OptimizerName(Enum):
    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"


@dataclass
class DataConfig:
    name: DataName = DataName.mnist
    # data=mnist with neither network nor cache falls back to mnist5k unless strict.
    strict: bool = False
    # MNIST-format files a user already has, for data=mnist or fashion_mnist without network: a folder of
    # the four IDX files (gzipped or not) or Keras's mnist.npz. null: the Keras cache, else a download
    # (fashion_mnist: else Debian's dataset-fashion-mnist files, before any download).
    path: Optional[str] = None
    # Standardise the inputs with the training split's statistics: (x - mean) / sqrt(var + epsilon), per
    # feature or by one scalar mean and variance; epsilon is BN's own, so input BN and this compare like with like.
    standardize: Norm = Norm.none
    standardize_epsilon: float = 1e-3
    # A fixed, stratified validation split carved from the training split and never trained on: every
    # selection (a learning rate, a target accuracy, a maximum over evaluations) is made on it.
    val_fraction: float = 0.1


# The registered model builders: model=<name> picks one (conf/model/<name>.yaml), model._target_ a user's own.
BUILDERS = {"mlp": "bn_study.models.mlp", "cnn": "bn_study.models.cnn", "lstm": "bn_study.models.lstm"}


@dataclass
class ModelConfig:
    # A registered builder's name (BUILDERS), or with _target_ a free label for a user's own.
    name: str = "mlp"
    # A user's builder, `pkg.module.function` (README "Your own model builder"); null: BUILDERS[name].
    _target_: Optional[str] = None
    # Convolutional blocks (filters each); 2x2 max-pooling sits between consecutive blocks.
    conv: List[int] = field(default_factory=list)
    kernel_size: int = 3
    # Dense hidden blocks (units each), after the conv stack is flattened.
    hidden: List[int] = field(default_factory=lambda: [100, 100, 100])
    # The dense blocks as a depth, for a depth sweep (model.depth=2,10,50): this many blocks of model.hidden[0]
    # units each. null: model.hidden as it is.
    depth: Optional[int] = None
    # Where each block's normalisation layer sits (the paper's BN unless model.norm says otherwise).
    bn: BN = BN.none
    norm: Normalizer = Normalizer.batch
    # Groups of channels per example for model.norm=group; must divide every block's width.
    norm_groups: int = 4
    activation: Activation = Activation.sigmoid
    dropout: float = 0.0
    # Std of a Gaussian weight init; null uses `kernel_init` instead.
    init_std: Optional[float] = None
    kernel_init: KernelInit = KernelInit.glorot_uniform
    # BatchNormalization on the raw inputs, before the first block: per feature (one mean and variance per
    # pixel) or scalar (one mean and variance for all of them).
    input_bn: Norm = Norm.none
    # The output layer as in the Keras blog's BN network: Dense(no bias) -> BN -> softmax (with model.bn != none).
    output_bn: bool = False
    output: Output = Output.softmax
    # The output layer's kernel init; null: the hidden layers' init.
    output_init: Optional[KernelInit] = None
    # Batch Renormalization (Ioffe 2017) in every BN layer: corrects batch statistics toward the moving ones.
    bn_renorm: bool = False
    # Dropout inside the block, just before its BN layer, instead of at the block's end.
    dropout_before_bn: bool = False
    # L2 weight regularisation on every kernel (added to the training loss).
    l2: float = 0.0
    # BN's moving averages: new = momentum * old + (1 - momentum) * batch statistic (Keras's default 0.99).
    bn_momentum: float = 0.99
    # model=lstm: read the image's pixels in one fixed random order (permuted sequential MNIST).
    permute: bool = False
    # model=lstm: where the gains of the normalisation inside the cell start (Cooijmans et al. 2016: 0.1).
    recurrent_gamma: float = 0.1

    def dense_units(self) -> list[int]:
        """Units of each dense hidden block, input to output (model.hidden, or model.depth of them)."""
        return [self.hidden[0]] * self.depth if self.depth else list(self.hidden)


@dataclass
class OptimizerConfig:
    name: OptimizerName = OptimizerName.sgd
    lr: float = 0.01
    momentum: float = 0.0
    # Staircase exponential decay: lr * decay_rate ** (step // decay_every); decay_every 0 keeps lr constant.
    decay_every: int = 0
    decay_rate: float = 1.0


@dataclass
class TrainerConfig:
    steps: int = 10_000
    batch_size: int = 60
    eval_every: int = 500
    # Test-set forward passes are split into batches of this size to bound memory.
    eval_batch_size: int = 2_000
    # Seconds between progress lines on long runs.
    progress_seconds: float = 10.0
    # Epoch-aligned batches as Keras's fit(): each epoch is one permutation, ending in a partial batch when
    # the training split is not a multiple of the batch size (a step then trains on fewer examples).
    partial_batch: bool = False
    # Compile the training loop with XLA. null: yes, except without a GPU for conv models, where XLA's CPU
    # convolutions measured 12x slower than TensorFlow's own (152 vs 12.9 ms per Keras-blog CNN step), and for
    # model=lstm, whose 28 unrolled steps XLA took 15-26 s to compile against 2-7 s, for a gain of at most 20% a step.
    xla: Optional[bool] = None
    # Precise BN (Wu & Johnson 2021) as a run option: before each evaluation (the last one too), BN's population
    # statistics, recomputed over this many training batches with the weights frozen, replace its moving
    # averages. 0: the moving averages, as Keras keeps them.
    precise_bn: int = 0


@dataclass
class ProbeConfig:
    """Measurements taken at evaluation time only. `enabled` is the paper's Figure 1 probe: percentiles of
    one sigmoid's input over a fixed test batch; the others are off unless switched on (bn_study.mechanisms)."""

    enabled: bool = True
    # Li et al. (2019): each BN layer's input variance in training mode (dropout on) over inference mode.
    variance_shift: bool = False
    # Which hidden block's nonlinearity (Python index: -1 is the last) and which unit of it.
    layer: int = -1
    unit: int = 0
    # Fixed test examples behind the percentile, variance-shift and activation probes.
    examples: int = 1_000
    percentiles: List[float] = field(default_factory=lambda: [15.0, 50.0, 85.0])
    # Per block: pre-activation mean, std, percentiles, and the saturated (sigmoid/tanh) or dead (relu) fraction.
    activations: bool = False
    # Per layer: gradient norm, and one real optimizer step's size over the weights' size.
    gradients: bool = False
    # Santurkar et al. (2018)'s internal covariate shift per layer: gradient change (l2, cosine) after earlier layers step.
    ics: bool = False
    # Along the gradient: loss range, gradient change, effective beta-smoothness (Santurkar et al. 2018, Fig. 4).
    landscape: bool = False
    # Test accuracy with BN on batch statistics vs on its moving averages.
    bn_modes: bool = False
    # With bn_modes: also test accuracy with BN's statistics recomputed over this many training batches (precise
    # BN; metric acc_precise) and with the moving averages' start taken out (acc_moving_debiased), each set for
    # that measure only. 0: neither.
    precise_batches: int = 0
    # Fixed training examples behind gradients, ics and landscape.
    batch: int = 256
    # Step sizes along the gradient for `landscape`, as multiples of the current learning rate.
    landscape_steps: List[float] = field(default_factory=lambda: [0.5, 1.0, 2.0, 4.0])


@dataclass
class LoggerConfig:
    """Trackers beside the CSV files (run.json, curves.csv), which are always written; each needs its extra."""

    # TensorBoard event files in <run folder>/tensorboard/ (bn-study[tensorboard] to view them).
    tensorboard: bool = False
    # An MLflow run per run: params, per-evaluation metrics, status (bn-study[mlflow]).
    mlflow: bool = False
    # null: a local SQLite store, <paths.results>/mlflow.db; else a tracking server (http://host:5000) or another SQLite file (sqlite:///...).
    mlflow_uri: Optional[str] = None


@dataclass
class CheckpointConfig:
    # At every evaluation, save the model and optimizer variables, the batch order and the step (the last one
    # kept), so a run found interrupted resumes there instead of from step 0.
    enabled: bool = True
    # Keep the checkpoint once the run has finished (default: removed; a finished run needs none).
    keep: bool = False


@dataclass
class PathsConfig:
    # The results root: results/<study>/ folders go here (relative to the working directory, or absolute).
    results: str = "results"


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    seed: int = 0
    # Names the results/<study>/ folder the runs land in.
    study: str = "adhoc"
    # A study's small version (tests, CI): experiment files pick their sizes with ${quick:small,full}.
    quick: bool = False
    # A free label that figures may group by (e.g. the paper's variant name, "BN-x5").
    tag: str = ""
    paths: PathsConfig = field(default_factory=PathsConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    # Keras callbacks by name, each {_target_: class, **kwargs} (conf/callbacks/, or a user's own): driven at
    # every evaluation, which is one "epoch" to them; one may stop the run (EarlyStopping).
    callbacks: Dict[str, Any] = field(default_factory=dict)


# Where a run is written and how it is watched, not what it computes: left out of its identity (run_id), so
# the same run logged elsewhere, or resumed from a checkpoint, is still the same run.
NOT_IDENTITY = ("paths", "logger", "checkpoint")


def register() -> None:
    ConfigStore.instance().store(name="run_schema", node=RunConfig)
    OmegaConf.register_new_resolver(
        "quick", lambda small, full, *, _root_: small if _root_.get("quick") else full, replace=True
    )
    # Equal examples seen across batch sizes: trainer.steps: ${floordiv:96000,${trainer.batch_size}}.
    OmegaConf.register_new_resolver("floordiv", lambda a, b: max(1, int(a) // int(b)), replace=True)


class ConfigError(ValueError):
    """Bad user input; the message is one line naming the key and what it allows."""


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
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
    _require(
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
            _require(
                not isinstance(v, float) or (math.isfinite(v) and abs(v) <= FLOAT32_MAX),
                key,
                value,
                f"a finite number, at most {FLOAT32_MAX:.4g} in magnitude (the model computes in float32)",
            )


def validate(cfg: DictConfig | RunConfig) -> RunConfig:
    """Return the typed config, or raise ConfigError on the first value out of range."""
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
    _require(
        m._target_ is not None or m.name in BUILDERS,
        "model.name",
        m.name,
        f"a registered builder ({', '.join(BUILDERS)}), or any label with model._target_=pkg.module.build",
    )
    _require(
        m._target_ is None or all(p.isidentifier() for p in m._target_.split(".")) and "." in m._target_,
        "model._target_",
        m._target_,
        "a dotted path to a builder function, pkg.module.build",
    )
    _require(
        m._target_ is not None or m.name != "mlp" or not m.conv,
        "model.conv",
        m.conv,
        "[] for model=mlp (model=cnn has conv blocks)",
    )
    _require(
        m._target_ is not None or m.name != "cnn" or bool(m.conv),
        "model.conv",
        m.conv,
        "a non-empty list of filters for model=cnn",
    )
    _require(bool(m.hidden) or bool(m.conv), "model.hidden", m.hidden, "non-empty when model.conv is empty")
    for key, sizes in (("model.hidden", m.hidden), ("model.conv", m.conv)):
        _require(all(s >= 1 for s in sizes), key, sizes, "a list of positive sizes")
    _require(
        m.depth is None or 1 <= m.depth <= MAX_DEPTH,
        "model.depth",
        m.depth,
        f"an integer in [1, {MAX_DEPTH}], or null for model.hidden as it is",
    )
    _require(
        m.depth is None or bool(m.hidden),
        "model.hidden",
        m.hidden,
        "one width at least when model.depth is set (model.depth blocks of model.hidden[0] units)",
    )
    blocks = len(m.conv) + len(m.dense_units())
    _require(
        m._target_ is not None or m.name == "lstm" or blocks < LAYER_SEEDS,
        "model.depth" if m.depth else "model.hidden",
        m.depth or m.hidden,
        f"at most {LAYER_SEEDS - 1 - len(m.conv)} dense blocks beside {len(m.conv)} conv blocks (a run initialises at most {LAYER_SEEDS} layers, "
        "one seed each, the output layer included)",
    )
    _require(m.kernel_size >= 1, "model.kernel_size", m.kernel_size, "an integer >= 1")
    _require(
        not m.bn_renorm or m.bn is not BN.none or m.input_bn is not Norm.none,
        "model.bn_renorm",
        m.bn_renorm,
        "false when there is no BN layer (model.bn=none)",
    )
    _require(
        not m.dropout_before_bn or m.bn is not BN.none,
        "model.dropout_before_bn",
        m.dropout_before_bn,
        "false when model.bn=none",
    )
    _require(0.0 <= m.dropout < 1.0, "model.dropout", m.dropout, "in [0, 1)")
    _require(m.init_std is None or m.init_std > 0, "model.init_std", m.init_std, "> 0, or null for model.kernel_init")
    _require(not m.output_bn or m.bn is not BN.none, "model.output_bn", m.output_bn, "false when model.bn=none")
    _require(0.0 <= run.data.val_fraction < 0.5, "data.val_fraction", run.data.val_fraction, "in [0, 0.5)")
    _require(
        run.data.path is None or run.data.name in (DataName.mnist, DataName.fashion_mnist),
        "data.path",
        run.data.path,
        "null unless data=mnist or data=fashion_mnist (it names MNIST-format files)",
    )
    _require(
        run.data.path is None or Path(run.data.path).exists(), "data.path", run.data.path, "an existing file or folder"
    )
    _require(run.data.standardize_epsilon >= 0, "data.standardize_epsilon", run.data.standardize_epsilon, ">= 0")
    _require(o.lr > 0, "optimizer.lr", o.lr, "> 0")
    _require(o.decay_every >= 0, "optimizer.decay_every", o.decay_every, "an integer >= 0 (0: constant lr)")
    _require(0 < o.decay_rate <= 1, "optimizer.decay_rate", o.decay_rate, "in (0, 1]")
    _require(m.l2 >= 0, "model.l2", m.l2, ">= 0")
    _require(0.0 <= o.momentum < 1.0, "optimizer.momentum", o.momentum, "in [0, 1)")
    _require(
        o.name is not OptimizerName.adam or o.momentum == 0,
        "optimizer.momentum",
        o.momentum,
        "0 with optimizer=adam (Adam has its own betas)",
    )
    _require(1 <= t.steps <= MAX_STEPS, "trainer.steps", t.steps, f"an integer in [1, {MAX_STEPS:,}]")
    _require(t.batch_size >= 1, "trainer.batch_size", t.batch_size, "an integer >= 1")
    _require(t.eval_every >= 1, "trainer.eval_every", t.eval_every, "an integer >= 1")
    _require(t.eval_batch_size >= 1, "trainer.eval_batch_size", t.eval_batch_size, "an integer >= 1")
    _require(0.0 <= m.bn_momentum < 1.0, "model.bn_momentum", m.bn_momentum, "in [0, 1)")
    per_example = m.bn is not BN.none and m.norm in (Normalizer.layer, Normalizer.group)
    _require(
        not per_example or m.bn_momentum == 0.99,
        "model.bn_momentum",
        m.bn_momentum,
        f"0.99 (unset) with model.norm={m.norm.value}: layer and group normalisation keep no moving averages",
    )
    _require(
        not per_example or not m.output_bn,
        "model.output_bn",
        m.output_bn,
        f"false with model.norm={m.norm.value} (the Keras blog's output layer is BN)",
    )
    _require(
        not m.bn_renorm or m.norm is Normalizer.batch,
        "model.bn_renorm",
        m.bn_renorm,
        f"false with model.norm={m.norm.value} (model.bn_renorm=true is model.norm=batch_renorm's older spelling)",
    )
    _require(m.norm_groups >= 1, "model.norm_groups", m.norm_groups, "an integer >= 1")
    _require(m.recurrent_gamma > 0, "model.recurrent_gamma", m.recurrent_gamma, "> 0")
    if m._target_ is None and m.name == "lstm":
        _validate_lstm(run)
    else:
        _require(
            not m.permute,
            "model.permute",
            m.permute,
            "false unless model=lstm (the other builders do not read the pixels in order)",
        )
    _require(p.examples >= 1, "probe.examples", p.examples, "an integer >= 1")
    _require(p.precise_batches >= 0, "probe.precise_batches", p.precise_batches, "an integer >= 0 (0: not measured)")
    _require(
        not p.precise_batches or p.bn_modes,
        "probe.precise_batches",
        p.precise_batches,
        "0 unless probe.bn_modes=true (it adds a BN mode)",
    )
    _require(t.precise_bn >= 0, "trainer.precise_bn", t.precise_bn, "an integer >= 0 (0: BN's moving averages)")
    _require(
        not t.precise_bn or not p.bn_modes,
        "trainer.precise_bn",
        t.precise_bn,
        "0 with probe.bn_modes=true (the probe compares BN's moving averages, which precise BN replaces; measure it with probe.precise_batches)",
    )
    _require(p.batch >= 2, "probe.batch", p.batch, "an integer >= 2")
    _require(
        bool(p.landscape_steps) and all(s > 0 for s in p.landscape_steps),
        "probe.landscape_steps",
        p.landscape_steps,
        "a non-empty list of positive multiples of lr",
    )
    _require(all(0 <= q <= 100 for q in p.percentiles), "probe.percentiles", p.percentiles, "values in [0, 100]")
    _require(0 <= run.seed <= MAX_SEED, "seed", run.seed, f"an integer in [0, {MAX_SEED}] (2**32 - 1)")
    check_study_name(run.study)
    return run


def _validate_lstm(run: RunConfig) -> None:
    """model=lstm: one LSTM layer with its normalisation inside the cell (bn_study.lstm); the feed-forward
    options and the probes, which read feed-forward blocks, are refused rather than ignored."""
    m, p = run.model, run.probe
    _require(not m.conv, "model.conv", m.conv, "[] for model=lstm")
    _require(
        m.depth is None and len(m.hidden) == 1,
        "model.hidden",
        m.hidden,
        "one width for model=lstm (the LSTM's units), with model.depth null",
    )
    _require(
        m.bn in (BN.none, BN.before),
        "model.bn",
        m.bn.value,
        "none or before for model=lstm (before: normalised inside the cell, as Cooijmans et al. 2016)",
    )
    _require(
        m.norm in (Normalizer.batch, Normalizer.layer), "model.norm", m.norm.value, "batch or layer for model=lstm"
    )
    _require(
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
        _require(
            value == default,
            key,
            getattr(value, "value", value),
            f"{getattr(default, 'value', default)} for model=lstm (a feed-forward block's option)",
        )
    _require(
        not run.trainer.precise_bn or (m.bn is BN.before and m.norm is Normalizer.batch),
        "trainer.precise_bn",
        run.trainer.precise_bn,
        "0 for model=lstm unless model.bn=before and model.norm=batch (a BN-LSTM: there are no batch statistics to recompute)",
    )
    for probe in ("enabled", "variance_shift", "activations", "gradients", "ics", "landscape", "bn_modes"):
        _require(
            not getattr(p, probe), f"probe.{probe}", True, "false for model=lstm (the probes read feed-forward blocks)"
        )


def to_dict(run: RunConfig) -> dict:
    """The resolved config as plain JSON-able values (Enums as their names)."""
    return OmegaConf.to_container(OmegaConf.structured(run), resolve=True, enum_to_str=True)


# Keys added after runs were made, with the value every earlier run had: left out of a run's identity while
# they hold it, so the runs made before a key existed keep their ids.
ADDED_LATER = {
    "model._target_": None,
    "model.depth": None,
    "model.norm": "batch",
    "model.norm_groups": 4,
    "callbacks": {},
    "trainer.precise_bn": 0,
    "probe.precise_batches": 0,
    "model.permute": False,
    "model.recurrent_gamma": 0.1,
}


def identity(run: RunConfig) -> dict:
    """What makes a run the run it is: the config without NOT_IDENTITY, nor ADDED_LATER keys at their old
    value (records.config_id hashes this)."""
    return identity_of(to_dict(run))


def identity_of(config: dict) -> dict:
    """`identity` of a config as a run recorded it (run.json's `config`), with the keys the schema had then:
    what its run_id was computed from."""
    c = {k: copy.deepcopy(v) for k, v in config.items() if k not in NOT_IDENTITY}
    for dotted, old in ADDED_LATER.items():
        *parents, key = dotted.split(".")
        node = c
        for parent in parents:
            node = node.get(parent, {})
        if key in node and node[key] == old:
            del node[key]
    return c


def with_defaults(config: dict) -> dict:
    """A run's recorded config with every key of today's schema: a knob added after the run was made has its
    default, which is what the code that made the run did."""
    defaults = to_dict(RunConfig())
    merged = {
        k: ({**v, **config[k]} if isinstance(v, dict) else config[k]) if k in config else v for k, v in defaults.items()
    }
    return {**config, **merged}

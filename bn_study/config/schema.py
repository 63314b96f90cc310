"""The run's schema: typed dataclasses that Hydra composes the YAML groups onto (a typo in a key, or a value
outside an Enum, is refused by OmegaConf while the config is composed), and the configs shipped beside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from bn_study import files

# The configs ship inside the package, so an installed bn-study finds them wherever it runs.
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


# The options are str-valued, so that a user's builder may compare them with plain strings (cfg.bn == "before") and
# hand them to Keras (layers.Activation(cfg.activation)).
class BN(StrEnum):
    none = "none"
    before = "before"  # BN between the linear map and the nonlinearity, as in the paper
    after = "after"  # BN after the nonlinearity, the tutorials' alternative


class Normalizer(StrEnum):
    """The normalisation layer `model.bn` places in each block (Keras's own layers)."""

    batch = "batch"  # BatchNormalization: each feature over the batch; moving averages at inference
    batch_renorm = "batch_renorm"  # the same with Batch Renormalization's corrections (Ioffe 2017)
    layer = "layer"  # LayerNormalization: each example over its own features; the same in training and at inference
    group = "group"  # GroupNormalization: each example over each of model.norm_groups groups of its channels


class Activation(StrEnum):
    sigmoid = "sigmoid"
    tanh = "tanh"
    relu = "relu"
    elu = "elu"
    selu = "selu"
    gelu = "gelu"
    swish = "swish"
    softplus = "softplus"
    linear = "linear"


class Norm(StrEnum):
    """How inputs are normalised: not at all, per feature (each pixel its own mean and variance), or by one
    scalar mean and variance over all features."""

    none = "none"
    feature = "feature"
    scalar = "scalar"


class Output(StrEnum):
    softmax = "softmax"  # one logit per class, softmax cross-entropy
    sigmoid = "sigmoid"  # two classes only: one logit, binary cross-entropy (the circles tutorial's head)


class KernelInit(StrEnum):
    glorot_uniform = "glorot_uniform"
    glorot_normal = "glorot_normal"
    he_uniform = "he_uniform"
    he_normal = "he_normal"
    lecun_normal = "lecun_normal"


class OptimizerName(StrEnum):
    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"


@dataclass
class DataConfig:
    # A registered dataset (bn_study.data.datasets.DATASETS; data=<name> picks conf/data/<name>.yaml).
    name: str = "mnist"
    # data=mnist with neither network nor cache falls back to mnist5k unless strict.
    strict: bool = False
    # MNIST-format files a user already has, for data=mnist or fashion_mnist without network: a folder of
    # the four IDX files (gzipped or not) or Keras's mnist.npz. null: the Keras cache, else a download
    # (fashion_mnist: else Debian's dataset-fashion-mnist files, before any download).
    path: Optional[str] = None
    # Standardise the inputs with the training split's statistics: (x - mean) / sqrt(var + epsilon), per
    # feature or by one scalar mean and variance; epsilon is BN's own, so input BN and this compare like with like.
    standardize: Norm = Norm.none
    # The epsilon of data.standardize (BN's own, 0.001).
    standardize_epsilon: float = 1e-3
    # A fixed, stratified validation split carved from the training split and never trained on: every
    # selection (a learning rate, a target accuracy, a maximum over evaluations) is made on it.
    val_fraction: float = 0.1
    # Train on a fixed, stratified subsample of this many images of the training split (after the validation split is
    # carved out: validation and test stay whole), the same images for every run; 0: the whole training split. Sets a
    # large dataset to a small one's size (Fashion-MNIST at mnist5k's 3,600), so that size and dataset come apart.
    train_size: int = 0


@dataclass
class ModelConfig:
    # A registered builder's name (bn_study.models.registry.BUILDERS: model=<name> picks conf/model/<name>.yaml), or
    # with _target_ a free label for a user's own (left at a registered name, it becomes the builder function's name).
    name: str = "mlp"
    # A user's builder, `pkg.module.function` (docs/extending.md, "Your own model builder"); null: the registered one.
    _target_: Optional[str] = None
    # Convolutional blocks (filters each); 2x2 max-pooling sits between consecutive blocks. An option only some
    # builders read (their Builder.options: conv and kernel_size model=cnn's, permute and recurrent_gamma model=lstm's)
    # sits in this one node all the same, where every run before it had it; the other builders refuse it off its default.
    conv: List[int] = field(default_factory=list)
    # The convolutions' kernel size (square).
    kernel_size: int = 3
    # Dense hidden blocks (units each), after the conv stack is flattened.
    hidden: List[int] = field(default_factory=lambda: [100, 100, 100])
    # The dense blocks as a depth, for a depth sweep (model.depth=2,10,50): this many blocks of model.hidden[0]
    # units each. null: model.hidden as it is.
    depth: Optional[int] = None
    # Where each block's normalisation layer sits (the paper's BN unless model.norm says otherwise).
    bn: BN = BN.none
    # Which normalisation layer model.bn places: BN, Batch Renormalization, layer norm or group norm.
    norm: Normalizer = Normalizer.batch
    # Groups of channels per example for model.norm=group; must divide every block's width.
    norm_groups: int = 4
    # Every hidden block's nonlinearity.
    activation: Activation = Activation.sigmoid
    # Dropout rate at each hidden block's end (before its BN layer with dropout_before_bn), in [0, 1).
    dropout: float = 0.0
    # Std of a Gaussian weight init; null uses `kernel_init` instead.
    init_std: Optional[float] = None
    # The Keras initializer of every kernel where init_std is null.
    kernel_init: KernelInit = KernelInit.glorot_uniform
    # BatchNormalization on the raw inputs, before the first block: per feature (one mean and variance per
    # pixel) or scalar (one mean and variance for all of them).
    input_bn: Norm = Norm.none
    # The output layer as in the Keras blog's BN network: Dense(no bias) -> BN -> softmax (with model.bn != none).
    output_bn: bool = False
    # The output head: softmax over one logit per class, or one sigmoid logit (two classes, binary cross-entropy).
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
    # Read the image's pixels in one fixed random order (permuted sequential MNIST).
    permute: bool = False
    # Where the gains of the normalisation inside the LSTM's cell start (Cooijmans et al. 2016: 0.1).
    recurrent_gamma: float = 0.1

    def dense_units(self) -> list[int]:
        """Units of each dense hidden block, input to output (model.hidden, or model.depth of them)."""
        return [self.hidden[0]] * self.depth if self.depth else list(self.hidden)


@dataclass
class OptimizerConfig:
    # Plain SGD, SGD with momentum (optimizer=momentum sets 0.9), or Adam.
    name: OptimizerName = OptimizerName.sgd
    # The learning rate (its start, with decay_every).
    lr: float = 0.01
    # SGD's momentum; 0: plain SGD.
    momentum: float = 0.0
    # Staircase exponential decay: lr * decay_rate ** (step // decay_every); decay_every 0 keeps lr constant.
    decay_every: int = 0
    # The factor of that decay.
    decay_rate: float = 1.0


@dataclass
class TrainerConfig:
    # The run's length in SGD steps, as the paper counts training.
    steps: int = 10_000
    # Training examples per step.
    batch_size: int = 60
    # Steps between evaluations (every split, every probe, a point of every curve); the last step is always evaluated.
    eval_every: int = 500
    # Test-set forward passes are split into batches of this size to bound memory.
    eval_batch_size: int = 2_000
    # Evaluations before the last measure the splits in `subset_splits` (and, with test, the probes that read test
    # examples: probe.bn_modes) on a fixed, stratified subset of this many examples of each: curves at a fraction of
    # the cost, while the last evaluation, the one final numbers and claims read, measures the whole splits.
    # 0: every evaluation on the whole splits (a claim that reads a split's curve before its end needs that; callbacks too).
    # Before the last evaluation, a network is found diverged by its training loss or by non-finite outputs on the
    # subset, and TensorBoard and MLflow get the subset's numbers, as the curves do.
    eval_subset: int = 0
    # The evaluated splits eval_subset cuts: test, val or both (a study that selects or times on validation keeps it whole).
    subset_splits: List[str] = field(default_factory=lambda: ["test", "val"])
    # Seconds between progress lines on long runs.
    progress_seconds: float = 10.0
    # Epoch-aligned batches as Keras's fit(): each epoch is one permutation, ending in a partial batch when
    # the training split is not a multiple of the batch size (a step then trains on fewer examples).
    partial_batch: bool = False
    # Compile the training loop with XLA. null: yes, or without a GPU what the model's builder says (Builder.xla_on_cpu:
    # XLA's CPU convolutions and the LSTM's unrolled steps measured slower there).
    xla: Optional[bool] = None
    # TensorFlow's op determinism, with TF32 off (float32 matrix products in full float32 on recent NVIDIA GPUs), so
    # that a run repeats value for value on one GPU, at some cost in speed. null: on with a GPU, off without one (CPU
    # kernels already repeat value for value on one host).
    deterministic: Optional[bool] = None
    # Precise BN (Wu & Johnson 2021) as a run option: before each evaluation (the last one too), BN's population
    # statistics, recomputed over this many training batches with the weights frozen, replace its moving
    # averages. 0: the moving averages, as Keras keeps them.
    precise_bn: int = 0

    def subset_of(self, split: str) -> int:
        """How many images of `split` an evaluation before the last measures (0: the whole split)."""
        return self.eval_subset if split in self.subset_splits else 0


@dataclass
class ProbeConfig:
    """Measurements taken at evaluation time only. `enabled` is the paper's Figure 1 probe: percentiles of
    one sigmoid's input over a fixed test batch; the others are off unless switched on (bn_study.probes.mechanisms)."""

    # The Figure 1 probe: percentiles of one unit's input to its nonlinearity, over probe.examples fixed test examples.
    enabled: bool = True
    # Li et al. (2019): each BN layer's input variance in training mode (dropout on) over inference mode.
    variance_shift: bool = False
    # Which hidden block's nonlinearity (Python index: -1 is the last) and which unit of it.
    layer: int = -1
    # The unit of probe.layer the Figure 1 probe reads.
    unit: int = 0
    # Fixed test examples behind the percentile, variance-shift and activation probes.
    examples: int = 1_000
    # The percentiles the Figure 1 probe reads (the paper's 15th, 50th and 85th).
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
    # that measure only; with precise, the Figure 1 probe on such statistics. 0: neither.
    precise_batches: int = 0
    # The Figure 1 probe (as `enabled` measures it) with BN's statistics recomputed over probe.precise_batches training batches at
    # each evaluation, for that measure only (splits probe_precise, probe_units_precise): is BN's input steadier once its
    # inference statistics do not lag?
    precise: bool = False
    # Fixed training examples behind gradients, ics and landscape.
    batch: int = 256
    # Step sizes along the gradient for `landscape`, as multiples of the current learning rate.
    landscape_steps: List[float] = field(default_factory=lambda: [0.5, 1.0, 2.0, 4.0])


@dataclass
class LoggerConfig:
    """Trackers beside the CSV files (run.json, curves.csv), which are always written; each needs its extra."""

    # TensorBoard event files in <run folder>/tensorboard/, every curve on the training-step axis (bn-study[tensorboard] to view them).
    tensorboard: bool = False
    # An MLflow run per run: params, every curve on the training-step axis, status (bn-study[mlflow]).
    mlflow: bool = False
    # null: a local SQLite store, <paths.results>/mlflow.db; else a tracking server (http://host:5000) or another SQLite file (sqlite:///...).
    mlflow_uri: Optional[str] = None


@dataclass
class CheckpointConfig:
    # At an evaluation, save the model and optimizer variables, the batch order and the step (the last two kept), so a
    # run found interrupted resumes there instead of from step 0.
    enabled: bool = True
    # Save once at least this many seconds have passed since the last save (or the run's start): a kill loses at most
    # about this much training, which the resume redoes value for value; saving at every evaluation cost up to 16% of a
    # short run. 0: at every evaluation.
    every_seconds: float = 60.0
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
    # Initial weights, batch order and dropout masks: the same seed gives two arms the same kernels and batches.
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
    # What a run returns to a sweeper that searches (Hydra's Optuna sweeper): a final validation number, never a test
    # one, so a search selects on validation as every study does.
    objective: str = "val_accuracy"


def register() -> None:
    ConfigStore.instance().store(name="run_schema", node=RunConfig)
    OmegaConf.register_new_resolver(
        "quick", lambda small, full, *, _root_: small if _root_.get("quick") else full, replace=True
    )
    # Run and sweep folders are named by their start in UTC (Hydra's own `now` is the host's local time).
    OmegaConf.register_new_resolver("utc_now", files.stamp, use_cache=True, replace=True)
    # Equal examples seen across batch sizes: trainer.steps: ${floordiv:96000,${trainer.batch_size}}.
    OmegaConf.register_new_resolver("floordiv", lambda a, b: max(1, int(a) // int(b)), replace=True)


def to_dict(run: RunConfig) -> dict:
    """The resolved config as plain JSON-able values (Enums as their names)."""
    return OmegaConf.to_container(OmegaConf.structured(run), resolve=True, enum_to_str=True)

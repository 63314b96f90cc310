"""BN's population statistics recomputed after training ("precise BN", Wu & Johnson 2021, "Rethinking 'Batch'
in BatchNorm", Section 3): the moving averages lag the weights they follow, so the statistics are measured
again, with the weights frozen, over many training batches.

The network runs in training mode, as it trained: every BN layer normalises with its own batch's statistics
(and dropout is on), and each BN layer's inputs are pooled over the batches: the population mean is the mean
of the batch means, the population variance the mean of the batch second moments minus the squared
population mean. Over equal batches that partition a dataset, this is that dataset's exact mean and
variance: E[var_B] + Var(mean_B), what Ioffe & Szegedy's inference step estimates with m/(m-1) E[var_B].
Keras's moving variance averages the batch variances themselves, E[var_B]: for independent examples
(B-1)/B of the population's, 3% less at batch 32, a difference that has nothing to do with lag.

Measuring leaves the model as it was (BN's statistics and dropout's seed state are put back); `applied` sets
the statistics for the duration of a `with` block (the probe), `assign` for good (the run option
trainer.precise_bn). A BN-LSTM (lstm.NormLSTM with batch norm) is measured the same way, per time step and per
normalised transform, under the keys '<cell>/x', '<cell>/h' and '<cell>/c'. `debiased` separates the moving averages' warm-up from their lag: Keras starts them at
mean 0, variance 1 and never corrects for that start, which after k steps still holds momentum^k of them.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import tensorflow as tf

from bn_study.models.blocks import batch_norm_layers
from bn_study.models.lstm_cell import TRANSFORMS, NormLSTM

Statistics = dict[str, tuple[np.ndarray, np.ndarray]]


class Recomputer:
    """Precise BN for one model over fixed training batches: `batches` disjoint batches of `batch_size` drawn
    once from `x` (a seeded permutation, so every run and evaluation measures over the same examples; `x`
    itself in order with shuffle=False). One compiled call measures every batch."""

    def __init__(
        self,
        model: keras.Model,
        x: np.ndarray,
        batch_size: int,
        batches: int,
        shuffle: bool = True,
        seed: int = 0x9B0BE,
    ):
        if batches * batch_size > len(x):
            raise ValueError(
                f"precise BN: {batches} batches of {batch_size} need {batches * batch_size} examples, got {len(x)}"
            )
        order = np.random.default_rng(seed).permutation(len(x)) if shuffle else np.arange(len(x))
        self._x = tf.constant(x[order[: batches * batch_size]].reshape(batches, batch_size, *x.shape[1:]))
        self._layers = batch_norm_layers(model)
        self._cells = batch_norm_cells(model)
        # Training mode updates BN's moving statistics (and renorm's) and draws dropout masks: all of that state
        # is put back after measuring, so a run measured this way trains exactly as one that is not.
        self._state = list(model.non_trainable_variables)
        if self._layers or self._cells:
            inputs = keras.Model(model.inputs, [layer.input for layer in [*self._layers, *self._cells]])
            self._fn = tf.function(lambda xb: self._moments(inputs, xb))

    def _moments(self, inputs: keras.Model, xb):
        """Per BN layer (then per BN-LSTM transform): the mean over batches of each batch's mean and second moment, in float64."""

        def one(batch):
            outs = inputs(batch, training=True)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            flat = [tf.cast(tf.reshape(o, (-1, o.shape[-1])), tf.float64) for o in outs[: len(self._layers)]]
            moments = [tf.stack([tf.reduce_mean(f, 0), tf.reduce_mean(tf.square(f), 0)]) for f in flat]
            for cell, o in zip(self._cells, outs[len(self._layers) :]):
                moments += [tf.cast(m, tf.float64) for m in cell.batch_moments(o)]
            return moments

        n = len(self._layers) + len(TRANSFORMS) * len(self._cells)
        per_batch = tf.map_fn(one, xb, fn_output_signature=[tf.float64] * n)
        return [tf.reduce_mean(m, 0) for m in per_batch]

    def statistics(self) -> Statistics:
        """{BN layer name: (population mean, population variance)}, the model left as it was."""
        if not (self._layers or self._cells):
            return {}
        saved = [v.numpy() for v in self._state]
        try:
            moments = [m.numpy() for m in self._fn(self._x)]
        finally:
            for v, value in zip(self._state, saved):
                v.assign(value)
        names = [layer.name for layer in self._layers] + [
            f"{cell.name}/{which}" for cell in self._cells for which in TRANSFORMS
        ]
        return {name: (first, np.maximum(second - first**2, 0.0)) for name, (first, second) in zip(names, moments)}


def batch_norm_cells(model: keras.Model) -> list[NormLSTM]:
    """The model's BN-LSTM layers (lstm.NormLSTM with batch norm), input to output."""
    return [layer for layer in model.layers if isinstance(layer, NormLSTM) and layer.norm == "batch"]


def recompute(model: keras.Model, x: np.ndarray, batch_size: int, batches: int) -> Statistics:
    """{BN layer name: (population mean, population variance)} over the first `batches` batches of `x`, in order."""
    return Recomputer(model, x, batch_size, batches, shuffle=False).statistics()


def debiased(model: keras.Model, steps: int) -> Statistics:
    """BN's moving averages after `steps` updates with their start (mean 0, variance 1) taken out, as Adam
    corrects its moments: (average - momentum^k x start) / (1 - momentum^k). {} before the first step."""
    if steps < 1:
        return {}
    out = {}
    for layer in batch_norm_layers(model):
        left = layer.momentum**steps
        mean, var = layer.moving_mean.numpy().astype(np.float64), layer.moving_variance.numpy().astype(np.float64)
        out[layer.name] = (mean / (1 - left), np.maximum((var - left) / (1 - left), 0.0))
    return out


def assign(model: keras.Model, stats: Statistics) -> None:
    """Set the moving statistics BN uses at inference to `stats`, for good (precise BN as a run option)."""
    for layer in batch_norm_layers(model):
        if layer.name in stats:
            mean, var = stats[layer.name]
            layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
            layer.moving_variance.assign(var.astype(layer.moving_variance.dtype))
    for cell in batch_norm_cells(model):
        for which in TRANSFORMS:
            if f"{cell.name}/{which}" in stats:
                cell.set_population(which, *stats[f"{cell.name}/{which}"])


@contextlib.contextmanager
def applied(model: keras.Model, stats: Statistics):
    """The model with its BN layers' moving statistics set to `stats` inside the block, restored after it."""
    layers = [layer for layer in batch_norm_layers(model) if layer.name in stats]
    saved = {layer.name: (layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in layers}
    try:
        assign(model, stats)
        yield model
    finally:
        assign(model, saved)

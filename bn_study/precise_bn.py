"""BN's population statistics recomputed after training ("precise BN", Wu & Johnson 2021, "Rethinking 'Batch'
in BatchNorm", Section 3): the moving averages lag the weights they follow, so the statistics are measured
again, with the weights frozen, over many training batches.

The network runs in training mode, as it trained: every BN layer normalises with its own batch's statistics
(and dropout is on), and each BN layer's inputs are pooled over the batches: the population mean is the mean
of the batch means, the population variance the mean of the batch second moments minus the squared
population mean. Over equal batches that partition a dataset, this is that dataset's exact mean and
(biased) variance, the estimate Keras's BN itself keeps. Nothing in the model changes unless `applied` is
used, which sets the statistics for the duration of a `with` block only.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import tensorflow as tf


def bn_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def recompute(model: keras.Model, x: np.ndarray, batch_size: int, batches: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{BN layer name: (population mean, population variance)} over the first `batches` batches of `x`."""
    layers = bn_layers(model)
    if not layers:
        return {}
    inputs = keras.Model(model.inputs, [layer.input for layer in layers])
    moving = [v for layer in layers for v in (layer.moving_mean, layer.moving_variance)]
    saved = [v.numpy() for v in moving]  # training mode updates the moving averages: they are put back
    sums = [None] * len(layers)
    try:
        for b in range(batches):
            batch = x[b * batch_size : (b + 1) * batch_size]
            if len(batch) < batch_size:
                raise ValueError(f"precise BN: {batches} batches of {batch_size} need {batches * batch_size} examples, got {len(x)}")
            outs = inputs(tf.constant(batch), training=True)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            for i, out in enumerate(outs):
                flat = tf.reshape(out, (-1, out.shape[-1]))
                moments = np.stack([tf.reduce_mean(flat, 0).numpy(), tf.reduce_mean(tf.square(flat), 0).numpy()]).astype(np.float64)
                sums[i] = moments if sums[i] is None else sums[i] + moments
    finally:
        for v, value in zip(moving, saved):
            v.assign(value)
    out = {}
    for layer, (first, second) in zip(layers, sums):
        mean, square = first / batches, second / batches
        out[layer.name] = (mean, np.maximum(square - mean**2, 0.0))
    return out


@contextlib.contextmanager
def applied(model: keras.Model, stats: dict[str, tuple[np.ndarray, np.ndarray]]):
    """The model with its BN layers' moving statistics set to `stats` inside the block, restored after it."""
    layers = [layer for layer in bn_layers(model) if layer.name in stats]
    saved = [(layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in layers]
    try:
        for layer in layers:
            mean, var = stats[layer.name]
            layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
            layer.moving_variance.assign(var.astype(layer.moving_variance.dtype))
        yield model
    finally:
        for layer, (mean, var) in zip(layers, saved):
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(var)

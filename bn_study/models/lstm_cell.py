"""An LSTM layer with batch or layer normalisation inside its cell, unrolled over a fixed number of steps.

Without normalisation it is Keras's LSTM (same gates, same order i, f, g, o, same initialisers: Glorot kernel,
orthogonal recurrent kernel, forget-gate bias 1), which a test checks weight for weight. With `norm`, the cell
is Cooijmans et al. (2016)'s BN-LSTM, or the same with layer norm (Ba et al. 2016):

    (i, f, g, o) = N_x(W_x x_t; gamma_x) + N_h(W_h h_{t-1}; gamma_h) + b
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(N_c(c_t; gamma_c, beta_c))

The input-to-hidden and hidden-to-hidden transforms are normalised separately (so each keeps its own scale
gamma) with no shift of their own (b is the shift), and the cell state before the output. `batch`: each unit
over the batch, with separate statistics for each time step, in training from the batch and at inference from
per-time-step moving averages, debiased as Adam's moments are: an evaluation after n updates reads the
momentum-weighted average of the n batches' statistics, not a blend with a start value. Keras's start, a
variance of 1, would swamp the recurrent transform's variances (1e-3 and less early in training) for about a
thousand updates at momentum 0.99 (bn_inference measures what such a start costs). `layer`: each example over the transform's units, the same in training
and at inference. The gains start at `gamma` (Cooijmans et al.: 0.1, because gamma = 1 saturates tanh and makes
the gradients vanish) and are shared over time.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

NORMS = (None, "batch", "layer")
# The normalised transforms: input-to-hidden, hidden-to-hidden, cell state.
TRANSFORMS = ("x", "h", "c")


class NormLSTM(keras.layers.Layer):
    """(batch, steps, features) -> the last hidden state h_T, (batch, units)."""

    def __init__(
        self,
        units: int,
        norm: str | None = None,
        gamma: float = 0.1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if norm not in NORMS:
            raise ValueError(f"NormLSTM norm={norm!r}: one of {NORMS}")
        self.units, self.norm, self.gamma, self.momentum, self.epsilon = units, norm, gamma, momentum, epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)

    def build(self, input_shape):
        steps, features = input_shape[1], input_shape[2]
        u = self.units
        self.kernel = self.add_weight(shape=(features, 4 * u), initializer=self.kernel_initializer, name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(u, 4 * u), initializer=self.recurrent_initializer, name="recurrent_kernel"
        )
        self.bias = self.add_weight(shape=(4 * u,), initializer=_forget_bias_one(u), name="bias")
        if self.norm is None:
            return
        gain = keras.initializers.Constant(self.gamma)
        self.gamma_x = self.add_weight(shape=(4 * u,), initializer=gain, name="gamma_x")
        self.gamma_h = self.add_weight(shape=(4 * u,), initializer=gain, name="gamma_h")
        self.gamma_c = self.add_weight(shape=(u,), initializer=gain, name="gamma_c")
        self.beta_c = self.add_weight(shape=(u,), initializer="zeros", name="beta_c")
        if self.norm == "batch":
            self.moving = {
                f"{which}_{stat}": self.add_weight(
                    shape=(steps, width), initializer="zeros", trainable=False, name=f"moving_{stat}_{which}"
                )
                for which, width in (("x", 4 * u), ("h", 4 * u), ("c", u))
                for stat in ("mean", "variance")
            }
            self.updates = self.add_weight(shape=(), initializer="zeros", trainable=False, name="moving_updates")

    def _normalize(self, z, which: str, t, gain, training: bool, batch_stats: list):
        """z normalised (no shift), times `gain`; with batch norm in training, the batch's statistics are appended
        to `batch_stats` for the moving averages. `t`: the time step, or None for z over all steps (batch, steps, width)."""
        if self.norm == "layer":
            mean, var = ops.moments(z, axes=[-1], keepdims=True)
        elif training:
            mean, var = ops.moments(z, axes=[0])
            batch_stats.append((which, t, mean, var))
        else:
            mean, var = self.population(which)
            if t is not None:
                mean, var = mean[t], var[t]
        return (z - mean) * ops.rsqrt(var + self.epsilon) * gain

    def call(self, x, training=False):
        h, stats = self._run(x, training)
        if stats:
            self._update_moving(stats)
        return h

    def batch_moments(self, x) -> list:
        """Per normalised transform (x, h, c): this batch's per-time-step mean and second moment, stacked (2, steps,
        width), in training mode and without touching the moving averages (precise BN pools them over batches)."""
        _, stats = self._run(x, training=True)
        return [ops.stack([mean, var + ops.square(mean)]) for mean, var in _per_step(stats).values()]

    def set_population(self, which: str, mean, var) -> None:
        """Make inference read (mean, var) for transform `which` (precise BN): the moving average is set so that,
        over its current weight 1 - momentum^n, it gives them; training's updates carry on from there."""
        n = ops.maximum(self.updates, 1.0)
        self.updates.assign(n)
        seen = 1.0 - ops.power(ops.cast(self.momentum, n.dtype), n)
        for stat, value in (("mean", mean), ("variance", var)):
            moving = self.moving[f"{which}_{stat}"]
            moving.assign(ops.cast(value, moving.dtype) * ops.cast(seen, moving.dtype))

    def _run(self, x, training: bool):
        u = self.units
        stats: list = []
        xw = ops.matmul(x, self.kernel)
        if self.norm:
            xw = self._normalize(xw, "x", None, self.gamma_x, training, stats)
        h = c = ops.zeros((ops.shape(x)[0], u), dtype=x.dtype)
        # One unstack and one split per step rather than slices: a slice's gradient pads a full-size zero tensor.
        for t, x_t in enumerate(ops.unstack(xw + self.bias, axis=1)):
            hw = ops.matmul(h, self.recurrent_kernel)
            if self.norm:
                hw = self._normalize(hw, "h", t, self.gamma_h, training, stats)
            i, f, g, o = ops.split(x_t + hw, 4, axis=-1)
            c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
            out = self._normalize(c, "c", t, self.gamma_c, training, stats) + self.beta_c if self.norm else c
            h = ops.sigmoid(o) * ops.tanh(out)
        return h, stats

    def population(self, which: str):
        """The per-time-step (mean, variance) inference uses for transform `which`: the averages, which start at 0,
        over the weight the batches have in them, 1 - momentum^n after n updates; mean 0 and variance 1 before any."""
        n = self.updates
        seen = ops.maximum(1.0 - ops.power(ops.cast(self.momentum, n.dtype), n), 1e-12)
        mean, var = self.moving[f"{which}_mean"], self.moving[f"{which}_variance"]
        return ops.where(n > 0, mean / seen, 0.0), ops.where(n > 0, var / seen, 1.0)

    def _update_moving(self, stats: list) -> None:
        """Each per-time-step moving average once: new = momentum * old + (1 - momentum) * the batch's statistic."""
        self.updates.assign(self.updates + 1.0)
        for which, batch in _per_step(stats).items():
            for stat, value in zip(("mean", "variance"), batch):
                moving = self.moving[f"{which}_{stat}"]
                moving.assign(self.momentum * moving + (1.0 - self.momentum) * ops.cast(value, moving.dtype))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)


def _per_step(stats: list) -> dict:
    """The batch statistics a training pass collected, as {transform: (mean, variance)}, each (steps, width)."""
    out = {}
    for which in TRANSFORMS:
        found = sorted((s for s in stats if s[0] == which), key=lambda s: -1 if s[1] is None else s[1])
        if found[0][1] is None:  # the input transform, normalised over all steps at once
            out[which] = found[0][2], found[0][3]
        else:
            out[which] = ops.stack([s[2] for s in found]), ops.stack([s[3] for s in found])
    return out


def _forget_bias_one(units: int):
    """Keras's unit_forget_bias: the forget gate's bias starts at 1, the others at 0."""

    def init(shape, dtype=None):
        return ops.concatenate([ops.zeros((units,), dtype), ops.ones((units,), dtype), ops.zeros((2 * units,), dtype)])

    return init


class FixedPermutation(keras.layers.Layer):
    """(batch, n) -> the same n features in one fixed random order (permuted sequential MNIST): the order is
    drawn from `seed` alone, so every run that names the same seed reads the pixels in the same order."""

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, input_shape):
        self.order = np.random.default_rng(self.seed).permutation(input_shape[-1]).astype("int32")

    def call(self, x):
        return ops.take(x, self.order, axis=1)

    def compute_output_shape(self, input_shape):
        return input_shape

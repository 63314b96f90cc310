"""What BN changes inside the network, measured at evaluation time on fixed batches (never on the
per-step path, and never changing the training: every measure is stateless or restores what it touched).

- activations: per block, the pre-activation (the nonlinearity's input) over fixed test examples in
  inference mode: mean, std, 15/50/85th percentiles, and the fraction saturated (sigmoid outside
  [0.05, 0.95], tanh beyond +-0.95) or, for relu, the fraction of units dead on every example.
- gradients: per layer (each kernel), the norm of the training-loss gradient on a fixed training batch,
  and the size of one real optimizer step over the weights' size.
- ics: Santurkar et al. (2018)'s internal covariate shift of layer i: the l2 distance and cosine between
  its gradient G and its gradient G' after every earlier layer took a gradient step (lr x gradient).
- landscape: along the gradient g, at step sizes eta (multiples of the current lr): the loss range, the
  gradient change ||grad(w - eta g) - grad(w)|| ("gradient predictiveness") and the largest gradient change
  per unit distance, max ||grad(w - eta g) - grad(w)|| / ||eta g|| ("effective beta-smoothness").
- bn_modes: test accuracy with BN using each test batch's own statistics (as in training) against BN using
  its moving averages (as at inference), batches of the training batch size. (With model.bn_renorm the
  batch-statistics side is plain BN: renorm's r/d corrections are left out.) With probe.precise_batches, also
  with the population statistics recomputed over that many training batches (precise BN, `precise_bn`:
  acc_precise) and with the moving averages' start taken out (acc_moving_debiased), each set for that
  measure only.

Gradients use the training objective (BN with batch statistics, dropout on) through `stateless_call`,
so BN's moving averages and the dropout seeds are left untouched.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from bn_study.config import ProbeConfig, RunConfig
from bn_study.data import datasets
from bn_study.models.blocks import nonlinearities
from bn_study.probes import precise_bn

# A sigmoid unit is saturated when its output is outside [0.05, 0.95], a tanh unit beyond +-0.95: that is,
# when its input's magnitude exceeds logit(0.95) or atanh(0.95).
SATURATED = {"sigmoid": float(np.log(0.95 / 0.05)), "tanh": float(np.arctanh(0.95))}
PERCENTILES = (15, 50, 85)


def landscape(loss_and_grad: Callable, w: Sequence[tf.Tensor], g: Sequence[tf.Tensor], steps: Sequence[float]) -> dict:
    """Loss and gradient along -g from w, at each step size in `steps` (absolute, not multiples of lr)."""
    g_norm = _norm(g)
    losses, changes, betas = [], [], []
    for eta in steps:
        loss, g_eta = loss_and_grad([wi - eta * gi for wi, gi in zip(w, g)])
        change = _norm([a - b for a, b in zip(g_eta, g)])
        losses.append(loss)
        changes.append(change)
        betas.append(change / (eta * g_norm))
    losses, changes = tf.stack(losses), tf.stack(changes)
    return {
        "loss_min": tf.reduce_min(losses),
        "loss_max": tf.reduce_max(losses),
        "loss_range": tf.reduce_max(losses) - tf.reduce_min(losses),
        "grad_change_min": tf.reduce_min(changes),
        "grad_change_max": tf.reduce_max(changes),
        "beta_smoothness": tf.reduce_max(tf.stack(betas)),
    }


def covariate_shift(
    grad: Callable, w: Sequence[tf.Tensor], g: Sequence[tf.Tensor], group: Sequence[int], layer: int, lr
) -> dict:
    """Santurkar et al.'s ICS of the parameter `layer` (an index into w): its gradient before and after
    every parameter of an earlier group (`group[j] < group[layer]`) stepped by -lr x its gradient."""
    shifted = [wi - lr * gi if group[j] < group[layer] else wi for j, (wi, gi) in enumerate(zip(w, g))]
    before, after = g[layer], grad(shifted)[layer]
    cos = tf.reduce_sum(before * after) / (tf.norm(before) * tf.norm(after))
    return {"l2": tf.norm(after - before), "cos": cos}


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """As many whole batches of `batch_size` as `x` holds, [batches, batch_size, ...]: BN on batch statistics needs
    equal batches, so the remainder is left out."""
    usable = len(x) // batch_size * batch_size
    return tf.constant(x[:usable].reshape(-1, batch_size, *x.shape[1:])), tf.constant(
        y[:usable].reshape(-1, batch_size)
    )


def _norm(tensors) -> tf.Tensor:
    return tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(t)) for t in tensors]))


def _block_of(path: str) -> str:
    """`dense2_linear/kernel` -> `dense2`; `logits/bias` -> `logits`; `input_bn/gamma` -> `input`."""
    return path.split("/")[0].split("_")[0]


class Mechanisms:
    """The measures above that `cfg` switches on, all in one compiled function per evaluation."""

    def __init__(
        self, trainer, cfg: ProbeConfig, x_train, y_train, x_test, y_test, batch_size: int, eval_subset: int = 0
    ):
        self.cfg, self.trainer, self.model = cfg, trainer, trainer.model
        model = self.model
        rng = np.random.default_rng(0x9B0BE)  # the same fixed batch for every seed and arm
        pick = rng.choice(len(x_train), size=min(cfg.batch, len(x_train)), replace=False)
        self._x, self._y = tf.constant(x_train[pick]), tf.constant(y_train[pick])
        self._update_rows = np.resize(pick, (1, batch_size)).astype(
            np.int32
        )  # one real optimizer step on these examples
        self._x_probe = tf.constant(x_test[: cfg.examples])
        # bn_modes's test batches: the whole test split, and trainer.eval_subset's subset of it where it has one.
        self._tests = {True: _batches(x_test, y_test, batch_size)}
        rows = datasets.stratified_subset(y_test, eval_subset)
        self._tests[False] = self._tests[True] if rows is None else _batches(x_test[rows], y_test[rows], batch_size)
        self._acts = nonlinearities(model)
        self._has_bn = any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers[1:])
        self._kernels = [i for i, v in enumerate(model.trainable_variables) if v.path.endswith("kernel")]
        order = {name: k for k, name in enumerate(dict.fromkeys(_block_of(v.path) for v in model.trainable_variables))}
        self._group = [order[_block_of(v.path)] for v in model.trainable_variables]
        self._names = [_block_of(model.trainable_variables[i].path) for i in self._kernels]
        self._head = trainer.head
        # Everything one optimizer step can change, copied and restored on the device in one call each.
        variables = [*model.variables, *trainer.optimizer.variables]
        self._kernel_vars = [model.trainable_variables[i] for i in self._kernels]
        self._kernel_slots = [next(j for j, v in enumerate(variables) if v is k) for k in self._kernel_vars]
        self._snapshot = tf.function(lambda: [tf.identity(v) for v in variables])
        self._restore = tf.function(lambda values: [v.assign(x) for v, x in zip(variables, values)])
        self._preacts = keras.Model(model.inputs, [layer.input for layer in self._acts]) if self._acts else None
        self._fn = tf.function(self._measure)
        if cfg.bn_modes and cfg.precise_batches:
            self._precise = precise_bn.Recomputer(model, x_train, batch_size, cfg.precise_batches)
            self._acc_moving = tf.function(lambda x, y: self._accuracy(x, y, batch_stats=False))

    @classmethod
    def start(cls, trainer, cfg: RunConfig, data) -> "Mechanisms":
        t = cfg.trainer
        return cls(
            trainer, cfg.probe, data.x_train, data.y_train, data.x_test, data.y_test, t.batch_size, t.subset_of("test")
        )

    # -- the training objective, stateless -------------------------------------------------------------
    def _loss_and_grad(self, w):
        with tf.GradientTape() as tape:
            tape.watch(w)
            non_trainable = [v.value for v in self.model.non_trainable_variables]
            logits, _ = self.model.stateless_call(w, non_trainable, self._x, training=True)
            loss = self._head.loss(self._y, logits)
        return loss, tape.gradient(loss, w)

    def _measure(self, lr, x_test, y_test):
        """{split: {metric: tensor}}, and under `_preacts` the blocks' pre-activations (summarised outside); bn_modes over
        the test batches `x_test`, `y_test`."""
        w = [v.value for v in self.model.trainable_variables]
        out = {}
        if self.cfg.gradients or self.cfg.ics or self.cfg.landscape:
            loss, g = self._loss_and_grad(w)
        if self.cfg.gradients:
            out["grad"] = {f"{name}.grad_norm": tf.norm(g[i]) for i, name in zip(self._kernels, self._names)}
        if self.cfg.ics:
            out["ics"] = {}
            for i, name in zip(self._kernels[1:], self._names[1:]):
                shift = covariate_shift(lambda v: self._loss_and_grad(v)[1], w, g, self._group, i, lr)
                out["ics"].update({f"{name}.ics_{k}": v for k, v in shift.items()})
        if self.cfg.landscape:
            out["landscape"] = {
                **landscape(self._loss_and_grad, w, g, [lr * s for s in self.cfg.landscape_steps]),
                "loss": loss,
            }
        if self.cfg.bn_modes:
            moving = self._accuracy(x_test, y_test, batch_stats=False)
            # Without a BN layer the two modes are one computation: measured once (half a CNN arm's probe time).
            batch_stats = self._accuracy(x_test, y_test, batch_stats=True) if self._has_bn else moving
            out["bn_modes"] = {"acc_batch_stats": batch_stats, "acc_moving_averages": moving}
        if self.cfg.activations and self._acts:
            values = self._preacts(self._x_probe, training=False)
            out["_preacts"] = values if isinstance(values, (list, tuple)) else [values]
        return out

    def _accuracy(self, x_test, y_test, batch_stats: bool):
        def one(batch):
            x, y = batch
            logits = self._forward(x, batch_stats)
            return tf.reduce_sum(self._head.hits(y, logits))

        hits = tf.map_fn(one, (x_test, y_test), fn_output_signature=tf.float32)
        return tf.reduce_sum(hits) / tf.cast(tf.size(y_test), tf.float32)

    def _forward(self, x, batch_stats: bool):
        """The model's layer chain in inference mode, except that BN layers normalise with the batch's own
        statistics when `batch_stats` (what training does, without updating the moving averages)."""
        for layer in self.model.layers[1:]:
            if batch_stats and isinstance(layer, keras.layers.BatchNormalization):
                mean, var = tf.nn.moments(x, axes=list(range(len(x.shape) - 1)))
                x = layer.gamma * (x - mean) / tf.sqrt(var + layer.epsilon) + layer.beta
            else:
                x = layer(x, training=False)
        return x

    # -- one evaluation ---------------------------------------------------------------------------------
    def measure(self, whole: bool = True) -> dict[str, dict[str, float]]:
        """{split: {metric: value}}: splits `act`, `grad`, `ics`, `landscape`, `bn_modes` as switched on; bn_modes over
        the whole test split, or, not `whole`, over trainer.eval_subset's subset of it."""
        lr = tf.constant(float(keras.ops.convert_to_numpy(self.trainer.optimizer.learning_rate)), tf.float32)
        tests = self._tests[whole]
        raw = self._fn(lr, *tests)
        out = {
            split: {key: float(v) for key, v in values.items()} for split, values in raw.items() if split != "_preacts"
        }
        if "_preacts" in raw:
            out["act"] = self._activation_stats([v.numpy() for v in raw["_preacts"]])
        if self.cfg.gradients:
            out["grad"].update(self._update_ratios())
        if self.cfg.bn_modes and self.cfg.precise_batches:
            with precise_bn.applied(self.model, self._precise.statistics()):
                out["bn_modes"]["acc_precise"] = float(self._acc_moving(*tests))
            debiased = precise_bn.debiased(self.model, int(self.trainer.optimizer.iterations.numpy()))
            with precise_bn.applied(self.model, debiased):
                out["bn_modes"]["acc_moving_debiased"] = float(self._acc_moving(*tests)) if debiased else math.nan
        return out

    def _activation_stats(self, preacts: list[np.ndarray]) -> dict[str, float]:
        out = {}
        for layer, z in zip(self._acts, preacts):
            name, act = _block_of(layer.name), layer.get_config()["activation"]
            flat = z.reshape(-1, z.shape[-1])
            out[f"{name}.mean"], out[f"{name}.std"] = float(flat.mean()), float(flat.std())
            for q, v in zip(PERCENTILES, np.percentile(flat, PERCENTILES)):
                out[f"{name}.p{q}"] = float(v)
            if act in SATURATED:
                out[f"{name}.saturated"] = float((np.abs(flat) > SATURATED[act]).mean())
            elif act == "relu":
                out[f"{name}.dead"] = float((flat <= 0).all(axis=0).mean())
        return out

    def _update_ratios(self) -> dict[str, float]:
        """||step|| / ||w|| per kernel for one real optimizer step on a fixed batch; every variable is
        restored afterwards, so the run goes on exactly as without this probe."""
        saved = self._snapshot()
        self.trainer.train(self._update_rows)
        after = [k.numpy() for k in self._kernel_vars]
        self._restore(saved)
        before = [saved[i].numpy() for i in self._kernel_slots]
        with np.errstate(divide="ignore", invalid="ignore"):  # an all-zero kernel: inf (or NaN if it did not move)
            return {
                f"{name}.update_ratio": float(np.linalg.norm(a - b) / np.linalg.norm(b))
                for name, b, a in zip(self._names, before, after)
            }

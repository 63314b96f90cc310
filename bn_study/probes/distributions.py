"""Measurements of a network's insides, taken at evaluation time only.

`InputPercentiles` is the paper's Figure 1(b, c) probe: the distribution, over a fixed batch of test
examples, of the input to one nonlinearity unit (split `probe`), and the same percentiles for every unit
of that layer (split `probe_units`, metrics `u{unit}.p{q}`), so that a claim about the distribution's
stability can be judged over all units, not one. With BN before the activation that input is the BN
output; it is read with the moving averages (inference mode), so probing never changes BN's state. With
probe.precise, the same percentiles once more with BN's statistics recomputed over fixed training batches
(`precise_bn`, set for that measure only): splits `probe_precise` and `probe_units_precise`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from bn_study.config import ProbeConfig, RunConfig
from bn_study.models.blocks import batch_norm_layers, nonlinearities
from bn_study.probes import precise_bn


class VarianceShift:
    """Li et al. (2019): for each BN layer, the variance it normalises by at test time (its moving variance,
    an average of training-batch variances, dropout on) over the variance its input really has at test
    time (inference mode, dropout off), both averaged over units.

    1 means BN's test-time scaling matches its input; dropout feeding BN pushes it above 1.
    """

    def __init__(self, model: keras.Model, x_fixed: np.ndarray):
        self._bns = batch_norm_layers(model)
        self._x = tf.constant(x_fixed)
        if self._bns:
            sub = keras.Model(model.inputs, [layer.input for layer in self._bns])
            self._fn = tf.function(lambda x: sub(x, training=False))

    @classmethod
    def start(cls, trainer, cfg: RunConfig, data) -> "VarianceShift":
        return cls(trainer.model, data.x_test[: cfg.probe.examples])

    def measure(self, whole: bool = True) -> dict[str, dict[str, float]]:
        """Over its fixed examples, the same whether the evaluation is `whole` or on trainer.eval_subset's subset."""
        return {"probe": self.metrics()} if self._bns else {}

    def metrics(self) -> dict:
        if not self._bns:
            return {}
        inputs = self._fn(self._x)
        inputs = (
            inputs if isinstance(inputs, (list, tuple)) else [inputs]
        )  # a one-output Keras model returns a bare tensor
        out = {}
        for layer, t in zip(self._bns, inputs):
            test = t.numpy().reshape(-1, t.shape[-1]).var(axis=0).mean()
            out[f"var_shift_{layer.name}"] = float(layer.moving_variance.numpy().mean() / test)
        return out


class InputPercentiles:
    def __init__(self, model: keras.Model, cfg: ProbeConfig, x_fixed: np.ndarray, precise=None):
        self.layer = nonlinearities(model)[cfg.layer]  # `probes.registry.check` made sure the layer and unit exist
        self._unit = cfg.unit
        self._q = list(cfg.percentiles)
        self._x = tf.constant(x_fixed[: cfg.examples])
        self._model, self._precise, self._plain = model, precise, cfg.enabled
        sub = keras.Model(model.inputs, self.layer.input)
        self._fn = tf.function(lambda x: sub(x, training=False))

    @classmethod
    def start(cls, trainer, cfg: RunConfig, data) -> "InputPercentiles":
        precise = (
            precise_bn.Recomputer(trainer.model, data.x_train, cfg.trainer.batch_size, cfg.probe.precise_batches)
            if cfg.probe.precise and batch_norm_layers(trainer.model)
            else None
        )
        return cls(trainer.model, cfg.probe, data.x_test, precise)

    @property
    def where(self) -> str:
        return f"input of {self.layer.name}, unit {self._unit}, over {len(self._x)} fixed test examples"

    def measure(self, whole: bool = True) -> dict[str, dict[str, float]]:
        """Over its fixed examples, the same whether the evaluation is `whole` or on trainer.eval_subset's subset."""
        out = self._percentiles("") if self._plain else {}
        if self._precise is not None:
            with precise_bn.applied(self._model, self._precise.statistics()):
                out |= self._percentiles("_precise")
        return out

    def _percentiles(self, suffix: str) -> dict[str, dict[str, float]]:
        values = self._fn(self._x).numpy()
        values = values.reshape(-1, values.shape[-1])
        table = np.percentile(values, self._q, axis=0)  # [percentile, unit]
        units = {f"u{u}.p{q:g}": float(table[i, u]) for u in range(table.shape[1]) for i, q in enumerate(self._q)}
        return {
            f"probe{suffix}": {f"p{q:g}": float(table[i, self._unit]) for i, q in enumerate(self._q)},
            f"probe_units{suffix}": units,
        }

"""Measurements of a network's insides, taken at evaluation time only.

`InputPercentiles` is the paper's Figure 1(b, c) probe: the distribution, over a fixed batch of test
examples, of the input to one nonlinearity unit. With BN before the activation that input is the BN
output; it is read with the moving averages (inference mode), so probing never changes BN's state.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .config import ProbeConfig
from .models import nonlinearities


class InputPercentiles:
    def __init__(self, model: keras.Model, cfg: ProbeConfig, x_fixed: np.ndarray):
        acts = nonlinearities(model)
        if not -len(acts) <= cfg.layer < len(acts):
            raise ValueError(f"probe.layer={cfg.layer}: the model has {len(acts)} hidden nonlinearities (use -{len(acts)}..{len(acts) - 1})")
        self.layer = acts[cfg.layer]
        units = self.layer.input.shape[-1]
        if not 0 <= cfg.unit < units:
            raise ValueError(f"probe.unit={cfg.unit}: {self.layer.name} has {units} units (use 0..{units - 1})")
        self._unit = cfg.unit
        self._q = list(cfg.percentiles)
        self._x = x_fixed[: cfg.examples]
        sub = keras.Model(model.inputs, self.layer.input)
        self._fn = tf.function(lambda x: sub(x, training=False))

    @property
    def where(self) -> str:
        return f"input of {self.layer.name}, unit {self._unit}, over {len(self._x)} fixed test examples"

    def metrics(self) -> dict:
        """{'p15': ..., 'p50': ..., 'p85': ...} for the configured percentiles."""
        values = self._fn(self._x).numpy()[..., self._unit].ravel()
        return {f"p{q:g}": float(v) for q, v in zip(self._q, np.percentile(values, self._q))}

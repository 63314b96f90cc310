"""The model contract: what any builder, registered or a user's own, must give the probes and studies.

    build(cfg: ModelConfig, input_shape: tuple, n_classes: int, seed: int) -> keras.Model

- its output is the layer named `logits`: one logit per class, or one for a two-class sigmoid head
  (cfg.output); the harness adds the loss (from logits), the optimizer and the training loop;
- each hidden nonlinearity is an Activation layer named `{block}_act`, input to output (Figure 1's probe
  reads `probe.layer` of them; the activation probes read them all); at least one;
- BN follows cfg.bn: with `none` there is no `{block}_bn` layer; with `before` each `{block}_act` is fed by
  the normalisation layer `{block}_bn` (the Keras class cfg.norm names: BatchNormalization by default), and
  with `after` each `{block}_act` feeds it (a Dropout may sit between);
- weights are initialised from `seed` only, so paired arms with one seed start from the same kernels.

A recurrent model (bn_study.models.lstm_cell.NormLSTM layers) keeps its nonlinearities and its normalisation inside the
cell: in place of the `{block}_act` rules, each cell's normalisation must be the one cfg.bn and cfg.norm name.

`check` enforces the first three on the built model; a builder that breaks one is refused in one line.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path
from typing import Callable

import keras

from bn_study.config import BN, ConfigError, ModelConfig, Output
from bn_study.models import registry
from bn_study.models.blocks import ACT, BN_LAYER, NORM_LAYERS, OUTPUT, nonlinearities
from bn_study.models.lstm_cell import NormLSTM


class ContractError(ConfigError):
    """A builder whose model breaks the contract; one line naming the builder and the broken rule."""


def build(cfg: ModelConfig, input_shape: tuple, n_classes: int, seed: int) -> keras.Model:
    """The model of `cfg`, from its builder (registered or the user's), checked against the contract."""
    make = builder(cfg)
    try:
        model = make(cfg, input_shape, n_classes, seed)
    except Exception as err:
        if cfg._target_ is None:
            raise  # a registered builder's failure is bn-study's bug: its traceback is wanted
        raise raised(cfg, err) from None
    check(model, cfg, n_classes)
    return model


def builder(cfg: ModelConfig) -> Callable:
    """The builder function `model._target_` (or the registered `model.name`) names."""
    registered = registry.of(cfg)
    if registered:
        return registered.build
    path = cfg._target_
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"model._target_={path}: cannot import {module_name} ({err})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"model._target_={path}: {module_name} has no function {attr}")
    return fn


def raised(cfg: ModelConfig, err: Exception) -> ConfigError:
    """A user's builder that raised, in one line: what it raised, and where in the builder's own file."""
    path = cfg._target_
    module = sys.modules.get(path.rpartition(".")[0])
    own = getattr(module, "__file__", None)
    frames = traceback.extract_tb(err.__traceback__)
    at = next((f for f in reversed(frames) if own and f.filename == own), frames[-1] if frames else None)
    where = f" at {Path(at.filename).name}:{at.lineno}" if at else ""
    message = str(err).splitlines()[0] if str(err) else ""
    return ConfigError(
        f"model._target_={path}: the builder raised {type(err).__name__}{': ' + message if message else ''}{where}"
    )


def _producer(tensor) -> keras.layers.Layer:
    """The layer that made `tensor`, looking through Dropout."""
    layer = tensor._keras_history.operation
    while isinstance(layer, keras.layers.Dropout):
        layer = layer.input._keras_history.operation
    return layer


def check(model, cfg: ModelConfig, n_classes: int) -> None:
    where = f"model._target_={cfg._target_}" if cfg._target_ else f"model={cfg.name}"

    def require(ok: bool, rule: str) -> None:
        if not ok:
            raise ContractError(
                f"{where}: breaks the model contract: {rule} (docs/extending.md: Your own model builder)"
            )

    require(isinstance(model, keras.Model), f"returned {type(model).__name__}, not a keras.Model")
    names = {layer.name: layer for layer in model.layers}
    units = 1 if cfg.output is Output.sigmoid else n_classes
    require(
        OUTPUT in names and len(model.outputs) == 1 and model.outputs[0] is names[OUTPUT].output,
        f"its output must be the layer named '{OUTPUT}'",
    )
    require(
        tuple(model.outputs[0].shape[1:]) == (units,),
        f"'{OUTPUT}' must give {units} logit(s) per example, not shape {tuple(model.outputs[0].shape[1:])}",
    )
    if cfg.bn is BN.none:
        classes = tuple({c for kinds in NORM_LAYERS.values() for c in kinds})
        hidden_bn = [layer.name for layer in model.layers if isinstance(layer, classes) and layer.name != "input_bn"]
        require(not hidden_bn, f"model.bn=none, but the model has normalisation layers: {', '.join(hidden_bn)}")
    cells = [layer for layer in model.layers if isinstance(layer, NormLSTM)]
    for cell in cells:
        expected = None if cfg.bn is BN.none else cfg.norm.value
        require(
            cell.norm == expected,
            f"model.bn={cfg.bn.value} model.norm={cfg.norm.value}: the LSTM '{cell.name}' normalises with {cell.norm}",
        )
    acts = nonlinearities(model)
    require(bool(acts) or bool(cells), f"no hidden nonlinearity: name each one '{{block}}{ACT}'")
    require(
        all(isinstance(a, keras.layers.Activation) for a in acts),
        f"every '*{ACT}' layer must be a keras.layers.Activation",
    )
    for act in acts:
        bn_name = act.name[: -len(ACT)] + BN_LAYER
        bn = names.get(bn_name)
        if cfg.bn is BN.none:
            require(bn is None, f"model.bn=none, but there is a '{bn_name}' layer")
            continue
        kinds = NORM_LAYERS[cfg.norm]
        require(
            isinstance(bn, kinds),
            f"model.bn={cfg.bn.value} model.norm={cfg.norm.value}: '{act.name}' has no {' or '.join(k.__name__ for k in kinds)} '{bn_name}'",
        )
        if cfg.bn is BN.before:
            require(_producer(act.input) is bn, f"model.bn=before: '{bn_name}' must feed '{act.name}'")
        else:
            require(_producer(bn.input) is act, f"model.bn=after: '{act.name}' must feed '{bn_name}'")
